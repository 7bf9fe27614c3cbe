import Foundation
@testable import RunPodDispatcher
import RunPod
import Shared
import Testing

/// The dispatcher's decisions for one job, without Redis, HTTP or a broker: every branch of the
/// follower's loop (submit, find a lost submission, wait, poll, submit again, time out, cancel, hand
/// over) driven by the answers a backend can give.
@Suite("Follow machine (the dispatcher's decisions)")
struct FollowMachineTests {
    static let start = ContinuousClock.now
    static let wallStart = Date()

    static func rules(idempotent: Bool = false, maxResubmits: Int = 2) -> FollowMachine.Rules {
        .init(
            honoursIdempotencyKeys: idempotent, maxResubmits: maxResubmits, pollInitial: .milliseconds(500),
            pollMax: .seconds(5), webhookWait: .seconds(120), jobDeadline: .seconds(600))
    }

    static func machine(
        _ record: DispatchRecord = DispatchRecord(startedAt: wallStart, attempt: 1), idempotent: Bool = false, maxResubmits: Int = 2,
        expectedRun: Duration? = nil
    ) -> FollowMachine {
        FollowMachine(
            record: record, rules: rules(idempotent: idempotent, maxResubmits: maxResubmits), deadline: start + .seconds(600),
            expectedRun: expectedRun)
    }

    static func job(_ json: String) throws -> BackendJob {
        try JSONDecoder().decode(BackendJob.self, from: Data(json.utf8))
    }

    static func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    /// Submits and has the backend accept the job as `status`.
    static func submitted(_ machine: inout FollowMachine, status: String = "IN_QUEUE", webhook: Bool = false) throws -> FollowMachine.Reaction {
        #expect(machine.next(now: at(0), wallClock: wallStart, cancelled: false) == .submit)
        machine.willSubmit(webhookArmed: webhook, at: wallStart)
        #expect(machine.record.submittingSince == wallStart, "the intent is recorded before /run goes out")
        machine.accepted("rp-1")
        #expect(machine.record.backendJobId == "rp-1" && machine.record.submittingSince == nil)
        return machine.submitted(try job(#"{"id": "rp-1", "status": "\#(status)"}"#), now: at(0))
    }

    @Test func aNewJobIsSubmittedThenPolledWithAGrowingWaitUpToTheMaximum() throws {
        var machine = Self.machine()
        #expect(try Self.submitted(&machine) == .goOn)
        var waits: [Duration] = []
        for _ in 0..<8 {
            guard case .poll(after: .delay(let wait)) = machine.next(now: Self.at(1), wallClock: Self.wallStart, cancelled: false) else {
                Issue.record("expected a poll after a delay")
                return
            }
            waits.append(wait)
            #expect(machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_QUEUE"}"#), now: Self.at(1)) == (false, .goOn))
        }
        #expect(waits.first == .milliseconds(500))
        #expect(waits[1] == .milliseconds(750))
        #expect(zip(waits, waits.dropFirst()).allSatisfy { $0 <= $1 }, "\(waits)")
        #expect(waits.last == .seconds(5))
    }

    @Test func aCancelStopsTheJobAtTheBackendWhateverItsState() throws {
        var fresh = Self.machine()
        #expect(fresh.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: true)
                == .end(.init(code: .cancelled, reason: "cancelled on request", retryable: true, atBackend: .stop)))
        var running = Self.machine()
        _ = try Self.submitted(&running)
        guard case .end(let ending) = running.next(now: Self.at(3), wallClock: Self.wallStart, cancelled: true) else {
            Issue.record("a cancel ends the job")
            return
        }
        #expect(ending.code == .cancelled && ending.atBackend == .stop)
    }

    @Test func theDeadlineEndsTheJobNamingTheBackendsLastWord() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        _ = machine.next(now: Self.at(1), wallClock: Self.wallStart, cancelled: false)
        _ = machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS"}"#), now: Self.at(1))
        guard case .end(let ending) = machine.next(now: Self.at(600), wallClock: Self.wallStart, cancelled: false) else {
            Issue.record("the deadline ends the job")
            return
        }
        #expect(ending.code == .timedOut && ending.atBackend == .stop && ending.retryable)
        #expect(ending.reason.contains("600 s") && ending.reason.contains("last backend status: IN_PROGRESS"), "\(ending.reason)")
    }

