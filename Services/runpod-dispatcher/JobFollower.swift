import AsyncHTTPClient
import Database
import Foundation
import Logging
import Messaging
import Redis
import RunPod
import ServiceLifecycle
import ServiceCore
import ServiceSupport
import Shared
import Synchronization
import Timing

/// Submits one dispatch to its backend and follows it to the end: the global concurrency slot, the
/// `/run` call, polling `/status` with backoff (or waiting for the job's webhook, then confirming
/// with `/status`), resubmission of a lost job, the deadline, cancellation, and the events
/// (submitted, in progress, rendered or failed).
///
/// The dispatch message stays unacknowledged while its job is followed: if this process dies, the
/// broker hands it to another instance, which finds the record and carries on. What makes that safe
/// (docs/reliability.md):
///
/// - one follower per job (``JobOwnership``): a follower that loses its ownership (it stalled past
///   it) stops at once and hands its message back; it can never write the record or submit after that;
/// - a submission is recorded before `/run` is sent (``DispatchRecord/submittingSince``): a follower
///   that finds it unanswered sends the same submission again only to a backend that honours its
///   `Idempotency-Key` (the local engine); for RunPod it waits for the job's webhook to name the
///   job, and otherwise ends the job `submission_unconfirmed` rather than pay twice;
/// - the backend slot is committed before `/run` and held until the backend says the job ended
///   (``ConcurrencyLimiter``); a job ended here whose cancel did not get through keeps its slot and
///   is cancelled again by the ``OrphanSweeper``.
struct JobFollower: Sendable {
    let configuration: DispatcherConfiguration
    let http: HTTPClient
    let redis: RedisClient
    let broker: AMQPConnection
    let limiter: ConcurrencyLimiter
    let ownership: JobOwnership
    let ledger: JobLedger
    let ending: JobEnding
    let orphans: OrphanRegistry
    /// Rings a job when its webhook was called.
    let inbox: Doorbell<UUID>
    /// The backend job ids webhook calls named, by job.
    let reveals: WebhookReveals
    /// Recent runs' times at the backend: when a job should be done (polling waits for then).
    let executionTimes: ExecutionTimes
    /// `aiImageMaxConcurrent` (1-10); throws while no settings are known.
    let concurrencyLimit: @Sendable () async throws -> Int
    /// `aiImagePricePerMegapixel`: what a RunPod result that reports no cost is charged.
    let pricePerMegapixel: @Sendable () async -> Double
    /// The RunPod API key (the `runpodApiKey` setting), nil when not set.
    let runpodKey: @Sendable () async throws -> String?
    /// The gateway's public base URL for webhooks (`aiImageWebhookUrl`) when `aiImageEnableWebhooks` is on; else nil.
    let webhookBase: @Sendable () async -> String?
    /// Puts a RunPod job's photo inline when `runpodImageDelivery` says so.
    let inliner: ImageInliner
    /// The `runpodImageDelivery` setting.
    let imageDelivery: @Sendable () async -> ImageDelivery
    let logger: Logger
    /// Submissions whose record this process could not save: intents whose `/run` it never sent,
    /// and `/run`s the backend accepted.
    let unsaved = UnsavedSubmissions()

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
        // A backend runs only a job Cyclorama accepted for the media the dispatch names (its ledger
        // row is written before any dispatch): a forged or misrouted dispatch is refused before it
        // can cost a run, and ends no job.
        let accepted = try await ledger.job(dispatch.jobId)
        if case .refused(let reason)? = GenerationApplyOutcome.refusal(
            jobId: dispatch.jobId, mediaId: dispatch.mediaId, variation: dispatch.kind == .variation,
            job: accepted.map { ($0.mediaId, $0.kind) }) {
            logger.warning("refused a dispatch for a job Cyclorama did not accept", metadata: ["reason": "\(reason)"])
            return .refuse(reason: reason)
        }
        // One follower per job: copies of a dispatch (a redelivery while the first is still followed,
        // the outbox, a publisher repeating itself) wait here until the owner finishes, or until its
        // ownership expires because it died, and never submit a second time.
        let owner = UUID().uuidString
        while try await !ownership.claim(dispatch.jobId, owner) {
            if try await ownership.record(of: dispatch.jobId)?.finished == true {
                logger.info("another copy finished this job; acknowledged")
                return .done
            }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 500...1500)))
        }
        let cancelledInLedger = accepted?.status == .cancelled
        inbox.register(dispatch.jobId)
        defer {
            inbox.unregister(dispatch.jobId)
            reveals.forget(dispatch.jobId)
            Task { [ownership] in await ownership.release(dispatch.jobId, owner) }
        }
        // The ownership is renewed by a task of its own, stopped once the follow is over: a shutdown
        // cancels the follow, but a `/run` it lets finish (and the save of its answer) still needs
        // the ownership until the answer is recorded.
        let keeper = Task { try await ownership.keep(dispatch.jobId, owner, logger: logger) }
        defer { keeper.cancel() }
        do {
            return try await withThrowingTaskGroup(of: HandlingOutcome?.self) { group in
                let job = FollowedJob(dispatch: dispatch, owner: owner, cancelledInLedger: cancelledInLedger, logger: logger)
                group.addTask { try await followOwned(job) }
                group.addTask {
                    // A lost ownership ends the follow. Cancelled (a shutdown), this stops waiting at
                    // once and the keeper goes on.
                    if case .failure(let lost)? = await awaitResult(of: keeper, atMost: .seconds(366 * 24 * 3600)) { throw lost }
                    return nil
                }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let outcome = next { return outcome }
                }
                return .done
            }
        } catch let lost as OwnershipLost {
            // This follower stalled past its ownership: what it knows of the job may be stale. It stops
            // and hands its copy of the message back; whoever takes it next starts from the record
            // (and acknowledges it once the record says the job finished).
            logger.warning("lost the ownership of the job; stopped and handed the message back", metadata: ["error": "\(lost)"])
            return .requeue
        }
    }

    private func followOwned(_ job: FollowedJob) async throws -> HandlingOutcome {
        let (dispatch, logger) = (job.dispatch, job.logger)
        let stored = try await storedRecord(of: dispatch, logger: logger)
        job.saves.start(after: stored?.saves ?? 0)
        var record = stored ?? DispatchRecord(startedAt: Date(), attempt: dispatch.attempt)
        if record.finished {
            logger.info("job already finished; redelivery acknowledged")
            return .done
        }
        if let stored { logger.info("re-attaching", metadata: ["backendJobId": "\(stored.backendJobId ?? "-")"]) }
        var adopted = false
        if record.backendJobId == nil, let since = record.submittingSince {
            switch unsaved.take(dispatch.jobId, since: since) {
            case .unsent?:
                // This process saved the intent, could not hear that it was saved (the server went
                // away as it answered), and so never sent the /run: nothing can be at the backend.
                logger.info("the last submission's intent was saved but its /run never went out; submitting it now")
                record.submittingSince = nil
            case .accepted(let backendJobId)?:
                // This process sent the /run and the backend accepted it, but the record could not
                // say so: the job is at the backend under this id.
                logger.info("the last submission was accepted but not recorded; following it", metadata: ["backendJobId": "\(backendJobId)"])
                record.backendJobId = backendJobId
                record.submittingSince = nil
                adopted = true
            case nil:
                break
            }
        }
        let flagged = try await isCancelled(dispatch.jobId)
        if job.cancelledInLedger || flagged {
            guard record.backendJobId != nil else {
                return try await fail(job, &record, .cancelled, "cancelled on request", retryable: true)
            }
            // At the backend already: stopped there too, in the loop below.
        }
        if adopted {
            try await recordSubmission(job, record)
        } else {
            try await save(record, job)
        }

        let client: RunPodClient
        switch try await self.client(for: dispatch.backend) {
        case .success(let found): client = found
        case .failure(let reason): return try await fail(job, &record, reason.code, reason.text, retryable: false)
        }
        let elapsed = Date().timeIntervalSince(record.startedAt)
        let remaining = configuration.jobDeadline - .milliseconds(Int64(max(0, elapsed) * 1000))
        let deadline = ContinuousClock.now + max(remaining, .zero)
        let started = record
        // A job that may be at the backend already takes its slot back whatever the limit.
        let atBackend = record.backendJobId != nil || record.submittingSince != nil
        let outcome = try await limiter.withSlot(
            dispatch.jobId.uuidString, limit: concurrencyLimit, until: deadline, atBackend: atBackend
        ) { slot in
            try await drive(job, started, client: client, slot: slot, deadline: deadline)
        }
        guard let outcome else {
            return try await fail(
                job, &record, .timedOut,
                "no backend slot became free before the job's deadline (\(configuration.jobDeadline.components.seconds) s); aiImageMaxConcurrent limits jobs at the backend",
                retryable: true)
        }
        return outcome
    }

    /// The loop of one job while it holds a concurrency slot: the ``FollowMachine`` decides, this
    /// carries its decisions out and tells it what happened.
    private func drive(
        _ job: FollowedJob, _ initial: DispatchRecord, client: some BackendEndpoint, slot: HeldSlot, deadline: ContinuousClock.Instant
    ) async throws -> HandlingOutcome {
        let dispatch = job.dispatch
        let logger = job.logger
        var machine = FollowMachine(
            record: initial, rules: .init(configuration, backend: dispatch.backend), deadline: deadline,
            expectedRun: executionTimes.estimate(ExecutionTimes.kind(dispatch.backend, dispatch.options)))
        while true {
            let reaction: FollowMachine.Reaction
            let flagged = try await isCancelled(dispatch.jobId)
            switch machine.next(now: .now, wallClock: Date(), cancelled: job.cancelledInLedger || flagged) {
            case .end(let ending):
                return try await end(job, &machine, ending, client: client, slot: slot)
            case .submit:
                // The ledger, read once more before a run is paid for: a job cancelled while Redis
                // was away (no flag), or ended by its deadline meanwhile, is not submitted.
                if let status = try await ledger.status(of: dispatch.jobId), status.isTerminal {
                    if status == .cancelled {
                        return try await end(job, &machine, machine.cancelledOnRequest(), client: client, slot: slot)
                    }
                    job.logger.info("the job ended before it was submitted; nothing sent", metadata: ["status": "\(status.rawValue)"])
                    await slot.release()
                    var record = machine.record
                    record.finished = true
                    try await save(record, job)
                    return .done
                }
                reaction = try await submit(job, &machine, client: client, slot: slot)
            case .findUnconfirmed:
                guard let found = try await findUnconfirmed(job, machine.record, client: client, deadline: deadline) else {
                    return try await end(job, &machine, machine.unconfirmedLost(), client: client, slot: slot)
                }
                machine.unconfirmedFound(found)
                try await recordSubmission(job, machine.record)
                reaction = .goOn
            case .poll(let wait):
                guard let backendJobId = machine.record.backendJobId else { continue }
                switch wait {
                case .none:
                    break
                case .webhook(let slice):
                    guard try await inbox.wait(for: dispatch.jobId, upTo: slice) else { continue }
                    logger.info("webhook called; confirming with /status", metadata: ["backendJobId": "\(backendJobId)"])
                case .delay(let delay):
                    // A webhook (if one was asked for and comes late) still cuts the wait short.
                    _ = try await inbox.wait(for: dispatch.jobId, upTo: delay)
                }
                let asked: Result<BackendJob, RunPodCallError>
                do { asked = .success(try await client.status(backendJobId)) } catch { asked = .failure(error) }
                switch asked {
                case .success(let answer):
                    let (freeSlot, next) = machine.statusAnswered(answer, now: .now)
                    if freeSlot { await slot.release() }
                    if case .handOver(let url) = next { return try await handOver(job, &machine, answer, outputURL: url) }
                    if case .failed = answer.status, case .submitAgain = next {
                        logger.warning("the backend could not fetch the input; submitting again", metadata: ["reason": "\(answer.failureReason)"])
                    } else if !answer.status.isKnown {
                        logger.warning("unknown backend status; still polling", metadata: ["status": "\(answer.status)"])
                    }
                    reaction = next
                case .failure(let error):
                    reaction = machine.statusFailed(error, now: .now)
                    switch reaction {
                    case .submitAgain: logger.warning("backend lost the job (404); submitting again", metadata: ["backendJobId": "\(backendJobId)"])
                    case .pause: logger.warning("status not available for now; retrying", metadata: ["error": "\(error)"])
                    default: break
                    }
                }
            }
            switch reaction {
            case .goOn:
                continue
            case .pause(let wait):
                try await Task.sleep(for: wait)
            case .reportProgress(let progress):
                try await broker.publish(GenerationProgressed(
                    correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId,
                    stage: .inProgress, detail: progress))
            case .submitAgain(let pause):
                try await save(machine.record, job)
                if let pause { try await Task.sleep(for: pause) }
            case .handOver:
                // Only an answer to /status hands a result over (above).
                continue
            case .end(let ending):
                return try await end(job, &machine, ending, client: client, slot: slot)
            }
        }
    }

    // MARK: Submission

    /// One `/run`: the input, the slot committed, the intent recorded, the webhook armed, the call,
    /// the answer recorded.
    private func submit(
        _ job: FollowedJob, _ machine: inout FollowMachine, client: some BackendEndpoint, slot: HeldSlot
    ) async throws -> FollowMachine.Reaction {
        let dispatch = job.dispatch
        let logger = job.logger
        // The input as it will be sent, before anything is committed: fetching an inline photo may fail.
        let input: JSONValue
        switch await inliner.input(for: dispatch, delivery: await imageDelivery(), logger: logger) {
        case .input(let ready): input = ready
        case .wait(let reason):
            logger.warning("the source photo cannot be had for now; waiting", metadata: ["reason": "\(reason)"])
            return machine.notReadyToSubmit(now: .now)
        case .refuse(let code, let reason):
            return .end(.init(code: code, reason: reason, retryable: false, atBackend: .release))
        }
        guard slot.isCommitted ? true : try await slot.commit() else {
            // The lease lapsed while waiting (a stall) and every slot is taken: wait like everyone else.
            logger.info("no backend slot free after a lapsed lease; waiting")
            return machine.notReadyToSubmit(now: .now)
        }
        // The intent, before anything leaves: a follower finding it without an id knows a /run may be out.
        let webhook = await armWebhook(dispatch, logger: logger)
        machine.willSubmit(webhookArmed: webhook != nil, at: Date())
        do {
            try await save(machine.record, job)
        } catch {
            // The intent may be stored all the same (a reply lost as Redis went away), and no /run is
            // sent: remembered, so that this process's next try does not take it for a lost answer.
            if let since = machine.record.submittingSince { unsaved.remember(dispatch.jobId, since: since, as: .unsent) }
            throw error
        }
        // `/run` and the record of its answer are not cut short by a shutdown (SIGTERM cancels the
        // follow to hand the job back): a `/run` cancelled in flight may have reached the backend
        // all the same, and only its answer, recorded, tells the next follower where the job is —
        // for RunPod without webhooks the job would end `submission_unconfirmed` while it ran.
        // Bounded by the shutdown's grace (past it the process exits as if killed).
        let key = machine.record.submissionKey(for: dispatch.jobId)
        let policy = configuration.policy
        let sent = try await Self.uncancelled({ () async -> Result<BackendJob, RunPodCallError> in
            do throws(RunPodCallError) {
                return .success(try await client.run(input: input, policy: policy, webhook: webhook, idempotencyKey: key))
            } catch {
                return .failure(error)
            }
        }, onCancel: {
            logger.info("shutting down while /run is out: its answer is awaited and recorded before the job is handed back")
        })
        let accepted: BackendJob
        switch sent {
        case .success(let job):
            accepted = job
        case .failure(let error):
            let intent = machine.record.submittingSince
            let reaction = machine.submissionFailed(error, now: .now)
            // Shielded as the answer's record is: an intent left saved after a refusal would end the
            // job `submission_unconfirmed` at its next follower although nothing was accepted.
            let record = machine.record
            do {
                try await Self.uncancelled { try await save(record, job) }
            } catch {
                // Nothing was accepted, and the record may still say a /run is out: this process's
                // next take of the job knows better.
                if let intent, record.submittingSince == nil { unsaved.remember(dispatch.jobId, since: intent, as: .unsent) }
                throw error
            }
            if case .pause = reaction {
                logger.warning(
                    error.isUnanswered ? "/run went out but no answer came back" : "backend refused /run for now; retrying",
                    metadata: ["error": "\(error)"])
            }
            return reaction
        }
        let intent = machine.record.submittingSince
        machine.accepted(accepted.id)
        let record = machine.record
        try await Self.uncancelled { try await recordAccepted(job, record, intent: intent) }
        logger.info("submitted", metadata: ["backendJobId": "\(accepted.id)", "attempt": "\(machine.record.attempt)"])
        return machine.submitted(accepted, now: .now)
    }

    /// Runs `body` to its end even when the calling task is cancelled (a shutdown): for the steps
    /// that must not be cut in half. A task of its own, which does not inherit the caller's cancellation.
    private static func uncancelled<T: Sendable>(
        _ body: @escaping @Sendable () async throws -> T, onCancel: @escaping @Sendable () -> Void = {}
    ) async throws -> T {
        let task = Task { try await body() }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { onCancel() }
    }

    /// The backend accepted `/run`: the record must say so, or whoever follows the job next finds only
    /// the intent and, for RunPod, cannot tell that the job is out (the job would end
    /// `submission_unconfirmed` while it runs at the backend unfollowed: the fault suite's `redis
    /// kill -9` met this). An outage (Redis killed is back within seconds) is waited out for up to
    /// the ownership's lifetime; the ownership is kept meanwhile, and a lost one stops this. Past
    /// that, the backend's id is remembered in this process for its next take of the job.
    private func recordAccepted(_ job: FollowedJob, _ record: DispatchRecord, intent: Date?) async throws {
        let giveUp = ContinuousClock.now + JobOwnership.lifetime
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        while true {
            do {
                try await recordSubmission(job, record)
                return
            } catch let error where Outage.isOutage(error) && ContinuousClock.now < giveUp {
                job.logger.warning("could not record the accepted submission; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: backoff.next())
            } catch {
                if let intent, let backendJobId = record.backendJobId {
                    unsaved.remember(job.dispatch.jobId, since: intent, as: .accepted(backendJobId))
                    job.logger.warning(
                        "could not record the accepted submission; remembered for the next take of the job",
                        metadata: ["backendJobId": "\(backendJobId)", "error": "\(error)"])
                }
                throw error
            }
        }
    }

    /// The backend has the job under the record's `backendJobId`: save the record and say so
    /// (GenerationSubmitted with the dispatcher's deadline, which the ledger's deadline follows).
    private func recordSubmission(_ job: FollowedJob, _ record: DispatchRecord) async throws {
        let dispatch = job.dispatch
        guard let backendJobId = record.backendJobId else { return }
        try await save(record, job)
        try await remember(backendJobId, dispatch, attempt: record.attempt)
        try await broker.publish(GenerationSubmitted(
            correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId,
            backend: dispatch.backend, backendJobId: backendJobId,
            deadline: record.startedAt.addingTimeInterval(configuration.jobDeadline.timeInterval)))
    }

    /// A RunPod submission whose answer was lost: waits (until the deadline) for the job's webhook to
    /// name the backend job, and confirms it with `/status`. nil: it cannot be found — the submission
    /// went without a webhook, or none came.
    private func findUnconfirmed(
        _ job: FollowedJob, _ record: DispatchRecord, client: some BackendEndpoint, deadline: ContinuousClock.Instant
    ) async throws -> String? {
        let dispatch = job.dispatch
        guard record.webhookSince != nil else { return nil }
        job.logger.info("waiting for the webhook of a submission whose answer was lost")
        while ContinuousClock.now < deadline {
            if try await isCancelled(dispatch.jobId) { return nil }
            if let candidate = reveals.take(dispatch.jobId) {
                // The body is only a hint: the backend must know the job, and it must not be another job's.
                if let owner = try await backendJobOwner(candidate, dispatch.backend), owner != dispatch.jobId { continue }
                do {
                    let status = try await client.status(candidate)
                    job.logger.info("the webhook named the unconfirmed submission; following it", metadata: ["backendJobId": "\(status.id)"])
                    return status.id
                } catch {
                    job.logger.warning("a webhook named a job the backend does not confirm", metadata: ["error": "\(error)"])
                }
            }
            _ = try await inbox.wait(for: dispatch.jobId, upTo: min(configuration.pollMax, max(deadline - .now, .milliseconds(1))))
        }
        return nil
    }

    // MARK: Ending

    /// The backend produced the result: hands it to the ingestor (GenerationRendered) and records that
    /// the job is finished here.
    private func handOver(
        _ job: FollowedJob, _ machine: inout FollowMachine, _ answer: BackendJob, outputURL: String
    ) async throws -> HandlingOutcome {
        let dispatch = job.dispatch
        if let ran = answer.executionTime {
            executionTimes.record(ExecutionTimes.kind(dispatch.backend, dispatch.options), milliseconds: ran)
        }
        var cost = answer.output?["cost"]?.doubleValue.flatMap { $0 >= 0 && $0.isFinite ? $0 : nil }
        if cost == nil, dispatch.backend == .runpod {
            cost = Self.megapixels(of: dispatch.input) * (await pricePerMegapixel())
        }
        try await broker.publish(GenerationRendered(
            correlationId: dispatch.correlationId, jobId: dispatch.jobId, mediaId: dispatch.mediaId, kind: dispatch.kind,
            batchId: dispatch.batchId, variationName: dispatch.variationName, backend: dispatch.backend,
            backendJobId: answer.id, outputUrl: outputURL, cost: cost,
            executionTimeMs: answer.executionTime.flatMap { $0 >= 0 ? $0 : nil }, options: dispatch.options,
            replyTo: dispatch.replyTo, source: dispatch.source))
        machine.finish()
        try await save(machine.record, job)
        job.logger.info("backend finished", metadata: ["backendJobId": "\(answer.id)", "executionTimeMs": "\(answer.executionTime ?? -1)"])
        return .done
    }

    /// Ends the job as the machine decided: first what must happen at the backend, then FAILED.
    private func end(
        _ job: FollowedJob, _ machine: inout FollowMachine, _ ending: FollowMachine.Ending, client: some BackendEndpoint, slot: HeldSlot
    ) async throws -> HandlingOutcome {
        switch ending.atBackend {
        case .stop: await stopAtBackend(job, machine.record, client: client, slot: slot)
        case .release: await slot.release()
        case .keep: break
        }
        var record = machine.record
        return try await fail(job, &record, ending.code, ending.reason, retryable: ending.retryable)
    }

    /// Stops the job at the backend before it is ended here. The slot is freed when the backend
    /// confirms; otherwise the job may still run there, so it keeps its slot and the
    /// ``OrphanSweeper`` cancels it again. Without a backend job (or with an unconfirmed submission,
    /// which cannot be named) nothing can be cancelled.
    private func stopAtBackend(_ job: FollowedJob, _ record: DispatchRecord, client: some BackendEndpoint, slot: HeldSlot) async {
        guard let backendJobId = record.backendJobId else {
            if record.submittingSince == nil { await slot.release() }
            return
        }
        do {
            _ = try await client.cancel(backendJobId)
            job.logger.info("cancelled at the backend", metadata: ["backendJobId": "\(backendJobId)"])
            await slot.release()
        } catch .http(status: 404, _) {
            // Gone at the backend already.
            await slot.release()
        } catch {
            job.logger.warning(
                "could not cancel at the backend; it keeps its slot and is cancelled again later",
                metadata: ["backendJobId": "\(backendJobId)", "error": "\(error)"])
            do {
                try await orphans.add(Orphan(jobId: job.dispatch.jobId, backend: job.dispatch.backend, backendJobId: backendJobId))
            } catch {
                job.logger.error("could not record the orphan; its slot lasts until its hold ends", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Ends the job as FAILED (events and `replyTo`) and records that it is finished.
    private func fail(
        _ job: FollowedJob, _ record: inout DispatchRecord, _ code: FailureCode, _ reason: String, retryable: Bool
    ) async throws -> HandlingOutcome {
        try await ending.fail(job.dispatch, code: code, reason: reason, retryable: retryable, backendJobId: record.backendJobId)
        record.finished = true
        try await save(record, job)
        return .done
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

    func client(for backend: GenerationBackend) async throws -> Result<RunPodClient, FailureText> {
        switch backend {
        case .local:
            return .success(RunPodClient(http: http, endpointURL: configuration.localEngineURL, apiKey: configuration.localEngineAPIKey))
        case .runpod:
            let key: String?
            do {
                key = try await runpodKey()
            } catch let error as SecretBoxError {
                // A permanent problem: waiting will not fix it, an operator must.
                return .failure(FailureText(
                    "the stored RunPod API key cannot be read (\(error.message)); set runpodApiKey again", code: .misconfigured))
            }
            guard let key, !key.isEmpty else {
                return .failure(FailureText(
                    "the RunPod API key (setting runpodApiKey) is not set; set it or choose aiImageBackend=local", code: .invalidRequest))
            }
            return .success(RunPodClient(http: http, endpointURL: configuration.runpodEndpointURL, apiKey: key))
        }
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

    private func isCancelled(_ jobId: UUID) async throws -> Bool {
        try await redis.get(JobKeys.cancelled(jobId)) != nil
    }

    /// Saves the record: in Redis, checking the ownership in the same step, and — for a backend
    /// that does not honour idempotency keys — its copy in the ledger, once Redis took it (a follower
    /// that lost the job writes neither).
    private func save(_ record: DispatchRecord, _ job: FollowedJob) async throws {
        var counted = record
        let saves = job.saves.next()
        counted.saves = saves
        try await ownership.save(counted, for: job.dispatch.jobId, owner: job.owner)
        if keepsLedgerCopy(job.dispatch.backend) {
            try await ledger.saveDispatchRecord(job.dispatch.jobId, json: try counted.json(), saves: saves)
        }
    }

    /// A repeated `/run` to the local engine is answered with the job it already has (the same
    /// idempotency key); one to RunPod is a second paid run, so RunPod jobs' records are also kept
    /// in the ledger, which outlives a Redis that lost its data.
    private func keepsLedgerCopy(_ backend: GenerationBackend) -> Bool {
        !configuration.honoursIdempotencyKeys(backend)
    }

    /// The job's record as Redis holds it, or the ledger's copy when that has the job further on:
    /// Redis lost the record (its data wiped, a failover to a replica that lagged), and without the
    /// copy the follower would submit a job that is at RunPod already.
    private func storedRecord(of dispatch: DispatchGeneration, logger: Logger) async throws -> DispatchRecord? {
        let inRedis = try await ownership.record(of: dispatch.jobId)
        guard keepsLedgerCopy(dispatch.backend),
              let copy = try await ledger.dispatchRecord(of: dispatch.jobId).flatMap(DispatchRecord.init(json:))
        else { return inRedis }
        if let inRedis, !copy.isFurther(than: inRedis) { return inRedis }
        logger.warning(
            "Redis does not have the job's record as far as the ledger's copy has it; continuing from the copy",
            metadata: ["inRedis": "\(inRedis == nil ? "nothing" : "an earlier state")", "backendJobId": "\(copy.backendJobId ?? "-")"])
        return copy
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

    /// The job a backend job id belongs to, if this deployment remembers it.
    private func backendJobOwner(_ backendJobId: String, _ backend: GenerationBackend) async throws -> UUID? {
        guard let text = try await redis.get(JobKeys.backendJob(backend.rawValue, backendJobId)),
              let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)),
              let id = value["jobId"]?.stringValue else { return nil }
        return UUID(uuidString: id)
    }
}

/// A dispatch being followed, and by whom.
struct FollowedJob: Sendable {
    var dispatch: DispatchGeneration
    /// This follower's ownership token.
    var owner: String
    /// The ledger said CANCELLED when the dispatch was taken. The cancel's Redis flag is how a
    /// running follower hears of it, but the gateway writes the ledger first: a cancel made while
    /// Redis was away (or a flag Redis lost) is still a cancel.
    var cancelledInLedger = false
    var logger: Logger
    /// The job's record saves (``DispatchRecord/saves``), counted on from the record it started from.
    let saves = SaveCount()
}

/// A count that only goes up, shared by one follow's saves.
final class SaveCount: Sendable {
    private let count = Mutex(0)

    /// Counts on from `saves` (the record the follow started from).
    func start(after saves: Int) { count.withLock { $0 = max($0, saves) } }

    func next() -> Int {
        count.withLock { value in
            value += 1
            return value
        }
    }
}

/// A reason a job cannot run, for ``JobFollower``.
struct FailureText: Error {
    var text: String
    var code: FailureCode
    init(_ text: String, code: FailureCode) {
        self.text = text
        self.code = code
    }
}

/// Submissions whose record this process could not save, so it does not know what Redis holds:
/// an intent whose `/run` it never sent (the intent's save failed), or a `/run` the backend accepted
/// (the save of its id failed). A follower of the same job in this process that finds the intent
/// without an id submits (``unsent``) or follows the backend's job (``accepted(_:)``) instead of
/// taking it for a `/run` whose answer was lost (``JobFollower``). Another process cannot know, and
/// treats the intent as a `/run` that may be out.
final class UnsavedSubmissions: Sendable {
    enum Fate: Equatable, Sendable {
        case unsent
        case accepted(String)
    }

    private let submissions = Mutex<[UUID: (since: Date, fate: Fate)]>([:])

    func remember(_ jobId: UUID, since: Date, as fate: Fate) {
        submissions.withLock { $0[jobId] = (since, fate) }
    }

    /// What became of the submission whose intent was recorded `since`, once, if it is the one
    /// remembered for the job (the stored timestamp may have lost sub-millisecond precision).
    func take(_ jobId: UUID, since: Date) -> Fate? {
        submissions.withLock { submissions in
            guard let remembered = submissions[jobId], abs(remembered.since.timeIntervalSince(since)) < 0.002 else { return nil }
            submissions[jobId] = nil
            return remembered.fate
        }
    }
}
