import Foundation
import RunPod
import ServiceCore
import Shared
import Timing

/// The decisions of one job's follower while the job holds a backend slot, free of effects: what to do
/// next (submit, look for a lost submission, wait, poll, end), and what each answer from the backend
/// means (go on, wait, report progress, submit again, hand the result over, fail). ``JobFollower``
/// carries the decisions out (Redis, HTTP, the broker) and tells the machine what happened; the tests
/// drive the machine alone (`FollowMachineTests`).
///
/// The machine owns the job's ``DispatchRecord``: every change to it is made here, and the follower
/// saves ``record`` after each call that changes it, before it acts on the answer.
struct FollowMachine: Sendable {
    /// The dispatcher's rules for one backend.
    struct Rules: Sendable {
        /// The backend answers a repeated `/run` with the job it already has (the local engine).
        var honoursIdempotencyKeys: Bool
        var maxResubmits: Int
        var pollInitial: Duration
        var pollMax: Duration
        var webhookWait: Duration
        /// The whole job's deadline, for the reasons that name it.
        var jobDeadline: Duration

        init(_ configuration: DispatcherConfiguration, backend: GenerationBackend) {
            honoursIdempotencyKeys = configuration.honoursIdempotencyKeys(backend)
            maxResubmits = configuration.maxResubmits
            pollInitial = configuration.pollInitial
            pollMax = configuration.pollMax
            webhookWait = configuration.webhookWait
            jobDeadline = configuration.jobDeadline
        }

        init(
            honoursIdempotencyKeys: Bool, maxResubmits: Int, pollInitial: Duration, pollMax: Duration,
            webhookWait: Duration, jobDeadline: Duration
        ) {
            self.honoursIdempotencyKeys = honoursIdempotencyKeys
            self.maxResubmits = maxResubmits
            self.pollInitial = pollInitial
            self.pollMax = pollMax
            self.webhookWait = webhookWait
            self.jobDeadline = jobDeadline
        }
    }

    /// How the job ends here: FAILED with a code and a reason, after doing `atBackend`.
    struct Ending: Equatable, Sendable {
        enum AtBackend: Equatable, Sendable {
            /// It may still run there: cancel it first (the slot is freed when the backend confirms).
            case stop
            /// It no longer runs there (or never got there): free the slot.
            case release
            /// It may have reached the backend under an id nobody knows: nothing can be cancelled, and
            /// the slot stays taken until its hold ends.
            case keep
        }

        var code: FailureCode
        var reason: String
        var retryable: Bool
        var atBackend: AtBackend
    }

    enum Step: Equatable, Sendable {
        case end(Ending)
        /// Send `/run` (a new submission, or the same one again to a backend that honours its key).
        case submit
        /// A RunPod submission whose answer was lost: look for its job by the job's webhook.
        case findUnconfirmed
        /// Ask the backend for the job's status, after `Wait`.
        case poll(after: Wait)
    }

    enum Wait: Equatable, Sendable {
        case none
        /// For the job's webhook, at most this long; when it does not come, decide again.
        case webhook(Duration)
        /// This long (a webhook cuts it short).
        case delay(Duration)
    }

    enum Reaction: Equatable, Sendable {
        /// Decide the next step at once.
        case goOn
        /// Trouble (the backend refused for now, no answer, the photo not to be had): wait, then go on.
        case pause(Duration)
        /// Publish the backend's progress, then go on.
        case reportProgress(String?)
        /// The backend no longer runs this attempt: the record now asks for a new one. Save it, wait
        /// if asked, go on.
        case submitAgain(pause: Duration?)
        /// The backend produced the result: hand it over, then ``finish()``.
        case handOver(outputURL: String)
        case end(Ending)
    }