    @Test func waitsNeverRunPastTheDeadline() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        guard case .poll(after: .delay(let wait)) = machine.next(now: Self.at(599.8), wallClock: Self.wallStart, cancelled: false) else {
            Issue.record("expected a poll")
            return
        }
        #expect(wait <= .milliseconds(200))
        guard case .pause(let pause) = machine.statusFailed(.transport("refused"), now: Self.at(599.9)) else {
            Issue.record("no connection is trouble to wait out")
            return
        }
        #expect(pause <= .milliseconds(100))
    }

    @Test func aLostRunPodSubmissionIsLookedForNeverSentAgain() throws {
        var machine = Self.machine()
        #expect(machine.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false) == .submit)
        machine.willSubmit(webhookArmed: true, at: Self.wallStart)
        guard case .pause = machine.submissionFailed(.unanswered("read timeout"), now: Self.at(1)) else {
            Issue.record("an unanswered /run is waited on")
            return
        }
        #expect(machine.record.submittingSince != nil, "the intent stays: the job may be at RunPod")
        #expect(machine.next(now: Self.at(2), wallClock: Self.wallStart, cancelled: false) == .findUnconfirmed)

        // Found by its webhook: followed, asked at once, under the same attempt.
        var found = machine
        found.unconfirmedFound("rp-9")
        #expect(found.record.backendJobId == "rp-9" && found.record.attempt == 1)
        #expect(found.next(now: Self.at(3), wallClock: Self.wallStart, cancelled: false) == .poll(after: .none))

        // Not found: ended without a second submission, the slot kept (it may run there, unnamed).
        let lost = machine.unconfirmedLost()
        #expect(lost.code == .submissionUnconfirmed && lost.atBackend == .keep)
        #expect(lost.reason.contains("not sent again") && lost.reason.contains("its webhook did not name it"), "\(lost.reason)")
        var withoutWebhook = Self.machine()
        withoutWebhook.willSubmit(webhookArmed: false, at: Self.wallStart)
        #expect(withoutWebhook.unconfirmedLost().reason.contains("with webhooks on (aiImageEnableWebhooks)"))
    }

    @Test func aLostSubmissionToTheLocalEngineIsSentAgainUnderTheSameKey() throws {
        var machine = Self.machine(idempotent: true)
        _ = machine.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
        machine.willSubmit(webhookArmed: false, at: Self.wallStart)
        let key = machine.record.submissionKey(for: UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301")!)
        _ = machine.submissionFailed(.unanswered("reset"), now: Self.at(1))
        #expect(machine.next(now: Self.at(2), wallClock: Self.wallStart, cancelled: false) == .submit)
        #expect(machine.record.submissionKey(for: UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301")!) == key)
    }

    @Test func aRefusedRunIsRetriedForNowAndEndedForGood() throws {
        var busy = Self.machine()
        _ = busy.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
        busy.willSubmit(webhookArmed: false, at: Self.wallStart)
        guard case .pause(let first) = busy.submissionFailed(.http(status: 429, body: ""), now: Self.at(0)) else {
            Issue.record("429 is waited out")
            return
        }
        #expect(first >= .milliseconds(500) && first <= .seconds(1))
        #expect(busy.record.submittingSince == nil, "nothing was accepted: the next /run is a plain submission")
        #expect(busy.next(now: Self.at(2), wallClock: Self.wallStart, cancelled: false) == .submit)

        // A proxy's 502 / 504, or a 2xx that is not a job: the endpoint may have accepted it. The
        // intent stays and the next step looks for the job instead of sending a second /run.
        for maybe in [RunPodCallError.http(status: 502, body: "bad gateway"), .http(status: 504, body: ""), .invalidReply("{}")] {
            var unsure = Self.machine()
            _ = unsure.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
            unsure.willSubmit(webhookArmed: false, at: Self.wallStart)
            guard case .pause = unsure.submissionFailed(maybe, now: Self.at(0)) else {
                Issue.record("\(maybe) is waited out")
                continue
            }
            #expect(unsure.record.submittingSince == Self.wallStart, "\(maybe): the intent stays")
            #expect(unsure.next(now: Self.at(2), wallClock: Self.wallStart, cancelled: false) == .findUnconfirmed, "\(maybe)")
        }
        var serverError = Self.machine()
        _ = serverError.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
        serverError.willSubmit(webhookArmed: false, at: Self.wallStart)
        _ = serverError.submissionFailed(.http(status: 500, body: "internal"), now: Self.at(0))
        #expect(serverError.record.submittingSince == nil, "the endpoint's own 500 refused it")

        var refused = Self.machine()
        _ = refused.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
        refused.willSubmit(webhookArmed: false, at: Self.wallStart)
        guard case .end(let ending) = refused.submissionFailed(.http(status: 401, body: "bad key"), now: Self.at(0)) else {
            Issue.record("401 ends the job")
            return
        }
        #expect(ending.code == .backendFailed && !ending.retryable && ending.atBackend == .release)

        var failedAtRun = Self.machine()
        guard case .end(let atRun) = try Self.submitted(&failedAtRun, status: "FAILED") else {
            Issue.record("a FAILED answer to /run ends the job")
            return
        }
        #expect(atRun.code == .backendFailed && !atRun.retryable && atRun.atBackend == .release)
    }

    @Test func aJobLostByTheBackendIsSubmittedAgainAsANewAttemptAtMostMaxResubmitsTimes() throws {
        var machine = Self.machine(maxResubmits: 2)
        for attempt in 1...3 {
            _ = try Self.submitted(&machine)
            #expect(machine.record.attempt == attempt)
            _ = machine.next(now: Self.at(1), wallClock: Self.wallStart, cancelled: false)
            let reaction = machine.statusFailed(.http(status: 404, body: "not found"), now: Self.at(1))
            if attempt <= 2 {
                #expect(reaction == .submitAgain(pause: nil))
                #expect(machine.record.backendJobId == nil && machine.record.resubmits == attempt && machine.record.attempt == attempt + 1)
            } else {
                guard case .end(let ending) = reaction else {
                    Issue.record("the third loss ends the job")
                    return
                }
                #expect(ending.code == .backendFailed && ending.atBackend == .release)
                #expect(ending.reason.contains("after 2 resubmission(s)"), "\(ending.reason)")
            }
        }
    }

    @Test func statusTroubleIsWaitedOutAndAnUnreadableAnswerEndsTheJob() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        var pauses: [Duration] = []
        for _ in 0..<6 {
            guard case .pause(let pause) = machine.statusFailed(.http(status: 503, body: ""), now: Self.at(1)) else {
                Issue.record("5xx is waited out")
                return
            }
            pauses.append(pause)
        }
        #expect(pauses.allSatisfy { $0 <= .seconds(30) } && pauses.last! >= .seconds(15), "1 s doubling to 30 s: \(pauses)")
        // An answer resets the backoff.
        _ = machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_QUEUE"}"#), now: Self.at(1))
        guard case .pause(let afterAnswer) = machine.statusFailed(.transport("x"), now: Self.at(1)) else { return }
        #expect(afterAnswer <= .seconds(1))

        guard case .end(let ending) = machine.statusFailed(.invalidReply("<html>"), now: Self.at(1)) else {
            Issue.record("an unreadable reply ends the job")
            return
        }
        #expect(ending.code == .backendFailed && ending.atBackend == .stop, "it may still run there: cancel it")
    }

    @Test func progressIsReportedOnceForEachChange() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        let first = machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS"}"#), now: Self.at(1))
        #expect(first == (false, .reportProgress(nil)))
        #expect(machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "RUNNING"}"#), now: Self.at(2)) == (false, .goOn))
        #expect(machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS", "output": {"progress": "rendering"}}"#), now: Self.at(3))
                == (false, .reportProgress("rendering")))
        #expect(machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS", "output": {"progress": "rendering"}}"#), now: Self.at(4))
                == (false, .goOn))
    }

    @Test func aCompletedJobIsHandedOverAndItsSlotFreed() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        let done = machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "COMPLETED", "output": {"image_url": "https://image.runpod.ai/x.png"}}"#), now: Self.at(5))
        #expect(done == (true, .handOver(outputURL: "https://image.runpod.ai/x.png")))
        #expect(!machine.record.finished, "finished only once the result was handed over")
        machine.finish()
        #expect(machine.record.finished)

        var noImage = Self.machine()
        _ = try Self.submitted(&noImage)
        let (freed, reaction) = noImage.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "COMPLETED", "output": {"image_url": "ftp://x"}}"#), now: Self.at(5))
        guard case .end(let ending) = reaction else {
            Issue.record("COMPLETED without an http(s) image ends the job")
            return
        }
        #expect(freed && ending.code == .invalidOutput)
    }

    @Test func aRunThatCouldNotFetchItsInputIsSubmittedAgainOtherFailuresEndTheJob() throws {
        var machine = Self.machine(maxResubmits: 1)
        _ = try Self.submitted(&machine)
        let fetch = try Self.job(#"{"id": "rp-1", "status": "FAILED", "error": "Invalid image URL"}"#)
        let (freed, reaction) = machine.statusAnswered(fetch, now: Self.at(1))
        guard case .submitAgain(pause: let pause?) = reaction else {
            Issue.record("a run that could not fetch its input did no work: submitted again, after a pause")
            return
        }
        #expect(freed && pause <= .seconds(1) && machine.record.attempt == 2)
        _ = try Self.submitted(&machine)
        guard case .end(let ending) = machine.statusAnswered(fetch, now: Self.at(2)).reaction else {
            Issue.record("resubmissions are limited")
            return
        }
        #expect(ending.code == .backendFailed && ending.reason.contains("Invalid image URL"))

        for (status, code) in [("FAILED", FailureCode.backendFailed), ("TIMED_OUT", .timedOut), ("CANCELLED", .cancelled)] {
            var other = Self.machine()
            _ = try Self.submitted(&other)
            let (freed, reaction) = other.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "\#(status)", "error": "CUDA out of memory"}"#), now: Self.at(1))
            guard case .end(let ending) = reaction else {
                Issue.record("\(status) ends the job")
                continue
            }
            #expect(freed && ending.code == code && ending.atBackend == .release, "\(status)")
        }
    }

    @Test func withAWebhookItWaitsForTheWebhookThenPolls() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine, webhook: true)
        #expect(machine.next(now: Self.at(1), wallClock: Self.wallStart.addingTimeInterval(1), cancelled: false)
                == .poll(after: .webhook(.seconds(5))), "in slices of at most pollMax, so a cancel is seen")
        #expect(machine.next(now: Self.at(118), wallClock: Self.wallStart.addingTimeInterval(118), cancelled: false)
                == .poll(after: .webhook(.seconds(2))))
        #expect(machine.next(now: Self.at(121), wallClock: Self.wallStart.addingTimeInterval(121), cancelled: false)
                == .poll(after: .delay(.milliseconds(500))), "no webhook within webhookWait: polling takes over")
    }

    @Test func aReattachedJobOrOneEndedAtOnceIsAskedAboutWithoutWaiting() throws {
        var record = DispatchRecord(startedAt: Self.wallStart, attempt: 1)
        record.backendJobId = "rp-7"
        var reattached = Self.machine(record)
        #expect(reattached.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false) == .poll(after: .none))
        #expect(reattached.next(now: Self.at(1), wallClock: Self.wallStart, cancelled: false) == .poll(after: .delay(.milliseconds(500))))

        var repeated = Self.machine()
        #expect(try Self.submitted(&repeated, status: "COMPLETED") == .goOn)
        #expect(repeated.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false) == .poll(after: .none))
    }

    @Test func anUnknownStatusKeepsThePollingGoing() throws {
        var machine = Self.machine()
        _ = try Self.submitted(&machine)
        let paused = try Self.job(#"{"id": "rp-1", "status": "PAUSED_BY_OPERATOR"}"#)
        #expect(!paused.status.isKnown)
        #expect(machine.statusAnswered(paused, now: Self.at(1)) == (false, .goOn))
        guard case .end(let ending) = machine.next(now: Self.at(600), wallClock: Self.wallStart, cancelled: false) else { return }
        #expect(ending.reason.contains("PAUSED_BY_OPERATOR"))
    }

    /// The poll's wait the machine asks for at `seconds`, or nil when it asks for something else.
    static func pollWait(_ machine: inout FollowMachine, at seconds: Double) -> Duration? {
        guard case .poll(after: .delay(let wait)) = machine.next(now: at(seconds), wallClock: wallStart, cancelled: false) else { return nil }
        return wait
    }

    /// With recent runs known, the first poll goes when the job should be done, then polls follow
    /// closely (a thirtieth of the run, growing gently) instead of on the 1.5x schedule.
    @Test func withAnExpectedRunThePollGoesWhenTheJobShouldBeDone() throws {
        var machine = Self.machine(expectedRun: .seconds(3))
        _ = try Self.submitted(&machine, status: "IN_PROGRESS")
        #expect(Self.pollWait(&machine, at: 0) == .seconds(3), "one wait until the job should be done")
        #expect(machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS", "delayTime": 0}"#), now: Self.at(3)).freeSlot == false)
        var waits: [Duration] = []
        var now = 3.0
        for _ in 0..<6 {
            let wait = try #require(Self.pollWait(&machine, at: now))
            waits.append(wait)
            now += wait / .seconds(1)
            _ = machine.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS", "delayTime": 0}"#), now: Self.at(now))
        }
        #expect(waits.first == .milliseconds(100), "a thirtieth of 3 s: \(waits)")
        #expect(waits[1] == .milliseconds(125), "growing 1.25x: \(waits)")
        #expect(zip(waits, waits.dropFirst()).allSatisfy { $0 < $1 }, "\(waits)")
        // The fine wait is never below 20 ms nor above the configured first wait.
        #expect(Self.machine(expectedRun: .milliseconds(100)).fineWait == .milliseconds(20))
        #expect(Self.machine(expectedRun: .seconds(60)).fineWait == .milliseconds(500))
        #expect(Self.machine().fineWait == .milliseconds(500))
    }

    /// What the backend says moves the expected end: a queued job is polled on the plain schedule; a
    /// running one's delay pushes the end back; a long expected run is still polled every pollMax.
    @Test func theExpectedEndFollowsWhatTheBackendSays() throws {
        var queued = Self.machine(expectedRun: .seconds(2))
        _ = try Self.submitted(&queued)
        #expect(Self.pollWait(&queued, at: 0) == .seconds(2))
        _ = queued.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_QUEUE"}"#), now: Self.at(2))
        #expect(Self.pollWait(&queued, at: 2) == .milliseconds(500), "still queued: the plain schedule")
        // Started 2.5 s after /run answered: done at 4.5 s.
        _ = queued.statusAnswered(try Self.job(#"{"id": "rp-1", "status": "IN_PROGRESS", "delayTime": 2500}"#), now: Self.at(2.5))
        #expect(Self.pollWait(&queued, at: 2.5) == .seconds(2))
        #expect(Self.pollWait(&queued, at: 4.5) == .seconds(2) / 30, "past it: the fine wait")

        var long = Self.machine(expectedRun: .seconds(60))
        _ = try Self.submitted(&long, status: "IN_PROGRESS")
        #expect(Self.pollWait(&long, at: 0) == .seconds(5), "never more than pollMax between polls")
        #expect(Self.pollWait(&long, at: 50) == .seconds(5))
        #expect(Self.pollWait(&long, at: 58) == .seconds(2))

        // A new attempt starts from what its own /run answer says.
        var lost = Self.machine(expectedRun: .seconds(2))
        _ = try Self.submitted(&lost, status: "IN_PROGRESS")
        _ = lost.next(now: Self.at(0), wallClock: Self.wallStart, cancelled: false)
        #expect(lost.statusFailed(.http(status: 404, body: ""), now: Self.at(2)) == .submitAgain(pause: nil))
        #expect(lost.next(now: Self.at(2), wallClock: Self.wallStart, cancelled: false) == .submit)
        lost.accepted("rp-2")
        _ = lost.submitted(try Self.job(#"{"id": "rp-2", "status": "IN_QUEUE"}"#), now: Self.at(2.1))
        #expect(Self.pollWait(&lost, at: 2.1) == .seconds(2))
    }

    /// The estimate is a low quantile of the last runs of the same kind, none before three.
    @Test func theExpectedRunIsALowQuantileOfRecentRunsOfTheSameKind() {
        let times = ExecutionTimes(capacity: 5, minimumSamples: 3, quantile: 0.2)
        let kind = "local/x1"
        times.record(kind, milliseconds: 2000)
        times.record(kind, milliseconds: 1000)
        #expect(times.estimate(kind) == nil, "two runs are not enough")
        times.record(kind, milliseconds: 3000)
        #expect(times.estimate(kind) == .milliseconds(1000))
        #expect(times.estimate("local/x4") == nil, "another kind knows nothing")
        for ms in [5000, 6000, 7000, 8000] { times.record(kind, milliseconds: ms) }
        #expect(times.estimate(kind) == .milliseconds(3000), "only the last five are kept: 3000...8000")
        times.record(kind, milliseconds: -1)
        #expect(times.estimate(kind) == .milliseconds(3000), "a negative time is not a run")
    }

    /// Which of two records a follower continues from when Redis's and the ledger's copy disagree:
    /// the one saved later (Redis lost its data, or a save reached one store only). Records from
    /// before saves were counted are ordered by how far the job got.
    @Test func theRecordSavedLastIsTheOneFollowed() throws {
        // Whole milliseconds: the JSON keeps dates to the millisecond.
        let start = Date(timeIntervalSince1970: 1_796_000_000.123)
        var fresh = DispatchRecord(startedAt: start, attempt: 1)
        fresh.saves = 1
        var intent = fresh
        intent.submittingSince = start
        intent.saves = 2
        var refused = intent
        refused.submittingSince = nil
        refused.saves = 3
        var accepted = intent
        accepted.backendJobId = "rp-1"
        accepted.saves = 3

        #expect(intent.isFurther(than: fresh))
        #expect(accepted.isFurther(than: intent))
        #expect(refused.isFurther(than: intent), "an intent cleared after a refused /run stays cleared: nothing was sent")
        #expect(!intent.isFurther(than: refused), "the ledger's older intent does not win over Redis's later save")
        for record in [fresh, intent, refused, accepted] {
            #expect(!record.isFurther(than: record), "a copy equal to Redis's is not taken over it")
        }

        // Without save counts (records from before): how far the job got.
        func uncounted(_ record: DispatchRecord) -> DispatchRecord {
            var record = record
            record.saves = nil
            return record
        }
        var resubmitted = uncounted(accepted)
        resubmitted.backendJobId = nil
        resubmitted.resubmits = 1
        var finished = uncounted(accepted)
        finished.finished = true
        #expect(uncounted(intent).isFurther(than: uncounted(fresh)))
        #expect(uncounted(accepted).isFurther(than: uncounted(intent)))
        #expect(finished.isFurther(than: uncounted(accepted)))
        #expect(resubmitted.isFurther(than: uncounted(accepted)), "a resubmission after the first run ended")
        #expect(DispatchRecord(startedAt: start, attempt: 2).isFurther(than: finished), "the next attempt")
        #expect(accepted.isFurther(than: uncounted(accepted)), "a counted save is later than an uncounted one")

        // The copy travels as JSON in the ledger and comes back the same.
        var sent = resubmitted
        sent.saves = 7
        sent.submittingSince = start.addingTimeInterval(2)
        sent.webhookSince = sent.submittingSince
        #expect(DispatchRecord(json: try sent.json()) == sent)
        #expect(DispatchRecord(json: "{}") == nil)
    }
}
