import Foundation
import Shared

/// Where FLUX.1 Kontext [dev] runs on RunPod (the public endpoint; `RUNPOD_ENDPOINT_URL` overrides it).
public enum RunPodEndpoint {
    public static let fluxKontextDev = "https://api.runpod.ai/v2/black-forest-labs-flux-1-kontext-dev"

    /// What ``normalized(_:)`` accepts, for configuration errors.
    public static let expected = "an http(s) URL of a RunPod endpoint (…/v2/<endpoint id>)"

    /// `raw` as an endpoint base (`http(s)://host/…/v2/<endpoint id>`, no trailing slash), nil when it is not one.
    public static func normalized(_ raw: String) -> String? {
        guard let url = URL(string: raw), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else { return nil }
        return raw.hasSuffix("/") ? String(raw.dropLast()) : raw
    }
}

/// `GET /health`: the endpoint's job and worker counts (RunPod's names, read leniently).
public struct RunPodHealth: Codable, Sendable, Equatable {
    public var jobs: [String: Int]?
    public var workers: [String: Int]?

    public init(jobs: [String: Int]? = nil, workers: [String: Int]? = nil) {
        self.jobs = jobs
        self.workers = workers
    }
}

/// Whether an endpoint can take jobs with a key, as its `/health` answered. A `/health` call is
/// free: it runs no job.
public enum RunPodReadiness: Sendable, Equatable {
    case ready(RunPodHealth)
    case unusable(code: String, message: String)

    public var isReady: Bool { if case .ready = self { true } else { false } }

    /// What a person reads: "ready: 1 worker idle, 0 jobs queued" or the reason it is unusable.
    public var summary: String {
        switch self {
        case .ready(let health):
            let idle = health.workers?["idle"] ?? 0, running = health.workers?["running"] ?? 0
            let queued = health.jobs?["inQueue"] ?? 0
            return "ready: \(idle) worker(s) idle, \(running) running, \(queued) job(s) queued"
        case .unusable(_, let message): return message
        }
    }
}

/// Asks an endpoint's `/health` with a key and judges the answer. The HTTP call is the caller's
/// (`fetch`), so the judgement is the same in every service and testable without a network.
public struct RunPodProbe: Sendable {
    /// GET `url` with `headers`; the answer's status and body, or a thrown error when none came.
    public typealias Fetch = @Sendable (_ url: String, _ headers: [(String, String)]) async throws -> (status: Int, body: [UInt8])

    public let endpoint: String
    let fetch: Fetch

    public init(endpoint: String, fetch: @escaping Fetch) {
        self.endpoint = endpoint
        self.fetch = fetch
    }

    public func check(key: String?) async -> RunPodReadiness {
        guard let key = key?.trimmingCharacters(in: .whitespaces), !key.isEmpty else {
            return .unusable(code: "runpod_key_missing", message: "no RunPod API key is set (runpodApiKey); RunPod needs one for every call")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await fetch(endpoint + "/health", [("Authorization", "Bearer \(key)"), ("Accept", "application/json")])
        } catch {
            return .unusable(code: "runpod_unreachable", message: "RunPod's endpoint \(endpoint) did not answer: \(error)")
        }
        return Self.judge(status: answer.status, body: answer.body, endpoint: endpoint)
    }

    /// The readiness a `/health` answer means.
    public static func judge(status: Int, body: [UInt8], endpoint: String) -> RunPodReadiness {
        switch status {
        case 200..<300:
            guard let health = try? JSONDecoder().decode(RunPodHealth.self, from: Data(body)), health.jobs != nil || health.workers != nil else {
                return .unusable(
                    code: "runpod_unexpected_answer",
                    message: "\(endpoint)/health answered \(status) with something that is not RunPod's health report: is RUNPOD_ENDPOINT_URL a RunPod endpoint (…/v2/<endpoint id>)?")
            }
            return .ready(health)
        case 401, 403:
            return .unusable(code: "runpod_key_refused", message: "RunPod refused the API key (HTTP \(status)): check runpodApiKey (RunPod console → Settings → API Keys)")
        case 404:
            return .unusable(
                code: "runpod_endpoint_not_found",
                message: "RunPod has no endpoint at \(endpoint) (HTTP 404): check RUNPOD_ENDPOINT_URL")
        default:
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            return .unusable(code: "runpod_unavailable", message: "RunPod's endpoint \(endpoint) answered HTTP \(status)" + (text.isEmpty ? "" : ": \(text)"))
        }
    }
}
