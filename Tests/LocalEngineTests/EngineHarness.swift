import RunPod
import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import ServiceCore
import Testing
import TestSupport

@testable import LocalEngine

/// An engine's answer to one call.
struct EngineReply: Sendable {
    var status: Int
    var body: [UInt8]
    /// The response's headers, by lower-cased name (the first value of each).
    var headers: [String: String] = [:]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch {
            throw HarnessError("HTTP \(status), cannot decode \(T.self) from \(text.prefix(400)): \(error)")
        }
    }
}

/// Calls to an engine under test in RunPod's protocol, whichever way they reach it.
protocol EngineCalls: Sendable {
    /// The endpoint's address: the engine's origin and `/v2/<endpoint>`.
    var base: String { get }
    var apiKey: String? { get }
    /// Sends one request as it is (`url` absolute, or a path on the engine) and returns the answer.
    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration) async throws -> EngineReply
}

/// The engine's variables for a test: the renderer (`simulateMs`: the benchmark mode; nil: the
/// real pipeline), its slots and queue, a results folder of its own unless given.
private func engineEnvironment(
    simulateMs: Int?, concurrency: Int, queueLimit: Int, apiKey: String?, resultsDirectory: String?, environment: [String: String]
) throws -> [String: String] {
    var env = environment
    if let simulateMs { env["LOCAL_ENGINE_SIMULATE_MS"] = String(simulateMs) }
    env["LOCAL_ENGINE_CONCURRENCY"] = String(concurrency)
    env["LOCAL_ENGINE_QUEUE_LIMIT"] = String(queueLimit)
    env["LOCAL_ENGINE_RESULTS_DIR"] = try resultsDirectory
        ?? TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("engine-results")).path
    if let apiKey { env["LOCAL_ENGINE_API_KEY"] = apiKey }
    return env
}

/// A real `local-engine` process on a free port: for what crosses the process (signals, crashes,
/// restarts, the port, other programs that call it).
final class EngineHarness: EngineCalls {
    let process: ServiceProcess
    let base: String
    let apiKey: String?

    /// Starts the engine; `simulateMs` selects the benchmark mode (nil: the real pipeline). `port`
    /// and `resultsDirectory` let a test start an engine again where a previous one ran.
    init(
        simulateMs: Int? = 300, concurrency: Int = 1, queueLimit: Int = 8, apiKey: String? = nil, environment: [String: String] = [:],
        port: Int? = nil, resultsDirectory: String? = nil, endpoint: String? = nil
    ) async throws {
        let port = port ?? freePort()
        let env = try engineEnvironment(
            simulateMs: simulateMs, concurrency: concurrency, queueLimit: queueLimit, apiKey: apiKey,
            resultsDirectory: resultsDirectory, environment: environment)
        process = try ServiceProcess("local-engine", port: port, environment: env)
        base = "http://127.0.0.1:\(port)/v2/\(endpoint ?? TestEnvironment.uniqueName("endpoint"))"
        self.apiKey = apiKey
        let health = await process.waitUntilHealthy(timeout: .seconds(30))
        try #require(health == 200, "local-engine did not start; log:\n\(process.log())")
    }

    func stop() async { _ = await process.stop() }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration) async throws -> EngineReply {
        var request = HTTPClientRequest(url: url.hasPrefix("http") ? url : "http://127.0.0.1:\(process.port)\(url)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .init(timeout))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        var answer: [String: String] = [:]
        for header in response.headers where answer[header.name.lowercased()] == nil { answer[header.name.lowercased()] = header.value }
        return EngineReply(status: Int(response.status.code), body: Array(bytes.readableBytesView), headers: answer)
    }
}

/// The local engine built as its executable builds it (`LocalEngine`), run in the test's process
/// with HummingbirdTesting's `app.test(.router)`: its routes, scheduler, notifier and sweeper,
/// without a port or a child process. Its origin is `http://localhost` (the authority the
/// router's requests carry); calls to it are served in process.
struct InProcessEngine: EngineCalls {
    let client: any TestClientProtocol
    let base: String
    let apiKey: String?