    let rules: Rules
    let deadline: ContinuousClock.Instant
    private(set) var record: DispatchRecord
    /// The backend's last word on the job, for the reason of a timeout.
    private(set) var lastStatus = "not yet submitted"
    private var reportedProgress: String?? = .none
    /// Poll without waiting: a re-attached job (its webhook may have come while nobody followed it),
    /// a job the backend ended at once, a lost submission just found.
    private var askNow: Bool
    private var pollWait: Duration
    /// How much each poll's wait grows: 1.5x while nothing is known of when the job ends; gently
    /// (1.25x, from the fine interval) once it is past the end it was expected at.
    private var pollGrowth = 1.5
    private var trouble = Backoff(initial: .seconds(1), maximum: .seconds(30))
    /// How long runs like this one took at the backend lately (a low quantile, ``ExecutionTimes``):
    /// polls go when the job should be done rather than on a fixed schedule. nil: nothing known yet.
    let expectedRun: Duration?
    /// When `/run` answered for the current attempt.
    private var acceptedAt: ContinuousClock.Instant?
    /// When the job should be done: `/run`'s answer plus the backend's delay (once reported) plus
    /// ``expectedRun``. No poll goes before it (but one every ``Rules/pollMax``); after it, polls
    /// follow closely. nil: not known (no estimate, still queued, or already past it).
    private var expectedEnd: ContinuousClock.Instant?
    /// The current attempt ran past its expected end: polls follow closely, the end moves no more.
    private var pastExpectedEnd = false

    init(record: DispatchRecord, rules: Rules, deadline: ContinuousClock.Instant, expectedRun: Duration? = nil) {
        self.record = record
        self.rules = rules
        self.deadline = deadline
        self.expectedRun = expectedRun
        askNow = record.backendJobId != nil
        pollWait = rules.pollInitial
    }

    /// The wait between polls once a job is past its expected end: a thirtieth of the expected run
    /// (what a poll may then lag behind the job's end is ~1.5 % of it), 20 ms at least, never more
    /// than the configured first wait.
    var fineWait: Duration {
        guard let expectedRun else { return rules.pollInitial }
        return max(min(rules.pollInitial, expectedRun / 30), .milliseconds(20))
    }

    // MARK: The next step

    /// The end of a job cancelled on request: stopped at the backend if it is there.
    func cancelledOnRequest() -> Ending {
        Ending(code: .cancelled, reason: "cancelled on request", retryable: true, atBackend: .stop)
    }

    mutating func next(now: ContinuousClock.Instant, wallClock: Date, cancelled: Bool) -> Step {
        if cancelled { return .end(cancelledOnRequest()) }
        if now >= deadline {
            return .end(Ending(
                code: .timedOut,
                reason: "no result within the job's deadline of \(rules.jobDeadline.components.seconds) s (last backend status: \(lastStatus))",
                retryable: true, atBackend: .stop))
        }
        guard record.backendJobId != nil else {
            // A submission may have reached RunPod with its answer lost: never send it twice.
            if record.submittingSince != nil, !rules.honoursIdempotencyKeys { return .findUnconfirmed }
            return .submit
        }
        if askNow {
            askNow = false
            return .poll(after: .none)
        }
        let untilDeadline = max(deadline - now, .milliseconds(1))
        if let since = record.webhookSince,
           case let left = rules.webhookWait - .milliseconds(Int64(wallClock.timeIntervalSince(since) * 1000)),
           left > .zero {
            // Waiting for the webhook; when none comes by the end of the wait, polling takes over. In
            // slices, so a cancel is seen as soon as without webhooks.
            return .poll(after: .webhook(min(left, rules.pollMax, untilDeadline)))
        }
        if let end = expectedEnd {
            if now < end { return .poll(after: .delay(min(end - now, rules.pollMax, untilDeadline))) }
            // Due now: from here on, polls follow closely.
            expectedEnd = nil
            pastExpectedEnd = true
            pollWait = fineWait
            pollGrowth = 1.25
        }
        let wait = min(pollWait, untilDeadline)
        pollWait = min(pollWait * pollGrowth, rules.pollMax)
        return .poll(after: .delay(wait))
    }

    // MARK: Submission

    /// The photo cannot be had for now, or no slot is free after a lapsed lease: wait and try again.
    mutating func notReadyToSubmit(now: ContinuousClock.Instant) -> Reaction {
        .pause(troubleWait(now: now))
    }

