import AsyncHTTPClient
import Database
import Foundation
import Logging
import Messaging
import Redis
import ServiceLifecycle
import ServiceSupport
import Shared

/// What the dispatcher remembers about a job in Redis (``JobKeys/dispatch(_:)``), so that whichever
/// instance gets the dispatch message next — after a crash, a restart, a redelivery — re-attaches to
/// the backend job instead of submitting it again.
struct DispatchRecord: Codable, Sendable, Equatable {
    /// Wall-clock start, so the deadline survives restarts.
    var startedAt: Date
    var attempt: Int
    var backendJobId: String?
    var resubmits = 0
    /// A terminal event was published: a redelivery has nothing left to do.
    var finished = false
    /// When the current submission was sent with a webhook (nil: without one): until
    /// ``DispatcherConfiguration/webhookWait`` after it the follower waits for the webhook instead of polling.
    var webhookSince: Date?
}

/// Submits one dispatch to its backend and follows it to the end: the global concurrency slot, the
/// `/run` call with retries, polling `/status` with backoff (or waiting for the job's webhook, then
/// confirming with `/status`), resubmission of a lost job, the deadline, cancellation, and the events
/// (submitted, in progress, completed or failed).
///
/// The dispatch message stays unacknowledged while its job is followed: if this process dies, the
/// broker hands it to another instance, which finds the record and carries on.
struct JobFollower: Sendable {
    let configuration: DispatcherConfiguration
    let http: HTTPClient
    let redis: RedisClient
    let broker: AMQPConnection
    let limiter: ConcurrencyLimiter
    let ownership: JobOwnership
    let ledger: JobLedger
    /// Rings a job when its webhook was called.
    let inbox: Doorbell<UUID>
    /// `aiImageMaxConcurrent` (1-10; 3 when unknown).
    let concurrencyLimit: @Sendable () async -> Int
    /// `aiImagePricePerMegapixel`: what a RunPod result that reports no cost is charged.
    let pricePerMegapixel: @Sendable () async -> Double
    /// The RunPod API key (the `runpodApiKey` setting), nil when not set.
    let runpodKey: @Sendable () async throws -> String?
    /// The gateway's public base URL for webhooks (`aiImageWebhookUrl`) when `aiImageEnableWebhooks` is on; else nil.
    let webhookBase: @Sendable () async -> String?
    let logger: Logger

    func handle(_ dispatch: DispatchGeneration) async throws -> HandlingOutcome {
        do {
            return try await cancelWhenGracefulShutdown { try await follow(dispatch) }
        } catch is CancellationError {
            // Shutting down: hand the job back; the next instance re-attaches from the record.
            logger.info("handing a job back on shutdown", metadata: ["jobId": "\(dispatch.jobId)"])
            return .requeue
        }
    }

