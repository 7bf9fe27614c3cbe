import Crypto
import Foundation
@testable import RunPodDispatcher
import ServiceCore
import ServiceSupport
import Testing

@Suite("Webhook tokens")
struct WebhookTokenTests {
    @Test func aTokenIsFreshUnguessableAndMatchesOnlyItsOwnDigest() {
        let token = WebhookToken.make()
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit), "32 random bytes: \(token)")
        #expect(WebhookToken.make() != token)
        let digest = WebhookToken.digest(token)
        #expect(digest == Digest.sha256Hex(Data(token.utf8)))
        #expect(WebhookToken.matches(token, digest: digest))
        #expect(!WebhookToken.matches(String(token.dropLast()) + (token.hasSuffix("0") ? "1" : "0"), digest: digest))
        #expect(!WebhookToken.matches("", digest: digest))
        #expect(!WebhookToken.matches(token, digest: String(digest.dropLast())), "a malformed digest")
        #expect(!WebhookToken.matches(token, digest: digest.uppercased()), "digests are compared as stored")
    }

    @Test(arguments: [
        "https://shop.example.com", "https://shop.example.com/", " https://shop.example.com ",
        "https://shop.example.com/api/ai-image/webhook", "https://shop.example.com/api/ai-image/webhook/",
    ])
    func theURLIsTheBasePlusTheRouteWhateverTheBaseEndsWith(base: String) throws {
        let job = try #require(UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301"))
        #expect(WebhookToken.url(base: base, jobId: job, token: "abc")
                == "https://shop.example.com/api/ai-image/webhook/3f2504e0-4f89-41d3-9a0c-0305e82c3301/abc")
    }
}

@Suite("Doorbell (webhook notices, freed slots)")
struct DoorbellTests {
    let job = UUID()

    @Test func aNoticeWakesTheWaitingFollower() async throws {
        let inbox = Doorbell<UUID>()
        inbox.register(job)
        async let woke = inbox.wait(for: job, upTo: .seconds(60))
        // Whether or not the waiter is waiting yet, the notice reaches it.
        #expect(inbox.ring(job))
        #expect(try await woke == true)
    }

    @Test func aNoticeWhileNotWaitingIsKeptForTheNextWaitOnce() async throws {
        let inbox = Doorbell<UUID>()
        inbox.register(job)
        #expect(inbox.ring(job))
        #expect(try await inbox.wait(for: job, upTo: .seconds(60)) == true)
        #expect(try await inbox.wait(for: job, upTo: .milliseconds(50)) == false, "used up")
    }

    @Test func noticesForJobsNotFollowedHereAreDropped() async throws {
        let inbox = Doorbell<UUID>()
        #expect(!inbox.ring(job))
        inbox.register(job)
        #expect(try await inbox.wait(for: job, upTo: .milliseconds(50)) == false, "the early notice was not kept")
        inbox.unregister(job)
        #expect(!inbox.ring(job))
    }

    @Test func cancellingAWaitLeavesNoWaiterBehind() async throws {
        let inbox = Doorbell<UUID>()
        inbox.register(job)
        let waiting = Task { try await inbox.wait(for: job, upTo: .seconds(60)) }
        try await waiters(inbox, 1)
        waiting.cancel()
        _ = try? await waiting.value
        // The next notice is kept for the next wait rather than resuming a cancelled one.
        #expect(inbox.ring(job))
        #expect(try await inbox.wait(for: job, upTo: .seconds(60)) == true)
    }

    /// Waits (at most 10 s) until `count` tasks wait for the job.
    func waiters(_ bell: Doorbell<UUID>, _ count: Int) async throws {
        for _ in 0..<1000 where bell.waiting(for: job) != count { try await Task.sleep(for: .milliseconds(10)) }
        try #require(bell.waiting(for: job) == count, "\(bell.waiting(for: job)) waiting, expected \(count)")
    }

    @Test func oneRingWakesEveryoneOrJustOne() async throws {
        let bell = Doorbell<UUID>()
        bell.register(job)
        func threeWaiters() -> Task<[Bool], any Error> {
            Task {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for _ in 0..<3 { group.addTask { try await bell.wait(for: job, upTo: .seconds(60)) } }
                    return try await group.reduce(into: [Bool]()) { $0.append($1) }
                }
            }
        }
        let one = threeWaiters()
        try await waiters(bell, 3)
        bell.ring(job, everyone: false)
        try await waiters(bell, 2)
        bell.unregister(job) // the other two return without a ring
        #expect(try await one.value.sorted { !$0 && $1 } == [false, false, true], "one slot, one taker")

        bell.register(job)
        let all = threeWaiters()
        try await waiters(bell, 3)
        bell.ring(job)
        #expect(try await all.value == [true, true, true])
    }

    /// A ring can meet a wait that is just timing out: it must still be seen (by that wait or the
    /// next). A lost ring once left a job waiting its whole webhook window (found by bench-batch).
    @Test func aRingThatMeetsATimeoutIsNeverLost() async throws {
        let bell = Doorbell<UUID>()
        bell.register(job)
        for round in 0..<300 {
            let ringer = Task {
                try await Task.sleep(for: .microseconds(Int64.random(in: 0...400)))
                bell.ring(job)
            }
            var seen = false
            for _ in 0..<2000 where !seen { seen = try await bell.wait(for: job, upTo: .microseconds(100)) }
            try await ringer.value
            #expect(seen, "round \(round): the ring was lost")
            if !seen { break }
        }
    }
}

/// A submission whose record could not be saved: the same process knows whether its `/run` went
/// out, and under which backend id it was accepted.
@Suite("Unsaved submissions")
struct UnsavedSubmissionTests {
    @Test func onlyTheRememberedSubmissionOfTheJobIsTakenAndOnlyOnce() {
        let unsaved = UnsavedSubmissions()
        let job = UUID(), other = UUID()
        let since = Date(timeIntervalSince1970: 1_800_000_000.1234)
        unsaved.remember(job, since: since, as: .unsent)
        #expect(unsaved.take(other, since: since) == nil, "another job's intent")
        #expect(unsaved.take(job, since: since.addingTimeInterval(1)) == nil, "a later intent of the same job")
        // As stored: the record keeps milliseconds.
        #expect(unsaved.take(job, since: Date(timeIntervalSince1970: 1_800_000_000.123)) == .unsent)
        #expect(unsaved.take(job, since: since) == nil, "once")
    }

    @Test func anAcceptedSubmissionIsTakenWithItsBackendId() {
        let unsaved = UnsavedSubmissions()
        let job = UUID()
        let since = Date(timeIntervalSince1970: 1_800_000_000.5)
        unsaved.remember(job, since: since, as: .unsent)
        // The same intent's /run went out after all and was accepted (the later word counts).
        unsaved.remember(job, since: since, as: .accepted("default-3-967a2802"))
        #expect(unsaved.take(job, since: since) == .accepted("default-3-967a2802"))
        #expect(unsaved.take(job, since: since) == nil, "once")
    }
}