    /// `/run` is about to go out (with a webhook when `webhookArmed`): the intent is recorded first, so
    /// a follower that finds it without a job id knows a submission may be at the backend.
    mutating func willSubmit(webhookArmed: Bool, at time: Date) {
        if record.submittingSince == nil { record.submittingSince = time }
        record.webhookSince = webhookArmed ? time : nil
    }

    /// `/run` did not give a job.
    mutating func submissionFailed(_ error: RunPodCallError, now: ContinuousClock.Instant) -> Reaction {
        switch error {
        case _ where error.mayHaveBeenAccepted:
            // It may have been accepted (no answer, a proxy's 502 / 504, a 2xx that is not a job):
            // the intent stays, and the next step resolves it (the same key again at the local
            // engine; RunPod's webhook, or the job ends unconfirmed with its slot kept) instead of
            // a second /run that could be a second paid run.
            return .pause(troubleWait(now: now))
        case _ where error.isTransient:
            // An answer that refuses (429, 500, 503) or no connection at all: nothing was accepted.
            record.submittingSince = nil
            return .pause(troubleWait(now: now))
        default:
            record.submittingSince = nil
            return .end(Ending(code: .backendFailed, reason: "the backend refused the job: \(error)", retryable: false, atBackend: .release))
        }
    }

    /// The backend has the job under `backendJobId` (from `/run`'s answer, or a lost submission found).
    mutating func accepted(_ backendJobId: String) {
        record.backendJobId = backendJobId
        record.submittingSince = nil
    }

    /// What `/run`'s answer means, once ``accepted(_:)`` recorded it; `now` is when it came.
    mutating func submitted(_ job: BackendJob, now: ContinuousClock.Instant) -> Reaction {
        if job.status == .failed {
            // RunPod may refuse a job with HTTP 400 and a FAILED job object.
            return .end(Ending(
                code: .backendFailed, reason: "the backend refused the job: \(job.failureReason)", retryable: false, atBackend: .release))
        }
        lastStatus = job.status.rawValue
        pollWait = rules.pollInitial
        pollGrowth = 1.5
        pastExpectedEnd = false
        trouble.reset()
        // Expected to start at once (a slot was free); the first answer that says otherwise moves it.
        acceptedAt = now
        expectedEnd = expectedRun.map { now + $0 }
        // A backend that ended the job at once (an invalid input, a repeat of a finished one) is seen now.
        askNow = job.status.isTerminal
        return .goOn
    }

    /// A lost submission was found under `backendJobId`: follow it, asking at once.
    mutating func unconfirmedFound(_ backendJobId: String) {
        accepted(backendJobId)
        askNow = true
    }

    /// A lost submission could not be found: it is not sent again (no double charge).
    func unconfirmedLost() -> Ending {
        let sent = record.submittingSince.map { MessageCoding.formatTimestamp($0) } ?? "-"
        let hint = record.webhookSince == nil
            ? "; with webhooks on (aiImageEnableWebhooks), Cyclorama finds such a job by its webhook"
            : " and its webhook did not name it"
        return Ending(
            code: .submissionUnconfirmed,
            reason: "the backend did not answer /run (\(sent)); the job may have been accepted there, so it was not sent again (no double charge)\(hint)",
            retryable: true, atBackend: .keep)
    }

    // MARK: Status

    /// `/status` did not give the job.
    mutating func statusFailed(_ error: RunPodCallError, now: ContinuousClock.Instant) -> Reaction {
        switch error {
        case .http(status: 404, _):
            // Expired (TTL, retention) or unknown at the backend: it is lost, and no longer runs there.
            guard record.resubmits < rules.maxResubmits else {
                return .end(Ending(
                    code: .backendFailed,
                    reason: "the backend lost job \(record.backendJobId ?? "-") (404 on /status) after \(record.resubmits) resubmission(s)",
                    retryable: true, atBackend: .release))
            }
            startNewAttempt()
            return .submitAgain(pause: nil)
        case _ where error.isTransient:
            return .pause(troubleWait(now: now))
        default:
            return .end(Ending(code: .backendFailed, reason: "the backend's status call failed: \(error)", retryable: true, atBackend: .stop))
        }
    }

