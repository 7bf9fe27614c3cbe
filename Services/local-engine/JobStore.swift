import RunPod
import Shared
import Foundation
import Metrics

/// The engine's jobs: the bounded FIFO queue, the running slots, finished results until they expire,
/// and the state machine between them. One actor, so every transition is atomic.
///
/// IN_QUEUE → IN_PROGRESS → COMPLETED | FAILED | TIMED_OUT, any non-terminal → CANCELLED,
/// FAILED | TIMED_OUT → IN_QUEUE (retry, same id). An invalid input goes straight to FAILED.
/// Every terminal transition is reported to `onTerminal` (webhooks) and wakes `/runsync` waiters.
actor JobStore {
    struct Limits: Sendable {
        var concurrency: Int
        var queueLimit: Int
        var queueByteLimit: Int
        var resultTTL: Duration
    }

    /// Why a job could not be queued.
    enum Rejection: Error, Equatable {
        case queueFull(String)
        case notFound
        case notRetryable(JobStatus)
    }

    let limits: Limits
    let workerId: String
    private let onTerminal: @Sendable (JobStatusBody, _ inlineImage: ResultKey?) -> Void
    private let wake: @Sendable () -> Void
    private let clock = ContinuousClock()

    private var jobs: [String: JobRecord] = [:]
    private var pending: [String] = []
    private var queuedBytes = 0
    private var runningSlots = 0
    private var totals: [JobStatus: Int] = [:]
    private var retried = 0
    private var waiters: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]
    /// `Idempotency-Key` of a submission → the job it made, while that job lives.
    private var byKey: [String: String] = [:]
    private let queueDepth = Gauge(label: "local_engine_queue_depth")
    private let runningGauge = Gauge(label: "local_engine_running_jobs")

    init(
        limits: Limits, workerId: String,
        onTerminal: @escaping @Sendable (JobStatusBody, ResultKey?) -> Void,
        wake: @escaping @Sendable () -> Void
    ) {
        self.limits = limits
        self.workerId = workerId
        self.onTerminal = onTerminal
        self.wake = wake
    }

    // MARK: Submission

    /// Adds a job: queued when its input is valid, FAILED at once when not. 429 when the queue is full.
    /// A submission with the `idempotencyKey` of a job that still lives gets that job instead of a new
    /// one (a client whose first answer was lost sends the same submission again).
    func submit(
        submission: JobSubmission, options: Result<StudioShotInput, JobFailure>,
        endpointId: String, baseURL: String, requestBytes: Int, idempotencyKey: String? = nil
    ) throws(Rejection) -> JobView {
        if let idempotencyKey, let existing = byKey[idempotencyKey] {
            if let record = live(existing) { return view(record) }
            byKey[idempotencyKey] = nil
        }
        let valid = (try? options.get()) != nil
        if valid { try admit(bytes: requestBytes) }
        var record = JobRecord(
            id: UUID().uuidString.lowercased(), endpointId: endpointId, baseURL: baseURL, webhook: submission.webhook,
            policy: submission.policy ?? JobPolicy(), requestBytes: requestBytes, input: submission.input,
            options: options, submittedAt: clock.now)
        record.idempotencyKey = idempotencyKey
        if let idempotencyKey { byKey[idempotencyKey] = record.id }
        if case .failure(let failure) = options {
            record.status = .failed
            record.error = failure.message
            record.finishedAt = record.submittedAt
            jobs[record.id] = record
            finished(record)
        } else {
            jobs[record.id] = record
            enqueue(record.id)
        }
        return view(jobs[record.id]!)
    }

    private func admit(bytes: Int) throws(Rejection) {
        dropExpiredQueued()
        let queued = pending.count
        if queued >= limits.queueLimit {
            throw .queueFull("the queue is full (\(queued) of \(limits.queueLimit) jobs waiting); retry later")
        }
        if queuedBytes + bytes > limits.queueByteLimit, queued > 0 {
            throw .queueFull("queued requests hold \(queuedBytes >> 20) MB of \(limits.queueByteLimit >> 20) MB; retry later")
        }
    }

    private func enqueue(_ id: String) {
        pending.append(id)
        queuedBytes += jobs[id]?.requestBytes ?? 0
        queueDepth.record(pending.count)
        wake()
    }

    private func dequeue(_ id: String) {
        guard let index = pending.firstIndex(of: id) else { return }
        pending.remove(at: index)
        queuedBytes -= jobs[id]?.requestBytes ?? 0
        queueDepth.record(pending.count)
    }

    // MARK: Workers

    /// The next queued job, now IN_PROGRESS, when a slot is free.
    func startNext() -> JobTicket? {
        dropExpiredQueued()
        guard runningSlots < limits.concurrency, let id = pending.first, var record = jobs[id] else { return nil }
        dequeue(id)
        record.status = .inProgress
        record.startedAt = clock.now
        jobs[id] = record
        runningSlots += 1
        runningGauge.record(runningSlots)
        return JobTicket(
            id: id, attempt: record.attempt, options: record.options,
            executionTimeout: .milliseconds(record.policy.executionTimeout))
    }

    /// Registers how to stop the running attempt (cancel, timeout, TTL).
    func setAbort(id: String, attempt: Int, _ abort: @escaping @Sendable () -> Void) {
        guard jobs[id]?.attempt == attempt, jobs[id]?.status == .inProgress else { return abort() }
        jobs[id]?.abort = abort
    }

    /// Records a worker's outcome; ignored when the job was cancelled, timed out or expired meanwhile.
    /// Returns false when the outcome was discarded (the caller deletes the result file).
    @discardableResult
    func finish(id: String, attempt: Int, outcome: Result<RenderedSummary, JobFailure>) -> Bool {
        guard var record = jobs[id], record.attempt == attempt, record.status == .inProgress else { return false }
        switch outcome {
        case .success(let summary):
            record.status = .completed
            record.result = summary
            if let output = record.statusBody(workerId: workerId).output, let json = try? JSONValue(encoding: output) {
                record.stream.append(["output": json])
            }
        case .failure(let failure):
            record.status = failure.code == .timedOut ? .timedOut : .failed
            record.error = failure.message
        }
        record.finishedAt = clock.now
        record.abort = nil
        jobs[id] = record
        finished(record)
        return true
    }

    /// A worker's slot is free again (its render has really stopped).
    func releaseSlot() {
        runningSlots -= 1
        runningGauge.record(runningSlots)
        wake()
    }

    // MARK: Client operations

    func view(id: String) -> JobView? {
        guard let record = live(id) else { return nil }
        return view(record)
    }

    /// Cancels a queued or running job; a finished job is left as it is. Nil when unknown or expired.
    func cancel(id: String) -> JobView? {
        guard var record = live(id) else { return nil }
        guard !record.status.isTerminal else { return view(record) }
        if record.status == .inQueue { dequeue(id) }
        record.abort?()
        record.abort = nil
        record.status = .cancelled
        record.finishedAt = clock.now
        jobs[id] = record
        finished(record)
        return view(record)
    }

    /// Ends every queued job CANCELLED ("purged from the queue") and returns how many; running jobs go
    /// on. RunPod drops purged jobs; ending them instead tells a client that follows one (the
    /// dispatcher) that it will not run, where a 404 would read as a lost job to submit again.
    func purgeQueue() -> Int {
        let purged = pending
        for id in purged {
            guard var record = jobs[id] else { continue }
            dequeue(id)
            record.status = .cancelled
            record.error = "purged from the queue (/purge-queue) before it started"
            record.finishedAt = clock.now
            jobs[id] = record
            finished(record)
        }
        return purged.count
    }

    /// Adds a stage the running attempt reached to what `/stream` hands out.
    func note(id: String, attempt: Int, stage: String) {
        guard jobs[id]?.attempt == attempt, jobs[id]?.status == .inProgress else { return }
        jobs[id]?.stream.append(["output": ["stage": .string(stage)]])
    }

    /// `/stream`: the job's status and the chunks not handed out yet (each only once, as RunPod's
    /// stream does); once COMPLETED the last chunk is the final output. Nil when unknown or expired.
    func takeStream(id: String) -> (status: JobStatus, chunks: [JSONValue])? {
        guard var record = live(id) else { return nil }
        let chunks = Array(record.stream[record.streamed...])
        record.streamed = record.stream.count
        jobs[id] = record
        return (record.status, chunks)
    }

    /// Queues a FAILED or TIMED_OUT job again under the same id.
    func retry(id: String) throws(Rejection) -> JobView {
        guard var record = live(id) else { throw .notFound }
        guard record.status == .failed || record.status == .timedOut else { throw .notRetryable(record.status) }
        try admit(bytes: record.requestBytes)
        record.status = .inQueue
        record.attempt += 1
        record.submittedAt = clock.now
        record.startedAt = nil
        record.finishedAt = nil
        record.error = nil
        record.result = nil
        record.stream = []
        record.streamed = 0
        jobs[id] = record
        retried += 1
        enqueue(id)
        return view(record)
    }

    /// The result file, when the job is COMPLETED and not expired.
    func resultKey(id: String) -> ResultKey? {
        live(id)?.resultKey
    }

    /// Suspends until the job is terminal or gone, or the calling task is cancelled.
    func waitUntilSettled(id: String) async {
        guard let record = live(id), !record.status.isTerminal, !Task.isCancelled else { return }
        let token = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if Task.isCancelled { return continuation.resume() }
                waiters[id, default: [:]][token] = continuation
            }
        } onCancel: {
            Task { await self.dropWaiter(id: id, token: token) }
        }
    }

    private func dropWaiter(id: String, token: UUID) {
        waiters[id]?.removeValue(forKey: token)?.resume()
    }

    // MARK: Expiry

    /// Deletes jobs past their TTL or retention; returns the result files to remove.
    func sweep() -> [ResultKey] {
        let now = clock.now
        var files: [ResultKey] = []
        for (id, record) in jobs where record.isExpired(at: now, resultTTL: limits.resultTTL) {
            if record.status == .inQueue { dequeue(id) }
            record.abort?()
            if let key = record.resultKey { files.append(key) }
            if let key = record.idempotencyKey { byKey[key] = nil }
            jobs[id] = nil
            resumeWaiters(id)
        }
        return files
    }

    func health() -> (jobs: EngineHealth.Jobs, workers: EngineHealth.Workers) {
        dropExpiredQueued()
        let inProgress = jobs.values.count { $0.status == .inProgress }
        let jobs = EngineHealth.Jobs(
            completed: totals[.completed, default: 0], failed: totals[.failed, default: 0],
            cancelled: totals[.cancelled, default: 0], timedOut: totals[.timedOut, default: 0], retried: retried,
            inProgress: inProgress, inQueue: pending.count)
        return (jobs, .init(idle: max(0, limits.concurrency - runningSlots), running: runningSlots))
    }

    // MARK: Internals

    /// Queued jobs past their TTL never start (the sweeper would catch them later; this is now).
    private func dropExpiredQueued() {
        let now = clock.now
        for id in pending where jobs[id]?.isExpired(at: now, resultTTL: limits.resultTTL) ?? true {
            dequeue(id)
            if let key = jobs[id]?.idempotencyKey { byKey[key] = nil }
            jobs[id] = nil
            resumeWaiters(id)
        }
    }

    /// The job, unless it is unknown or has expired (the sweeper removes it soon after).
    private func live(_ id: String) -> JobRecord? {
        guard let record = jobs[id], !record.isExpired(at: clock.now, resultTTL: limits.resultTTL) else { return nil }
        return record
    }

    private func view(_ record: JobRecord) -> JobView {
        JobView(body: record.statusBody(workerId: workerId), inlineImage: record.inlineImage)
    }

    private func finished(_ record: JobRecord) {
        totals[record.status, default: 0] += 1
        Counter(label: "local_engine_jobs_total", dimensions: [("status", record.status.rawValue)]).increment()
        if record.webhook != nil {
            onTerminal(record.webhookBody(workerId: workerId), record.inlineImage)
        }
        // Only a FAILED or TIMED_OUT job can run again; drop the others' input (it may be a 10 MB data URI).
        if record.status == .completed || record.status == .cancelled { jobs[record.id]?.input = nil }
        resumeWaiters(record.id)
    }

    private func resumeWaiters(_ id: String) {
        guard let continuations = waiters.removeValue(forKey: id) else { return }
        for continuation in continuations.values { continuation.resume() }
    }
}
