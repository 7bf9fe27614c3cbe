import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunPod
import Shared
import Timing

/// A job as RunPod's `/run`, `/status` and `/cancel` describe it, its `output` read as any JSON.
typealias BackendJob = RunPodJob<JSONValue>

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

    /// The request went out and no answer came back.
    var isUnanswered: Bool {
        if case .unanswered = self { true } else { false }
    }

    /// For `/run`: whether the backend may have accepted the job although no job came back. No
    /// answer at all; a 502 or 504, which a proxy in front of the endpoint gives when it lost the
    /// endpoint's answer (the endpoint may have acted on the request); a 2xx that is not a job (the
    /// endpoint answered yes in a form we cannot read). A 429, 500 or 503 is the endpoint itself
    /// refusing, and a connection that never opened sent nothing.
    var mayHaveBeenAccepted: Bool {
        switch self {
        case .unanswered, .invalidReply: true
        case .http(let status, _): status == 502 || status == 504
        case .transport: false
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

/// What a follower asks of a backend: RunPod's `/run`, `/status` and `/cancel` (``RunPodClient``).
protocol BackendEndpoint: Sendable {
    func run(input: JSONValue, policy: RunPodPolicy, webhook: String?, idempotencyKey: String?) async throws(RunPodCallError) -> BackendJob
    func status(_ id: String) async throws(RunPodCallError) -> BackendJob
    func cancel(_ id: String) async throws(RunPodCallError) -> BackendJob
}

/// One RunPod serverless endpoint (`…/v2/<endpoint id>`): RunPod's cloud or the local engine.
struct RunPodClient: BackendEndpoint {
    let http: HTTPClient
    let endpointURL: String
    let apiKey: String?
    var timeout: Duration = .seconds(30)

    /// Submits a job; with `webhook`, the backend POSTs the job there when it ends. The
    /// `Idempotency-Key` header makes a backend that honours it (the local engine) answer a repeat of
    /// the same submission with the job it already has; RunPod ignores it.
    func run(
        input: JSONValue, policy: RunPodPolicy, webhook: String? = nil, idempotencyKey: String? = nil
    ) async throws(RunPodCallError) -> BackendJob {
        let submission = RunPodSubmission(input: input, webhook: webhook, policy: policy)
        let body: Data
        do { body = try JSONEncoder().encode(submission) } catch { throw .invalidReply("could not encode the submission: \(error)") }
        return try await call(.POST, "/run", body: body, headers: idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:])
    }

    func status(_ id: String) async throws(RunPodCallError) -> BackendJob {
        try await call(.GET, "/status/\(Self.escape(id))")
    }

    func cancel(_ id: String) async throws(RunPodCallError) -> BackendJob {
        try await call(.POST, "/cancel/\(Self.escape(id))")
    }

    private func call(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, headers: [String: String] = [:]
    ) async throws(RunPodCallError) -> BackendJob {
        var request = HTTPClientRequest(url: endpointURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let status: Int
        let bytes: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: TimeAmount(timeout))
            status = Int(response.status.code)
            bytes = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw Self.wasSent(error) ? .unanswered(Self.describe(error)) : .transport(Self.describe(error))
        }
        let job = try? JSONDecoder().decode(BackendJob.self, from: Data(buffer: bytes))
        // RunPod may answer a FAILED job with HTTP 400 and the job object.
        if let job, (200..<300).contains(status) || (status == 400 && job.status == .failed) { return job }
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