    /// What the backend's answer to `/status` means. `freeSlot`: the backend is done with the job, so
    /// its slot is free for the next one now.
    mutating func statusAnswered(_ job: BackendJob, now: ContinuousClock.Instant) -> (freeSlot: Bool, reaction: Reaction) {
        trouble.reset()
        lastStatus = job.status.rawValue
        expectEnd(job, now: now)
        return (job.status.isTerminal, reaction(to: job, now: now))
    }

    /// Moves the expected end by what the backend says: still queued, nothing is expected yet; once
    /// running, its delay (queue time) pushes the end back (an end found already passed makes the
    /// next poll a close one). Once past the expected end, it moves no more.
    private mutating func expectEnd(_ job: BackendJob, now: ContinuousClock.Instant) {
        guard let expectedRun, let acceptedAt, !pastExpectedEnd else { return }
        if job.status == .inQueue {
            expectedEnd = nil
        } else if job.status.isRunning {
            if let delay = job.delayTime {
                expectedEnd = acceptedAt + .milliseconds(max(delay, 0)) + expectedRun
            } else if expectedEnd == nil {
                // Started since the last answer, at a time not reported: counted from now.
                expectedEnd = now + expectedRun
            }
        }
    }

    private mutating func reaction(to job: BackendJob, now: ContinuousClock.Instant) -> Reaction {
        switch job.status {
        case .inQueue:
            return .goOn
        case _ where job.status.isRunning:
            guard reportedProgress != .some(job.progress) else { return .goOn }
            reportedProgress = .some(job.progress)
            return .reportProgress(job.progress)
        case .completed:
            guard let url = job.resultURL, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? "") else {
                return .end(Ending(
                    code: .invalidOutput,
                    reason: "the backend reported COMPLETED without an output image URL (output: \(RunPodClient.printable(job.output?.jsonText ?? "none")))",
                    retryable: true, atBackend: .release))
            }
            return .handOver(outputURL: url)
        case .failed where Self.couldNotFetchInput(job.failureReason) && record.resubmits < rules.maxResubmits:
            // The source was unreachable for a moment (the gateway restarting): such a run did no work
            // and costs nothing, so it is submitted again.
            startNewAttempt()
            return .submitAgain(pause: troubleWait(now: now))
        case .failed:
            return .end(Ending(code: .backendFailed, reason: "the backend failed the job: \(job.failureReason)", retryable: true, atBackend: .release))
        case .timedOut:
            return .end(Ending(code: .timedOut, reason: "the backend timed the job out: \(job.failureReason)", retryable: true, atBackend: .release))
        case .cancelled:
            return .end(Ending(code: .cancelled, reason: "the backend cancelled the job", retryable: true, atBackend: .release))
        default:
            // A status this build does not know: keep polling (the follower logs it).
            return .goOn
        }
    }

    // MARK: The end

    /// A terminal event was published: a redelivery has nothing left to do.
    mutating func finish() {
        record.finished = true
    }

    // MARK: Helpers

    /// The backend no longer runs the job's current attempt (lost, or failed before doing any work):
    /// the next step submits it again as a new attempt (a new idempotency key).
    private mutating func startNewAttempt() {
        record.resubmits += 1
        record.attempt += 1
        record.backendJobId = nil
        record.webhookSince = nil
        record.submittingSince = nil
        acceptedAt = nil
        expectedEnd = nil
    }

    /// The next wait after trouble: 1 s doubling to 30 s, never past the deadline.
    private mutating func troubleWait(now: ContinuousClock.Instant) -> Duration {
        min(trouble.next(), max(deadline - now, .milliseconds(1)))
    }

    /// Whether a backend's failure says it could not download the job's input (RunPod's workers:
    /// "Invalid image URL"; the local engine: "input.image: could not fetch …").
    static func couldNotFetchInput(_ reason: String) -> Bool {
        let text = reason.lowercased()
        return text.contains("invalid image url") || text.contains("input.image: could not fetch")
            || (text.contains("input.image") && text.contains("answered http 5"))
    }
}