    func follow(_ dispatch: DispatchGeneration) async throws -> HandlingOutcome {
        let logger = jobLogger(dispatch)
        // One follower per job: copies of a dispatch (a redelivery while the first is still followed,
        // the outbox, a publisher repeating itself) wait here until the owner finishes, or until its
        // ownership expires because it died, and never submit a second time.
        let owner = UUID().uuidString
        while try await !ownership.claim(dispatch.jobId, owner) {
            if try await record(of: dispatch.jobId)?.finished == true {
                logger.info("another copy finished this job; acknowledged")
                return .done
            }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 500...1500)))
        }
        let keeper = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: JobOwnership.lifetime / 3)
                try? await ownership.renew(dispatch.jobId, owner)
            }
        }
        inbox.register(dispatch.jobId)
        defer {
            keeper.cancel()
            inbox.unregister(dispatch.jobId)
            Task { [ownership] in await ownership.release(dispatch.jobId, owner) }
        }
        let stored = try await record(of: dispatch.jobId)
        var record = stored ?? DispatchRecord(startedAt: Date(), attempt: dispatch.attempt)
        if record.finished {
            logger.info("job already finished; redelivery acknowledged")
            return .done
        }
        if let stored { logger.info("re-attaching", metadata: ["backendJobId": "\(stored.backendJobId ?? "-")"]) }
        if try await isCancelled(dispatch.jobId) {
            return try await endCancelled(dispatch, &record, logger: logger)
        }
        try await save(record, for: dispatch.jobId)

        let client: RunPodClient
        switch try await self.client(for: dispatch.backend) {
        case .success(let found): client = found
        case .failure(let reason): return try await fail(dispatch, &record, .invalidRequest, reason.text, retryable: false)
        }
        let elapsed = Date().timeIntervalSince(record.startedAt)
        let remaining = configuration.jobDeadline - .milliseconds(Int64(max(0, elapsed) * 1000))
        let deadline = ContinuousClock.now + max(remaining, .zero)
        let started = record
        // A job already at the backend takes its slot back whatever the limit: it is running there.
        let outcome = try await limiter.withSlot(
            dispatch.jobId.uuidString, limit: concurrencyLimit, until: deadline, force: record.backendJobId != nil
        ) { slot in
            try await drive(dispatch, started, client: client, slot: slot, deadline: deadline, logger: logger)
        }
        guard let outcome else {
            if let id = record.backendJobId { await cancelAtBackend(id, dispatch, logger: logger) }
            return try await fail(
                dispatch, &record, .timedOut,
                "no backend slot became free before the job's deadline (\(configuration.jobDeadline.components.seconds) s); aiImageMaxConcurrent limits jobs at the backend",
                retryable: true)
        }
        return outcome
    }

    /// The loop of one job while it holds a concurrency slot.
    private func drive(
        _ dispatch: DispatchGeneration, _ initial: DispatchRecord, client: RunPodClient, slot: HeldSlot,
        deadline: ContinuousClock.Instant, logger: Logger
    ) async throws -> HandlingOutcome {
        var record = initial
        var pollWait = configuration.pollInitial
        var troubleWait = Duration.seconds(1)
        var lastStatus = "not yet submitted"
        var reportedProgress: String?? = .none
        // A re-attached job is asked about at once: its webhook may have come while nobody followed it.
        var askNow = initial.backendJobId != nil
        while true {
            if try await isCancelled(dispatch.jobId) {
                return try await endCancelled(dispatch, &record, logger: logger)
            }
            if ContinuousClock.now >= deadline {
                if let id = record.backendJobId { await cancelAtBackend(id, dispatch, logger: logger) }
                return try await fail(
                    dispatch, &record, .timedOut,
                    "no result within the job's deadline of \(configuration.jobDeadline.components.seconds) s (last backend status: \(lastStatus))",
                    retryable: true)
            }
            guard let backendJobId = record.backendJobId else {
                let job: RunPodJob
                let webhook = await armWebhook(dispatch, logger: logger)
                do {
                    job = try await client.run(
                        input: dispatch.input, executionTimeout: configuration.jobDeadline, ttl: configuration.jobDeadline,
                        webhook: webhook)
                } catch let error where error.isTransient {
                    logger.warning("backend refused /run for now; retrying", metadata: ["error": "\(error)"])
                    try await pause(&troubleWait, until: deadline)
                    continue
                } catch {
                    return try await fail(dispatch, &record, .backendFailed, "the backend refused the job: \(error)", retryable: false)
                }
                record.backendJobId = job.id
                record.webhookSince = webhook == nil ? nil : Date()
                try await save(record, for: dispatch.jobId)
                try await remember(job.id, dispatch, attempt: record.attempt)
                try await broker.publish(GenerationSubmitted(
                    correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId,
                    backend: dispatch.backend, backendJobId: job.id))
                logger.info("submitted", metadata: ["backendJobId": "\(job.id)", "attempt": "\(record.attempt)"])
                lastStatus = job.status
                pollWait = configuration.pollInitial
                troubleWait = .seconds(1)
                continue
            }

            if askNow {
                askNow = false
            } else if let since = record.webhookSince,
                      case let left = configuration.webhookWait - .milliseconds(Int64(Date().timeIntervalSince(since) * 1000)),
                      left > .zero {
                // Waiting for the webhook; when none comes by the end of the wait, polling takes over.
                // In slices, so a cancel (checked at the top of the loop) is seen as soon as without webhooks.
                let slice = min(left, configuration.pollMax, max(deadline - .now, .milliseconds(1)))
                guard try await inbox.wait(for: dispatch.jobId, upTo: slice) else { continue }
                logger.info("webhook called; confirming with /status", metadata: ["backendJobId": "\(backendJobId)"])
            } else {
                // A webhook (if one was asked for and comes late) still cuts the wait short.
                _ = try await inbox.wait(for: dispatch.jobId, upTo: min(pollWait, max(deadline - .now, .milliseconds(1))))
                pollWait = min(pollWait * 1.5, configuration.pollMax)
            }
            let job: RunPodJob
            do {
                job = try await client.status(backendJobId)
            } catch .http(status: 404, _) {
                // Expired (TTL, retention) or unknown at the backend: it is lost.
                guard record.resubmits < configuration.maxResubmits else {
                    return try await fail(
                        dispatch, &record, .backendFailed,
                        "the backend lost job \(backendJobId) (404 on /status) after \(record.resubmits) resubmission(s)",
                        retryable: true)
                }
                logger.warning("backend lost the job (404); submitting again", metadata: ["backendJobId": "\(backendJobId)"])
                record.resubmits += 1
                record.attempt += 1
                record.backendJobId = nil
                record.webhookSince = nil
                try await save(record, for: dispatch.jobId)
                continue
            } catch let error where error.isTransient {
                logger.warning("status not available for now; retrying", metadata: ["error": "\(error)"])
                try await pause(&troubleWait, until: deadline)
                continue
            } catch {
                return try await fail(dispatch, &record, .backendFailed, "the backend's status call failed: \(error)", retryable: true)
            }
            troubleWait = .seconds(1)
            lastStatus = job.status
            if ["COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"].contains(job.status) {
                // The backend is done with it: its slot is free for the next job now.
                await slot.release()
            }
            switch job.status {
            case "IN_QUEUE":
                continue
            case "IN_PROGRESS":
                if reportedProgress != .some(job.progress) {
                    reportedProgress = .some(job.progress)
                    try await broker.publish(GenerationProgressed(
                        correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId,
                        stage: .inProgress, detail: job.progress))
                }
            case "COMPLETED":
                guard let url = job.resultURL, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? "") else {
                    return try await fail(
                        dispatch, &record, .invalidOutput,
                        "the backend reported COMPLETED without an output image URL (output: \(RunPodClient.printable(job.output?.jsonText ?? "none")))",
                        retryable: true)
                }
                var cost = job.output?["cost"]?.doubleValue.flatMap { $0 >= 0 && $0.isFinite ? $0 : nil }
                if cost == nil, dispatch.backend == .runpod {
                    cost = Self.megapixels(of: dispatch.input) * (await pricePerMegapixel())
                }
                try await broker.publish(GenerationCompleted(
                    correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId, kind: dispatch.kind,
                    batchId: dispatch.batchId, variationName: dispatch.variationName, backend: dispatch.backend,
                    backendJobId: job.id, outputUrl: url, cost: cost,
                    executionTimeMs: job.executionTime.flatMap { $0 >= 0 ? $0 : nil }, options: dispatch.options,
                    replyTo: dispatch.replyTo))
                record.finished = true
                try await save(record, for: dispatch.jobId)
                logger.info("backend finished", metadata: ["backendJobId": "\(job.id)", "executionTimeMs": "\(job.executionTime ?? -1)"])
                return .done
            case "FAILED":
                return try await fail(dispatch, &record, .backendFailed, "the backend failed the job: \(job.failureReason)", retryable: true)
            case "TIMED_OUT":
                return try await fail(dispatch, &record, .timedOut, "the backend timed the job out: \(job.failureReason)", retryable: true)
            case "CANCELLED":
                return try await fail(dispatch, &record, .cancelled, "the backend cancelled the job", retryable: true)
            default:
                logger.warning("unknown backend status; still polling", metadata: ["status": "\(job.status)"])
            }
        }
    }

    // MARK: Helpers

    /// The output's megapixels from Kontext's `size` ("W*H"; 1024*1024 when absent).
    static func megapixels(of input: JSONValue) -> Double {
        let parts = (input["size"]?.stringValue ?? "1024*1024").split(separator: "*").compactMap { Double($0) }
        guard parts.count == 2 else { return 1024 * 1024 / 1_000_000 }
        return parts[0] * parts[1] / 1_000_000
    }

    private func jobLogger(_ dispatch: DispatchGeneration) -> Logger {
        var logger = logger
        logger[metadataKey: "jobId"] = "\(dispatch.jobId)"
        return logger
    }

    private func client(for backend: GenerationBackend) async throws -> Result<RunPodClient, FailureText> {
        switch backend {
        case .local:
            return .success(RunPodClient(http: http, endpointURL: configuration.localEngineURL, apiKey: configuration.localEngineAPIKey))
        case .runpod:
            guard let key = try await runpodKey(), !key.isEmpty else {
                return .failure(FailureText("the RunPod API key (setting runpodApiKey) is not set; set it or choose aiImageBackend=local"))
            }
            return .success(RunPodClient(http: http, endpointURL: configuration.runpodEndpointURL, apiKey: key))
        }
    }

    /// Ends the job as FAILED: the event on `cyclorama.events` (the ledger follows it) and to `replyTo`.
    private func fail(
        _ dispatch: DispatchGeneration, _ record: inout DispatchRecord, _ code: FailureCode, _ reason: String, retryable: Bool
    ) async throws -> HandlingOutcome {
        logger.warning("job failed", metadata: ["jobId": "\(dispatch.jobId)", "code": "\(code)", "reason": "\(reason)"])
        let failed = GenerationFailed(
            correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId, kind: dispatch.kind,
            batchId: dispatch.batchId, variationName: dispatch.variationName, backendJobId: record.backendJobId,
            reason: String(reason.prefix(2000)), code: code, retryable: retryable)
        try await broker.publishTerminal(failed, replyTo: dispatch.replyTo, logger: logger)
        record.finished = true
        try await save(record, for: dispatch.jobId)
        return .done
    }

    /// Someone cancelled the job (the gateway set the flag; the ledger already says CANCELLED):
    /// cancel it at the backend and publish the terminal event, so `replyTo` hears of it too.
    private func endCancelled(_ dispatch: DispatchGeneration, _ record: inout DispatchRecord, logger: Logger) async throws -> HandlingOutcome {
        if let id = record.backendJobId { await cancelAtBackend(id, dispatch, logger: logger) }
        logger.info("cancelled on request")
        return try await fail(dispatch, &record, .cancelled, "cancelled on request", retryable: true)
    }

    /// A webhook URL with a fresh token for this submission when webhooks are on, after storing the
    /// token's digest in the ledger (so the gateway can check calls, and an earlier attempt's URL stops
    /// working). nil: no webhook, the job is polled.
    private func armWebhook(_ dispatch: DispatchGeneration, logger: Logger) async -> String? {
        guard let base = await webhookBase() else { return nil }
        let token = WebhookToken.make()
        do {
            guard try await ledger.armWebhook(dispatch.jobId, tokenSHA256: WebhookToken.digest(token)) else {
                logger.info("no ledger row to arm a webhook for; polling instead")
                return nil
            }
        } catch {
            // A webhook only saves polls: without the database, poll.
            logger.warning("could not arm the webhook; polling instead", metadata: ["error": "\(error)"])
            return nil
        }
        return WebhookToken.url(base: base, jobId: dispatch.jobId, token: token)
    }

    private func cancelAtBackend(_ backendJobId: String, _ dispatch: DispatchGeneration, logger: Logger) async {
        do {
            guard case .success(let client) = try await client(for: dispatch.backend) else { return }
            _ = try await client.cancel(backendJobId)
            logger.info("cancelled at the backend", metadata: ["backendJobId": "\(backendJobId)"])
        } catch {
            logger.warning("could not cancel at the backend", metadata: ["backendJobId": "\(backendJobId)", "error": "\(error)"])
        }
    }

    /// Sleeps `wait` with ±50 % jitter (never past `deadline`) and doubles it, up to 30 s.
    private func pause(_ wait: inout Duration, until deadline: ContinuousClock.Instant) async throws {
        let jittered = wait * Double.random(in: 0.5...1.5)
        try await Task.sleep(for: min(jittered, max(deadline - .now, .milliseconds(1))))
        wait = min(wait * 2, .seconds(30))
    }

    private func isCancelled(_ jobId: UUID) async throws -> Bool {
        try await redis.get(JobKeys.cancelled(jobId)) != nil
    }

    private func record(of jobId: UUID) async throws -> DispatchRecord? {
        guard let text = try await redis.get(JobKeys.dispatch(jobId)) else { return nil }
        return try? Self.decoder.decode(DispatchRecord.self, from: Data(text.utf8))
    }

    private func save(_ record: DispatchRecord, for jobId: UUID) async throws {
        let text = String(decoding: try Self.encoder.encode(record), as: UTF8.self)
        _ = try await redis.set(JobKeys.dispatch(jobId), text, expiration: configuration.jobDeadline + .seconds(24 * 3600))
    }

    /// backend job id → {mediaId, jobId, attempt}, for webhooks and operators.
    private func remember(_ backendJobId: String, _ dispatch: DispatchGeneration, attempt: Int) async throws {
        let value: JSONValue = [
            "mediaId": .string(dispatch.mediaId.uuidString.lowercased()),
            "jobId": .string(dispatch.jobId.uuidString.lowercased()),
            "attempt": .int(attempt),
        ]
        _ = try await redis.set(
            JobKeys.backendJob(dispatch.backend.rawValue, backendJobId), value.encodedText,
            expiration: configuration.jobDeadline + .seconds(24 * 3600))
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }()
    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

/// Who follows a job right now: a Redis key with the follower's token and a short lifetime, renewed
/// while it follows, so a dead follower's job is taken over within ``lifetime``.
struct JobOwnership: Sendable {
    static let lifetime: Duration = .seconds(10)
    let redis: RedisClient

    func claim(_ jobId: UUID, _ owner: String) async throws -> Bool {
        try await redis.set(JobKeys.owner(jobId), owner, expiration: Self.lifetime, onlyIfAbsent: true)
    }

    /// Extends the lifetime while `owner` still holds it.
    func renew(_ jobId: UUID, _ owner: String) async throws {
        _ = try await redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
            keys: [JobKeys.owner(jobId)], arguments: [owner, String(Self.lifetime.components.seconds * 1000)])
    }

    func release(_ jobId: UUID, _ owner: String) async {
        _ = try? await redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            keys: [JobKeys.owner(jobId)], arguments: [owner])
    }
}

/// A reason a job cannot run, for ``JobFollower``.
struct FailureText: Error {
    var text: String
    init(_ text: String) { self.text = text }
}
