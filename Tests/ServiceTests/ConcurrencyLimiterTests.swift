import Foundation
import Logging
import Redis
@testable import RunPodDispatcher
import Synchronization
import Testing
import TestSupport

/// The global limit on jobs at the backend, against the real Redis: several limiters on one key
/// stand for several dispatcher instances.
@Suite("Concurrency limiter (Redis leases)")
struct ConcurrencyLimiterTests {
    func withLimiters(
        _ count: Int, lease: Duration = .seconds(30), hold: Duration = .seconds(600), _ body: ([ConcurrencyLimiter]) async throws -> Void
    ) async throws {
        let client = RedisClient(configuration: try RedisConfiguration(url: TestEnvironment.redisURL), logger: Logger(label: "test.limiter"))
        let key = "test:\(TestEnvironment.uniqueName("leases"))"
        let limiters = (0..<count).map { _ in ConcurrencyLimiter(redis: client, key: key, lease: lease, hold: hold, logger: Logger(label: "test.limiter")) }
        do {
            try await body(limiters)
            _ = try? await client.delete(key)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }

    @Test func holdsTheLimitIsReentrantAndFreesReleasedSlots() async throws {
        try await withLimiters(2) { (limiters: [ConcurrencyLimiter]) async throws in
            let (a, b) = (limiters[0], limiters[1])
            #expect(try await a.tryAcquire("job-1", limit: 2) == true)
            #expect(try await b.tryAcquire("job-2", limit: 2) == true)
            #expect(try await a.tryAcquire("job-3", limit: 2) == false, "a third job while two hold slots")
            #expect(try await b.tryAcquire("job-1", limit: 2) == true, "a job re-attaching on another instance keeps its slot")
            await a.release("job-2")
            #expect(try await b.tryAcquire("job-3", limit: 2) == true, "a released slot is free again")
            #expect(try await a.tryAcquire("job-4", limit: 2) == false)
            #expect(try await a.tryAcquire("job-4", limit: 3) == true, "a raised limit applies at once")
        }
    }

    @Test func theSlotsOfACrashedInstanceComeBackWhenTheirLeasesExpire() async throws {
        try await withLimiters(2) { (limiters: [ConcurrencyLimiter]) async throws in
            #expect(try await limiters[0].tryAcquire("crashed-1", limit: 1) == true)
            #expect(try await limiters[1].tryAcquire("waiting", limit: 1) == false)
            // The first instance "dies" and nobody renews its lease: let the lease run out (its expiry
            // in the past, by Redis's clock, as after `lease` without renewal).
            _ = try await limiters[0].redis.eval(
                "return redis.call('ZADD', KEYS[1], 1, ARGV[1])", keys: [limiters[0].key], arguments: ["crashed-1"])
            #expect(try await limiters[1].tryAcquire("waiting", limit: 1) == true, "the expired lease was dropped")
            #expect(try await limiters[0].tryAcquire("crashed-1", limit: 1) == false, "and its slot is taken")
        }
    }

    @Test func aLapsedLeaseIsNotTakenBackByRenewalAndItsJobMustWinAFreeSlotToCommit() async throws {
        try await withLimiters(2) { (limiters: [ConcurrencyLimiter]) async throws in
            #expect(try await limiters[0].tryAcquire("stalled", limit: 1) == true)
            // The holder stalls past its lease (its expiry in the past) and another job takes the slot.
            _ = try await limiters[0].redis.eval(
                "return redis.call('ZADD', KEYS[1], 1, ARGV[1])", keys: [limiters[0].key], arguments: ["stalled"])
            #expect(try await limiters[1].tryAcquire("other", limit: 1) == true)
            // Back again: renewing does not put the lapsed lease back over the limit, nor may the job submit.
            #expect(try await limiters[0].renew("stalled") == false)
            #expect(try await limiters[0].commit("stalled", limit: 1) == false, "no slot to submit with")
            #expect(try await limiters[0].holders() == ["other"])
            await limiters[1].release("other")
            #expect(try await limiters[0].commit("stalled", limit: 1) == true, "a free slot again")
        }
    }

    @Test func aCommittedSlotOutlivesItsFollowerUntilTheBackendMustHaveDroppedTheJob() async throws {
        // A short lease and a long hold: a committed slot is not the lease's any more. (9 s, as its
        // neighbours': a lease lapsing under a stall before the commit is by design, not this test's point.)
        try await withLimiters(2, lease: .seconds(9), hold: .seconds(600)) { (limiters: [ConcurrencyLimiter]) async throws in
            let (a, b) = (limiters[0], limiters[1])
            struct FollowerDied: Error {}
            await #expect(throws: FollowerDied.self) {
                _ = try await a.withSlot("submitted", limit: { 1 }, until: .now + .seconds(10)) { slot throws -> Bool in
                    #expect(try await slot.commit())
                    throw FollowerDied()
                }
            }
            let score = try await a.redis.command(["ZSCORE", a.key, "submitted"]).stringValue.flatMap(Double.init)
            let now = try await a.redis.eval(
                "local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)", keys: [], arguments: []).intValue
            let left = (score ?? 0) - Double(now ?? 0)
            #expect(left > 590_000, "held for the backend's lifetime of the job, not the 9 s lease: \(left) ms")
            #expect(try await b.tryAcquire("next", limit: 1) == false, "the job may still run at the backend")
            // A follower that re-attaches takes the committed slot over; the backend's end releases it.
            let reattached = try await b.withSlot("submitted", limit: { 1 }, until: .now + .seconds(10), atBackend: true) { slot in
                await slot.release()
                return true
            }
            #expect(reattached == true)
            #expect(try await b.tryAcquire("next", limit: 1) == true)
        }
    }

