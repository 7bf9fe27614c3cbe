import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1

/// One of Cyclorama's executables, started as a real child process for a test.
public final class ServiceProcess: @unchecked Sendable {
    public let name: String
    public let port: Int
    public let logFile: URL
    /// Where this process's output begins in ``logFile`` (a process started again on the same port goes on in the same file).
    private let logStart: UInt64
    private let process: Process

    /// Starts `<TestEnvironment.binaryDirectory>/<name>` (`CYCLORAMA_BIN_DIR`, else `.build/debug`) with the given extra environment and `HTTP_PORT=port`.
    public init(_ name: String, port: Int, environment: [String: String] = [:]) throws {
        self.name = name
        self.port = port
        let logs = try TestEnvironment.scratchDirectory("logs")
        self.logFile = logs.appendingPathComponent("\(name)-\(port).log")
        // Started again on the same port (after a crash), it goes on in the same log.
        if !FileManager.default.fileExists(atPath: logFile.path) {
            FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: logFile)
        logStart = handle.seekToEndOfFile()
        process = Process()
        process.executableURL = TestEnvironment.binaryDirectory.appendingPathComponent(name)
        var env = TestEnvironment.serviceEnvironment(name, inheriting: ProcessInfo.processInfo.environment)
        env["HTTP_HOST"] = "127.0.0.1"
        env["HTTP_PORT"] = String(port)
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { exitStatus == nil }

    /// The exit status once the process has ended (the signal's number when a signal ended it), else nil.
    ///
    /// Foundation's `Process` on Linux sometimes never notices that a child ended while the test process
    /// starts and stops many children at once (`isRunning` stays true for a zombie), so the kernel is
    /// asked directly, with `WNOWAIT`: the child is left for Foundation to reap.
    public var exitStatus: Int32? {
        if !process.isRunning { return process.terminationStatus }
        var info = siginfo_t()
        guard waitid(P_PID, id_t(process.processIdentifier), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else {
            // ECHILD: Foundation reaped it between the two looks.
            return process.isRunning ? nil : process.terminationStatus
        }
        guard info._sifields._sigchld.si_pid == process.processIdentifier else { return nil }
        return info._sifields._sigchld.si_status
    }

    /// Polls `GET /healthz` until it answers 200 or `timeout` passes; returns the last status seen.
    @discardableResult
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        var last: Int?
        while ContinuousClock.now < deadline, isRunning {
            last = await HTTPProbe.status(of: "http://127.0.0.1:\(port)/healthz")
            if last == 200 { return 200 }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return last
    }

    /// Sends `signal` (SIGTERM by default) and waits up to `timeout` for the process to exit.
    /// Returns the exit status and how long the exit took, or nil when it did not exit in time.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(15)) async -> (status: Int32, elapsed: Duration)? {
        let clock = ContinuousClock()
        let start = clock.now
        kill(process.processIdentifier, signal)
        while true {
            if let status = exitStatus { return (status, clock.now - start) }
            if clock.now - start > timeout { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `kill -9`, for crash tests.
    public func crash() async {
        _ = await stop(signal: SIGKILL, timeout: .seconds(5))
    }

    /// Sends `signal` without waiting (SIGSTOP / SIGCONT: a process that stalls and resumes).
    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// The process's log so far (for failure messages): with `ownOnly`, only what this process
    /// wrote, else the whole file (the processes before it on the same port too).
    public func log(ownOnly: Bool = false) -> String {
        guard let data = try? Data(contentsOf: logFile) else { return "" }
        return String(decoding: ownOnly ? data.dropFirst(Int(min(logStart, UInt64(data.count)))) : data[...], as: UTF8.self)
    }

    deinit {
        if isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Tiny HTTP helpers for tests.
public enum HTTPProbe {
    /// The status code of `GET url`, or nil when the connection fails.
    public static func status(of url: String) async -> Int? {
        try? await get(url).status
    }

    public static func get(_ url: String) async throws -> (status: Int, body: String) {
        let response = try await send(.GET, url)
        return (response.status, response.text)
    }

    /// One HTTP exchange with the whole answer in memory.
    public static func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> HTTPAnswer {
        let response = try await execute(method, url, headers: headers, body: body, timeout: timeout)
        let collected = try await response.body.collect(upTo: 64 << 20)
        return HTTPAnswer(response, body: Array(buffer: collected))
    }

    /// `GET url` read as it streams (Server-Sent Events): `reading` gets the text received so far
    /// after each part of the body, so a test can act on what a stream said before it ends.
    public static func stream(
        _ url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(30),
        reading: (String) async throws -> Void
    ) async throws -> HTTPAnswer {
        let response = try await execute(.GET, url, headers: headers, body: nil, timeout: timeout)
        var body: [UInt8] = []
        for try await part in response.body {
            body.append(contentsOf: part.readableBytesView)
            try await reading(String(decoding: body, as: UTF8.self))
        }
        return HTTPAnswer(response, body: body)
    }

    private static func execute(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        return try await HTTPClient.shared.execute(request, timeout: .init(timeout))
    }
}

/// A complete HTTP response, for assertions.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    /// `headers`' names lower-cased, as `header(_:)` looks them up.
    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `response`'s status and headers with `body`.
    init(_ response: HTTPClientResponse, body: [UInt8]) {
        self.init(status: Int(response.status.code), headers: response.headers.map { ($0.name.lowercased(), $0.value) }, body: body)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        headers.first { $0.0 == name.lowercased() }?.1
    }

    /// The body decoded as JSON of type `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(body))
    }

    /// The body as a JSON object (dictionary), for shape checks.
    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw URLError(.cannotParseResponse)
        }
        return object
    }
}

/// A TCP port that was free a moment ago (bind to port 0, read it back, close).
public func freePort() -> Int {
    // Never hand out the same port twice in one test process: the kernel may offer a port again
    // once it was closed, before the process it was meant for has bound it. Nor one that another
    // test process beside this one may hand out (`make test` runs the fault suite beside the main
    // run): each takes only its share of the ports, as `CYCLORAMA_TEST_PORTS` says.
    for _ in 0..<100_000 {
        let port = ephemeralPort()
        guard portShare?.owns(port) ?? true else { continue }
        if issuedPorts.withLock({ $0.insert(port).inserted }) { return port }
    }
    fatalError("no free port left to hand out (CYCLORAMA_TEST_PORTS=\(ProcessInfo.processInfo.environment["CYCLORAMA_TEST_PORTS"] ?? ""))")
}

/// `CYCLORAMA_TEST_PORTS=i/n`: this process takes only the kernel's free ports (a bind to port 0,
/// which the kernel answers from its ephemeral range, preferring ports that outgoing connections
/// leave alone) that fall in the i-th of n equal parts of that range. The Makefile gives the main run
/// 0/2 and the fault suite 1/2, which run beside each other. Unset or empty: every port; anything
/// else stops the test process with the reason (a typo must not quietly share ports again).
/// (Not by parity: the kernel's free port for a bind is odd whenever it can be.)
public struct PortShare: Sendable, Equatable {
    public let range: ClosedRange<Int>

    /// The share `text` names of the ephemeral range `ports`; nil for no share (nil or empty text).
    public init?(_ text: String?, of ports: ClosedRange<Int>) throws(Malformed) {
        guard let text, !text.isEmpty else { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let index = parts[0], let count = parts[1], count >= 1, (0..<count).contains(index),
              ports.count >= count else {
            throw Malformed(text: text)
        }
        let size = ports.count / count
        let low = ports.lowerBound + index * size
        range = low...(index == count - 1 ? ports.upperBound : low + size - 1)
    }

    public func owns(_ port: Int) -> Bool { range.contains(port) }

    /// The kernel's ephemeral range (`ip_local_port_range`), or Linux's default when it cannot be read.
    public static var ephemeralRange: ClosedRange<Int> {
        let bounds = ((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        return bounds.count == 2 && bounds[0] < bounds[1] ? bounds[0]...bounds[1] : 32768...60999
    }

    public struct Malformed: Error, CustomStringConvertible {
        public var text: String
        public var description: String { "CYCLORAMA_TEST_PORTS=\(text): expected i/n, a share i of n parts, 0 <= i < n" }
    }
}

private let portShare: PortShare? = {
    do {
        return try PortShare(ProcessInfo.processInfo.environment["CYCLORAMA_TEST_PORTS"], of: PortShare.ephemeralRange)
    } catch {
        fatalError("\(error)")
    }
}()

private let issuedPorts = Mutex<Set<Int>>([])

private func ephemeralPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
