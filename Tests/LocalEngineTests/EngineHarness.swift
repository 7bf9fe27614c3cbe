import RunPod
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TestSupport

@testable import LocalEngine

/// A real `local-engine` process on a free port, and a client speaking its protocol.
final class EngineHarness: Sendable {
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
        var env = environment
        if let simulateMs { env["LOCAL_ENGINE_SIMULATE_MS"] = String(simulateMs) }
        env["LOCAL_ENGINE_CONCURRENCY"] = String(concurrency)
        env["LOCAL_ENGINE_QUEUE_LIMIT"] = String(queueLimit)
        env["LOCAL_ENGINE_RESULTS_DIR"] = try resultsDirectory
            ?? TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("engine-results")).path
        if let apiKey { env["LOCAL_ENGINE_API_KEY"] = apiKey }
        process = try ServiceProcess("local-engine", port: port, environment: env)
        base = "http://127.0.0.1:\(port)/v2/\(endpoint ?? TestEnvironment.uniqueName("endpoint"))"
        self.apiKey = apiKey
        let health = await process.waitUntilHealthy(timeout: .seconds(30))
        try #require(health == 200, "local-engine did not start; log:\n\(process.log())")
    }

    func stop() async { _ = await process.stop() }

    // MARK: Protocol calls

    struct Reply: Sendable {
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

    func call(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, token: String?? = .none, headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let key = token ?? apiKey { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        // `/runsync` holds the request until the job ends: the real pipeline on a machine busy with the
        // rest of the suite takes longer than any other call.
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(path.contains("/runsync") ? 150 : 30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        var headers: [String: String] = [:]
        for header in response.headers where headers[header.name.lowercased()] == nil { headers[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), body: Array(bytes.readableBytesView), headers: headers)
    }

    /// `POST /run` (or `/runsync…` via `path`) with `{"input": input, ...}`.
    func submit(
        _ input: [String: Any], webhook: String? = nil, policy: [String: Any]? = nil, path: String = "/run",
        headers: [(String, String)] = []
    ) async throws -> Reply {
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

    func status(_ id: String) async throws -> Reply { try await call(.GET, "/status/\(id)") }

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