    /// Runs `body` against an engine of its own (the parameters as ``EngineHarness``'s), then stops it.
    static func test(
        simulateMs: Int? = 300, concurrency: Int = 1, queueLimit: Int = 8, apiKey: String? = nil, environment: [String: String] = [:],
        endpoint: String? = nil, _ body: @Sendable (InProcessEngine) async throws -> Void
    ) async throws {
        var env = try engineEnvironment(
            simulateMs: simulateMs, concurrency: concurrency, queueLimit: queueLimit, apiKey: apiKey,
            resultsDirectory: nil, environment: environment)
        // Its log is the test's; warnings are expected (bad input), errors are worth reading.
        env["LOG_LEVEL"] = env["LOG_LEVEL"] ?? "error"
        // A job still running when the test ends (a long simulated one) is not waited for.
        env["SHUTDOWN_GRACE_SECONDS"] = env["SHUTDOWN_GRACE_SECONDS"] ?? "0.2"
        let engine = try LocalEngine(configuration: .fromEnvironment(EnvironmentVariables(env)))
        let base = "http://localhost/v2/\(endpoint ?? TestEnvironment.uniqueName("endpoint"))"
        do {
            try await engine.makeSelfContainedApplication().test(.router) { client in
                try await body(InProcessEngine(client: client, base: base, apiKey: apiKey))
            }
        } catch {
            await engine.close()
            throw error
        }
        await engine.close()
    }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)], body: [UInt8]?, timeout: Duration) async throws -> EngineReply {
        // An absolute link (a result image's) must name this engine's origin, as the routes were
        // asked (`http://localhost`); it is then asked of this engine by its path and query.
        var uri = url
        if url.hasPrefix("http") {
            guard url.hasPrefix("http://localhost/"), let parsed = URLComponents(string: url) else {
                throw HarnessError("a link to another origin than the engine's (http://localhost): \(url)")
            }
            uri = parsed.percentEncodedPath + (parsed.percentEncodedQuery.map { "?\($0)" } ?? "")
        }
        let response = try await client.send(method, uri, headers: headers, body: body)
        var answer: [String: String] = [:]
        for (name, value) in response.headers where answer[name] == nil { answer[name] = value }
        return EngineReply(status: response.status, body: response.body, headers: answer)
    }
}

extension EngineCalls {
    /// Calls the endpoint (`path` after ``base``, or an absolute URL) with the API key (or `token`;
    /// `.some(nil)`: no Authorization header).
    func call(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, token: String?? = .none, headers: [(String, String)] = []
    ) async throws -> EngineReply {
        var all = headers
        if let key = token ?? apiKey { all.append(("Authorization", "Bearer \(key)")) }
        if body != nil { all.append(("Content-Type", "application/json")) }
        // `/runsync` holds the request until the job ends: the real pipeline on a machine busy with the
        // rest of the suite takes longer than any other call.
        return try await send(
            method, path.hasPrefix("http") ? path : base + path, headers: all, body: body,
            timeout: .seconds(path.contains("/runsync") ? 150 : 30))
    }

    /// `POST /run` (or `/runsync…` via `path`) with `{"input": input, ...}`.
    func submit(
        _ input: [String: Any], webhook: String? = nil, policy: [String: Any]? = nil, path: String = "/run",
        headers: [(String, String)] = []
    ) async throws -> EngineReply {
        var body: [String: Any] = ["input": input]
        if let webhook { body["webhook"] = webhook }
        if let policy { body["policy"] = policy }
        return try await call(.POST, path, body: Array(try JSONSerialization.data(withJSONObject: body)), headers: headers)
    }

    /// Submits with `/run` and returns the job id (expects 200).
    func run(_ input: [String: Any], webhook: String? = nil, policy: [String: Any]? = nil) async throws -> String {
        let reply = try await submit(input, webhook: webhook, policy: policy)
        try #require(reply.status == 200, "run answered \(reply.status): \(reply.text)")
        return try reply.decode(JobReceipt.self).id
    }

    func status(_ id: String) async throws -> EngineReply { try await call(.GET, "/status/\(id)") }

    /// Polls `/status` until the job has `wanted` status (or any terminal one when nil).
    func wait(for id: String, until wanted: JobStatus? = nil, timeout: Duration = .seconds(60)) async throws -> JobStatusBody {
        let deadline = ContinuousClock.now + timeout
        while true {
            let reply = try await status(id)
            try #require(reply.status == 200, "status of \(id) answered \(reply.status): \(reply.text)")
            let body = try reply.decode(JobStatusBody.self)
            if let wanted, body.status == wanted { return body }
            if wanted == nil, body.status.isTerminal { return body }
            if ContinuousClock.now > deadline {
                throw HarnessError("job \(id) is \(body.status.rawValue), not \(wanted?.rawValue ?? "terminal"), after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func health() async throws -> EngineHealth { try await call(.GET, "/health").decode() }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Test images.
enum Samples {
    /// A real product photo from the shared dev samples (1024x1024 JPEG).
    static var productJPEG: [UInt8] {
        get throws {
            let url = URL(fileURLWithPath: "/work/shared/samples/dev/dev02_bottle_pastel_none/input.jpg")
            if let data = try? Data(contentsOf: url) { return Array(data) }
            return tinyPNG
        }
    }

    /// A valid 2x2 RGB PNG, generated so the tests need no file.
    static let tinyPNG: [UInt8] = Array(Data(base64Encoded:
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4IScHRAwQCgAfJgQRoo8irwAAAABJRU5ErkJggg==")!)

    static func dataURI(_ bytes: [UInt8], type: String = "image/png") -> String {
        "data:\(type);base64,\(Data(bytes).base64EncodedString())"
    }
}