    @Test func withSlotNeverLetsMoreThanTheLimitRunAcrossInstances() async throws {
        final class Gauge: Sendable {
            let state = Mutex((now: 0, peak: 0, ran: 0))
        }
        let gauge = Gauge()
        // A lease longer than a stall of the machine: a lapsed lease lets another instance take the
        // slot by design (a holder that stopped renewing may be dead), which is not what this test
        // is about. With 3 s, a third job ran while six fault-suite lanes booted their servers.
        try await withLimiters(3, lease: .seconds(9)) { (limiters: [ConcurrencyLimiter]) async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<12 {
                    let limiter = limiters[index % 3]
                    group.addTask {
                        let ran = try await limiter.withSlot("job-\(index)", limit: { 2 }, until: .now + .seconds(120)) { _ in
                            gauge.state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                            try await Task.sleep(for: .milliseconds(150))
                            gauge.state.withLock { $0.now -= 1; $0.ran += 1 }
                            return true
                        }
                        #expect(ran == true)
                    }
                }
                try await group.waitForAll()
            }
        }
        let result = gauge.state.withLock { $0 }
        #expect(result.ran == 12)
        #expect(result.peak <= 2, "at most aiImageMaxConcurrent at once, whichever instance: peak \(result.peak)")
        #expect(result.peak == 2, "the limit is used, not just respected")
    }

    @Test func withSlotGivesUpAtTheDeadline() async throws {
        try await withLimiters(1) { (limiters: [ConcurrencyLimiter]) async throws in
            #expect(try await limiters[0].tryAcquire("holder", limit: 1) == true)
            let ran = try await limiters[0].withSlot("late", limit: { 1 }, until: .now + .milliseconds(300)) { _ in true }
            #expect(ran == nil, "no slot before the deadline")
        }
    }

    @Test func aSlotReleasedEarlyIsFreeForTheNextJobBeforeTheFirstEnds() async throws {
        // A lease renews every third of itself: after the release the renewal must not put the lease
        // back. 9 s, not the shortest DISPATCH_LEASE_SECONDS (3): a 3 s lease lapsed before the
        // second limiter looked when a full parallel run was starting (CI, 2026-12-05).
        try await withLimiters(2, lease: .seconds(9)) { (limiters: [ConcurrencyLimiter]) async throws in
            let (a, b) = (limiters[0], limiters[1])
            let ran = try await a.withSlot("first", limit: { 1 }, until: .now + .seconds(30)) { slot throws -> [Bool] in
                let whileHeld = try await b.tryAcquire("second", limit: 1)
                await slot.release()
                try await Task.sleep(for: .milliseconds(3500)) // past the first renewal tick (3 s)
                let afterRelease = try await b.tryAcquire("second", limit: 1)
                await slot.release()
                let third = try await b.tryAcquire("third", limit: 2)
                return [whileHeld, afterRelease, third]
            }
            // Held; free as soon as it was released; a second release changes nothing (first's slot is not counted twice).
            #expect(ran == [false, true, true])
            #expect(try await b.tryAcquire("fourth", limit: 2) == false, "second and third hold both slots: the end of the body released nothing more")
        }
    }
}
