import AsyncHTTPClient
import Crypto
import Database
import Foundation
import Logging
import Metrics
import NIOCore
import OutboundHTTP
import ServiceCore
import Shared
import Timing

/// When a notification is tried again, and for how long (docs/notifications.md).
struct NotificationPolicy: Sendable {
    /// The wait after the first failed attempt; each later wait doubles, up to ``longestWait``.
    var firstRetry: Duration = .seconds(10)
    var longestWait: Duration = .seconds(3600)
    /// No attempt starts later than this after the job ended: then the notification is ABANDONED.
    var retryFor: Duration = .seconds(86_400)
    /// How long one attempt may take, from connecting to the end of the receiver's answer (a
    /// receiver that sends its head and then stalls its body is cut off too).
    var timeout: Duration = .seconds(10)
    /// Notifications claimed (and sent at once) per round.
    var concurrency = 32

    /// The wait after failed attempt number `attempt` (1-based), give or take a fifth (`jitter` in
    /// 0...1), so that the receivers of many jobs that failed together are not called in step.
    func wait(after attempt: Int, jitter: Double) -> Duration {
        let doubled = firstRetry.timeInterval * pow(2, Double(min(max(attempt - 1, 0), 30)))
        return .milliseconds(Int64(min(doubled, longestWait.timeInterval) * (0.8 + 0.4 * jitter) * 1000))
    }

    /// When to try a notification made at `createdAt` again after its failed attempt number
    /// `attempt`: after the wait, or at the end of ``retryFor`` when the wait would pass it (the last
    /// attempt); nil once that end has passed.
    func nextAttempt(after attempt: Int, createdAt: Date, now: Date, jitter: Double) -> Date? {
        let end = createdAt.addingTimeInterval(retryFor.timeInterval)
        guard now < end else { return nil }
        return min(now.addingTimeInterval(wait(after: attempt, jitter: jitter).timeInterval), end)
    }

    /// Claimed rows are due again after this, should their sender die mid-attempt: longer than an
    /// attempt can take (resolving the name, at most ``PublicAddress/lookupLimit``, then
    /// ``timeout``), so no other gateway sends the same attempt while this one is still at it.
    var lease: Duration { PublicAddress.lookupLimit + timeout + .seconds(30) }
}

/// `Cyclorama-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as payment
/// providers sign theirs: the receiver recomputes it with the shared secret, compares in constant
/// time, and refuses a timestamp older than a few minutes (a replay).
enum NotificationSignature {
    static let header = "Cyclorama-Signature"

    static func value(secret: String, timestamp: Int, body: [UInt8]) -> String {
        "t=\(timestamp),v1=\(v1(secret: secret, timestamp: timestamp, body: body))"
    }

    static func v1(secret: String, timestamp: Int, body: [UInt8]) -> String {
        let signed = Array("\(timestamp).".utf8) + body
        return Digest.hex(HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Array(secret.utf8))))
    }
}

/// What a notification POSTs: the job as `GET /api/ai-image/status/{jobId}` answers once it ended.
struct NotificationBody: Encodable {
    /// The notification's id, the same on every attempt: a receiver drops one it has seen.
    var id: String
    /// `job.completed`, `job.failed` or `job.cancelled`.
    var type: String
    var createdAt: String
    var job: JobStatusResponse
}

/// Sends the notifications the database made when jobs ended (migration 6), from every gateway at
/// once: each round claims what is due (a lease, so no two gateways send the same attempt), POSTs
/// each signed body, and records the attempt and what follows — DELIVERED on a 2xx, another attempt
/// later (``NotificationPolicy``) on anything else, ABANDONED when the address is refused or the
/// retries ran out. Delivery is at least once: a receiver drops an `id` it has seen.
struct NotificationSender: Sendable {
    let store: NotificationStore
    let ledger: JobLedger
    let media: MediaStore
    let http: HTTPClient
    /// `NOTIFY_ALLOWED_HOSTS`: checked, with the name resolved, before every connect; a name is
    /// then connected to at the address that was checked.
    let hosts: HostAllowList
    let resolve: @Sendable (String) async -> [String]
    /// The signing secret (the `aiImageNotifySecret` setting, opened), nil or empty when not set.
    let secret: @Sendable () async throws -> String?
    var policy = NotificationPolicy()
    let logger: Logger

    /// Sends what is due until nothing is; returns how many attempts were made.
    @discardableResult
    func sweep() async throws -> Int {
        var made = 0
        while true {
            let claimed = try await store.claimDue(limit: policy.concurrency, lease: policy.lease)
            guard !claimed.isEmpty else { return made }
            // Read and opened once for the round, not once per attempt.
            let secret: Result<String?, any Error>
            do { secret = .success(try await self.secret()) } catch { secret = .failure(error) }
            await withTaskGroup(of: Void.self) { group in
                for claim in claimed { group.addTask { await self.attempt(claim, secret: secret) } }
            }
            made += claimed.count
            if claimed.count < policy.concurrency { return made }
        }
    }

    /// One attempt, recorded; `secret` is the signing secret as the round read it.
    func attempt(_ claim: ClaimedNotification, secret: Result<String?, any Error>) async {
        let started = ContinuousClock.now
        let (status, outcome) = await deliver(claim, secret: secret)
        let label: String
        switch outcome {
        case .delivered:
            label = "delivered"
        case .retry(_, let error):
            label = "retry"
            logger.info("notification not taken; tried again later", metadata: metadata(claim, error))
        case .abandoned(let error):
            label = "abandoned"
            logger.warning("notification abandoned", metadata: metadata(claim, error))
        }
        Counter(label: "gateway_notification_attempts_total", dimensions: [("outcome", label)]).increment()
        do {
            try await store.finish(claim, duration: .now - started, statusCode: status, outcome: outcome)
        } catch {
            // The lease runs out and the notification is sent again: at least once.
            logger.warning("could not record a notification attempt", metadata: ["jobId": "\(claim.record.jobId)", "error": "\(error)"])
        }
    }

