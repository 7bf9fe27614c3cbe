import Database
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceCore
import ServiceSupport
import Shared

/// `POST /api/ai-image/webhook/:jobId/:token`: a backend (RunPod or the local engine) saying a job ended.
///
/// Outside the admin-token guard: RunPod cannot send our token, and signs nothing. The per-submission
/// token in the URL is the proof (``WebhookToken``), checked in constant time against the digest the
/// dispatcher stored. A good call is answered 200 at once and handed to the dispatchers as
/// ``BackendWebhookReceived``, a hint that the job's follower confirms with the backend's `/status`
/// before acting; the body is never trusted. Forged calls (unknown job, wrong or superseded token) get
/// 403, replays (the job already ended) 409; both are logged, without the token.
///
/// Anyone may call it, so calls are rate-limited per client address (`WEBHOOK_RATE_PER_SECOND`, a
/// burst of twice that) before anything is looked up: 429 with `Retry-After`. A webhook lost that
/// way costs nothing but time: the dispatcher polls the backend anyway.
struct WebhookController: Sendable {
    let ledger: JobLedger
    let broker: AMQPConnection
    let limiter: RateLimiter
    let logger: Logger

    func addRoutes(to router: Router<ServiceRequestContext>) {
        router.post("\(WebhookToken.path)/:jobId/:token", use: receive)
    }

    /// Every answer of the route carries its limit (`RateLimit-*`, per client address).
    @Sendable func receive(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let client = context.clientKey
        if let wait = limiter.take(client) {
            var error = APIError.tooManyRequests("too many webhook calls from \(context.clientAddress); try again later", retryAfter: wait)
            error.headers = limiter.headers(client)
            throw error
        }
        do {
            var response = try await accept(request, context: context)
            response.headers.append(contentsOf: limiter.headers(client))
            return response
        } catch var error as APIError {
            error.headers.append(contentsOf: limiter.headers(client))
            throw error
        }
    }

    private func accept(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let rawJobId = context.parameters.get("jobId") ?? ""
        let token = context.parameters.get("token") ?? ""
        // One answer for an unknown job and a wrong token: a caller learns nothing either way.
        guard let jobId = UUID(uuidString: rawJobId), let known = try await ledger.webhookGuard(jobId),
              let digest = known.tokenSHA256, WebhookToken.matches(token, digest: digest)
        else {
            logger.warning("refused a forged webhook call (unknown job, or a wrong or superseded token)",
                           metadata: ["jobId": "\(rawJobId.prefix(40))"])
            throw APIError(.forbidden, code: "webhook_forbidden", message: "unknown job or wrong webhook token")
        }
        guard !known.status.isTerminal else {
            logger.warning("refused a replayed webhook call: the job has ended",
                           metadata: ["jobId": "\(jobId)", "status": "\(known.status.rawValue)"])
            throw APIError(
                .conflict, code: "webhook_replayed",
                message: "job \(jobId.lowercasedString) has already ended (\(known.status.rawValue)); this call is a replay or a late duplicate")
        }
        // The body (RunPod's job object) is only a hint; what it claims is checked by the dispatcher.
        var request = request
        let body = (try? await request.collectBody(upTo: 16 << 20)).flatMap {
            try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0))
        }
        func hint(_ key: String, max: Int) -> String? {
            let text = body?[key]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return text.isEmpty ? nil : String(text.prefix(max))
        }
        var notice = BackendWebhookReceived(jobId: jobId, backendJobId: hint("id", max: 255), backendStatus: hint("status", max: 40))
        if (try? notice.validate()) == nil {
            // Nothing the body says matters enough to lose the wake-up over it.
            notice = BackendWebhookReceived(jobId: jobId, backendJobId: nil, backendStatus: nil)
        }
        do {
            // Unroutable is fine: with no dispatcher listening, polling finds the result.
            try await broker.publish(notice, mandatory: false)
        } catch {
            logger.error("could not hand a webhook call to the dispatchers", metadata: ["jobId": "\(jobId)", "error": "\(error)"])
            throw APIError.unavailable("could not take the call now; try again")
        }
        logger.info("webhook call accepted", metadata: [
            "jobId": "\(jobId)", "backendJobId": "\(notice.backendJobId ?? "-")", "claimedStatus": "\(notice.backendStatus ?? "-")",
        ])
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: #"{"received":true}"#)))
    }
}
