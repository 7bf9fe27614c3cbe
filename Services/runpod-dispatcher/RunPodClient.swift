import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Shared

/// A job as RunPod's `/run`, `/status` and `/cancel` describe it.
struct RunPodJob: Decodable, Sendable, Equatable {
    var id: String
    var status: String
    var delayTime: Int?
    var executionTime: Int?
    var output: JSONValue?
    var error: JSONValue?
}

/// A call to a RunPod endpoint that did not give a job.
enum RunPodCallError: Error, CustomStringConvertible, Equatable {
    /// The endpoint answered with an HTTP error.
    case http(status: Int, body: String)
    /// No connection: the request was not sent (connection refused, connect timeout).
    case transport(String)
    /// The request went out but no complete answer came back (read timeout, connection reset): for
    /// `/run` the backend may have accepted the job.
    case unanswered(String)
    /// A 2xx whose body is not a RunPod job.
    case invalidReply(String)

    /// Worth trying again later: rate limiting, server trouble, no connection, no answer.
    var isTransient: Bool {
        switch self {
        case .http(let status, _): status == 429 || status >= 500 || status == 408
        case .transport, .unanswered: true
        case .invalidReply: false
        }
    }

    var description: String {
        switch self {
        case .http(let status, let body): "HTTP \(status)" + (body.isEmpty ? "" : ": \(body.prefix(300))")
        case .transport(let reason): "no connection: \(reason)"
        case .unanswered(let reason): "no answer: \(reason)"
        case .invalidReply(let reason): "unreadable reply: \(reason)"
        }
    }
}

/// One RunPod serverless endpoint (`…/v2/<endpoint id>`): RunPod's cloud or the local engine.
struct RunPodClient: Sendable {
    let http: HTTPClient
    let endpointURL: String
    let apiKey: String?
    var timeout: Duration = .seconds(30)

    /// Submits a job; with `webhook`, the backend POSTs the job there when it ends. The
    /// `Idempotency-Key` header makes a backend that honours it (the local engine) answer a repeat of
    /// the same submission with the job it already has; RunPod ignores it.
    func run(
        input: JSONValue, executionTimeout: Duration, ttl: Duration, webhook: String? = nil, idempotencyKey: String? = nil
    ) async throws(RunPodCallError) -> RunPodJob {
        var body: [String: JSONValue] = [
            "input": input,
            "policy": [
                "executionTimeout": .int(Int(executionTimeout.components.seconds) * 1000),
                "ttl": .int(Int(ttl.components.seconds) * 1000),
            ],
        ]
        if let webhook { body["webhook"] = .string(webhook) }
        return try await call(.POST, "/run", body: .object(body), headers: idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:])
    }

    func status(_ id: String) async throws(RunPodCallError) -> RunPodJob {
        try await call(.GET, "/status/\(Self.escape(id))")
    }

    func cancel(_ id: String) async throws(RunPodCallError) -> RunPodJob {
        try await call(.POST, "/cancel/\(Self.escape(id))")
    }

    private func call(
        _ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers: [String: String] = [:]
    ) async throws(RunPodCallError) -> RunPodJob {
        var request = HTTPClientRequest(url: endpointURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.encodedText))
        }
        let status: Int
        let bytes: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
            status = Int(response.status.code)
            bytes = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw Self.wasSent(error) ? .unanswered(Self.describe(error)) : .transport(Self.describe(error))
        }
        let job = try? JSONDecoder().decode(RunPodJob.self, from: Data(buffer: bytes))
        // RunPod may answer a FAILED job with HTTP 400 and the job object.
        if let job, (200..<300).contains(status) || (status == 400 && job.status == "FAILED") { return job }
        guard (200..<300).contains(status) else {
            throw .http(status: status, body: Self.printable(String(buffer: bytes)))
        }
        throw .invalidReply(Self.printable(String(buffer: bytes)))
    }

    private static func escape(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
    }

    /// At most 300 characters without line breaks, for reasons and logs.
    static func printable(_ text: String) -> String {
        String(text.prefix(300)).replacingOccurrences(of: "\n", with: " ")
    }

    /// False only when `error` shows the request never left: the connection was not made.
    static func wasSent(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return false }
        let text = String(reflecting: error)
        return !["NIOConnectionError", "connectTimeout", "Connection refused", "connection refused", "ECONNREFUSED"]
            .contains { text.contains($0) }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: error).prefix(200).description
    }
}

extension RunPodJob {
    /// Terminal statuses: the job will not change any more.
    var isTerminal: Bool { ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].contains(status) }

    /// Running at the backend: IN_PROGRESS, or RUNNING as some RunPod documents call it.
    var isRunning: Bool { status == "IN_PROGRESS" || status == "RUNNING" }

    /// The result's URL: `output.image_url`, or `output.result` for models that use it.
    var resultURL: String? {
        output?["image_url"]?.stringValue ?? output?["result"]?.stringValue
    }

    /// The backend's progress text while IN_PROGRESS (`output.progress`).
    var progress: String? {
        guard let progress = output?["progress"] else { return nil }
        return progress.stringValue ?? progress.jsonText
    }

    /// The reason a FAILED job gives (the `error` string may itself be JSON with `error_message`).
    var failureReason: String {
        guard let error else { return "the backend reported \(status) without a reason" }
        if let text = error.stringValue {
            if let nested = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)),
               let message = nested["error_message"]?.stringValue {
                return message
            }
            return text
        }
        return error["error_message"]?.stringValue ?? error.jsonText
    }
}