    private func metadata(_ claim: ClaimedNotification, _ error: String) -> Logger.Metadata {
        ["jobId": "\(claim.record.jobId)", "attempt": "\(claim.attempt)", "to": "\(redactedURL(claim.record.url))", "error": "\(error)"]
    }

    /// The receiver's status (when it answered) and what follows.
    func deliver(_ claim: ClaimedNotification, secret signing: Result<String?, any Error>) async -> (Int?, NotificationStore.Outcome) {
        let record = claim.record
        guard let url = URL(string: record.url), let host = url.host, !host.isEmpty else {
            return (nil, .abandoned(error: "the notifyUrl is not a URL"))
        }
        do {
            let clearance = await hosts.clearance(host: host, port: url.connectionPort, variable: "NOTIFY_ALLOWED_HOSTS", resolve: resolve)
            if let refusal = clearance.refusal {
                let error = "refused before connecting: \(refusal.reason)"
                return (nil, refusal.isTransient ? retry(claim, error) : .abandoned(error: error))
            }
            let secret: String?
            let body: [UInt8]
            do {
                secret = try signing.get()
                body = Array(try await self.body(for: record).utf8)
            } catch {
                return (nil, retry(claim, "not sent: \(String(describing: error).prefix(300))"))
            }
            guard let secret, !secret.isEmpty else {
                return (nil, retry(claim, "not sent: no signing secret is set (setting aiImageNotifySecret); set it and the next attempt goes out"))
            }
            let request = NotifyURL.request(url, body: body, id: record.id, attempt: claim.attempt, signature: NotificationSignature.value(
                secret: secret, timestamp: Int(Date().timeIntervalSince1970), body: body))
            // The whole exchange within the timeout: AsyncHTTPClient's deadline ends with the
            // answer's head, and a body that never ends would hold this round (and the lease) up.
            let exchange = Task { [http, timeout = policy.timeout] in
                try await http.connecting(as: clearance) { client in
                    let response = try await client.execute(request, timeout: TimeAmount(timeout))
                    // What the receiver says is not kept: only its status counts.
                    _ = try? await response.body.collect(upTo: 64 * 1024)
                    return Int(response.status.code)
                }
            }
            guard let answered = await awaitResult(of: exchange, atMost: policy.timeout) else {
                exchange.cancel()
                throw HTTPClientError.deadlineExceeded
            }
            let code = try answered.get()
            if (200..<300).contains(code) { return (code, .delivered) }
            let redirect = (300..<400).contains(code) ? " (redirects are not followed)" : ""
            return (code, retry(claim, "the receiver answered HTTP \(code)\(redirect)"))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return (nil, retry(claim, "no answer within \(String(format: "%g", policy.timeout.timeInterval)) s"))
        } catch {
            return (nil, retry(claim, "no answer: \(String(describing: error).prefix(300))"))
        }
    }

    /// Another attempt when the policy says (``NotificationPolicy/nextAttempt(after:createdAt:now:jitter:)``),
    /// ABANDONED once its window has ended.
    func retry(_ claim: ClaimedNotification, _ error: String) -> NotificationStore.Outcome {
        guard let next = policy.nextAttempt(
            after: claim.attempt, createdAt: claim.record.createdAt, now: Date(), jitter: Double.random(in: 0...1))
        else {
            return .abandoned(error: "gave up after \(claim.attempt) attempts over \(Self.span(policy.retryFor)): \(error)")
        }
        return .retry(at: next, error: error)
    }

    /// The body every attempt sends, fixed at the first.
    func body(for record: NotificationRecord) async throws -> String {
        if let body = record.body { return body }
        guard let job = try await ledger.job(record.jobId) else {
            throw NotificationStoreError(message: "job \(record.jobId) is gone")
        }
        let current = job.status == .completed ? try await media.media(job.mediaId) : nil
        let body = try GenerationController.json(NotificationBody(
            id: record.id.lowercasedString, type: record.event, createdAt: MessageCoding.formatTimestamp(record.createdAt),
            job: JobStatusResponse(job, media: current)))
        return try await store.fixBody(record.id, body)
    }

    static func span(_ duration: Duration) -> String {
        let seconds = Int(duration.timeInterval)
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}

/// A notification address as requests and logs treat it.
enum NotifyURL {
    /// The POST: user information in the URL becomes Basic authentication (and leaves the URL).
    static func request(_ url: URL, body: [UInt8], id: UUID, attempt: Int, signature: String) -> HTTPClientRequest {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let user = components?.percentEncodedUser
        let password = components?.percentEncodedPassword
        components?.user = nil
        components?.password = nil
        var request = HTTPClientRequest(url: components?.string ?? url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Cyclorama-Notifications/1")
        request.headers.add(name: "Cyclorama-Notification-Id", value: id.lowercasedString)
        request.headers.add(name: "Cyclorama-Attempt", value: String(attempt))
        request.headers.add(name: NotificationSignature.header, value: signature)
        if let user {
            let plain = (user.removingPercentEncoding ?? user) + ":" + ((password ?? "").removingPercentEncoding ?? password ?? "")
            request.headers.add(name: "Authorization", value: "Basic " + Data(plain.utf8).base64EncodedString())
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// The URL with any user information replaced by `***` (an API answer shows where, never the password).
    static func redacted(_ raw: String) -> String {
        guard var components = URLComponents(string: raw), components.user != nil || components.password != nil else { return raw }
        components.user = "***"
        components.password = nil
        return components.string ?? "***"
    }
}
