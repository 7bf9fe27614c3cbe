import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import NIOCore

public struct TestHTTPServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A small real HTTP server inside the test: records what it receives and answers from a script.
/// Serves as the webhook receiver and as the origin `input.image` URLs are fetched from.
public final class TestHTTPServer: Sendable {
    public struct Received: Sendable {
        public var method: String
        public var path: String
        public var headers: HTTPFields
        /// The host the request named (HTTP/1.1's `Host` header, which HTTPTypes keeps apart).
        public var authority: String?
        public var body: [UInt8]
        public var at: ContinuousClock.Instant
    }

    /// What to answer for the n-th request (0-based) to `path`.
    public typealias Script = @Sendable (_ path: String, _ index: Int) -> (status: HTTPResponse.Status, headers: HTTPFields, body: [UInt8])
    /// How long to wait before answering the n-th request to `path` (nil: at once).
    public typealias Delay = @Sendable (_ path: String, _ index: Int) -> Duration?

    public let port: Int
    private let log = ReceivedLog()
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    /// `stall`: for the n-th request to `path`, send the head and the first byte of the body at
    /// once, then wait this long before the rest (nil: the whole answer at once). A receiver that
    /// answers and then never finishes.
    public init(delay: @escaping Delay = { _, _ in nil }, stall: @escaping Delay = { _, _ in nil }, script: @escaping Script) async throws {
        let log = self.log
        let router = Router()
        router.on("**", method: .get, use: Self.handler(log: log, delay: delay, stall: stall, script: script))
        router.on("**", method: .post, use: Self.handler(log: log, delay: delay, stall: stall, script: script))
        var logger = Logger(label: "test-http-server")
        logger.logLevel = .critical
        // A port from `freePort()`, bound at once: not port 0, whose pick by the kernel could be a
        // port just handed to a service this test process is starting and that has not bound it yet
        // (the service then failed with "address already in use" and its readiness check reached
        // this server). Bound microseconds after the pick; tried again on another port if taken.
        for _ in 0..<5 {
            let (bound, announce) = AsyncStream<Int>.makeStream()
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: freePort())),
                onServerRunning: { channel in
                    if let port = channel.localAddress?.port { announce.yield(port) }
                    announce.finish()
                },
                logger: logger)
            let group = ServiceGroup(services: [app], logger: logger)
            let task = Task {
                defer { announce.finish() }
                try await group.run()
            }
            var iterator = bound.makeAsyncIterator()
            guard let port = await iterator.next() else {
                task.cancel()
                continue
            }
            self.group = group
            self.task = task
            self.port = port
            await log.reset()
            return
        }
        throw TestHTTPServerError(message: "the test HTTP server did not start")
    }

    private static func handler(
        log: ReceivedLog, delay: @escaping Delay, stall: @escaping Delay, script: @escaping Script
    ) -> @Sendable (Request, BasicRequestContext) async throws -> Response {
        { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 64 << 20)
            let path = request.uri.path
            let index = await log.append(Received(
                method: request.method.rawValue, path: path, headers: request.headers, authority: request.head.authority, body: Array(body.readableBytesView), at: .now))
            if let pause = delay(path, index) { try await Task.sleep(for: pause) }
            let answer = script(path, index)
            if let pause = stall(path, index) {
                let bytes = answer.body.isEmpty ? Array("stalled".utf8) : answer.body
                return Response(status: answer.status, headers: answer.headers, body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(bytes: bytes.prefix(1)))
                    try await Task.sleep(for: pause)
                    try await writer.write(ByteBuffer(bytes: bytes.dropFirst()))
                    try await writer.finish(nil)
                })
            }
            return Response(status: answer.status, headers: answer.headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func received(path: String? = nil) async -> [Received] {
        await log.all.filter { path == nil || $0.path == path }
    }

    /// Waits until `count` requests to `path` arrived (or `timeout` passes); returns them.
    public func waitForRequests(_ count: Int, path: String, timeout: Duration) async -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let got = await received(path: path)
            if got.count >= count { return got }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await received(path: path)
    }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}

private actor ReceivedLog {
    var all: [TestHTTPServer.Received] = []

    /// Appends and returns how many earlier requests had the same path.
    func append(_ received: TestHTTPServer.Received) -> Int {
        let index = all.count { $0.path == received.path }
        all.append(received)
        return index
    }

    func reset() { all = [] }
}
