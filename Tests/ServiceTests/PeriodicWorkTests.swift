import Logging
import ServiceCore
import Testing
import TestSupport
import Timing

/// ``PeriodicWork``: a sweep that never returns is abandoned at its limit, and the sweeps go on.
@Suite("PeriodicWork", .timeLimit(.minutes(2)))
struct PeriodicWorkTests {
    @Test func aSweepThatNeverReturnsDoesNotStopTheNextOnes() async throws {
        let sweeps = LockedValue(0)
        // The first sweep waits for this, which nobody gives until the end: it ignores cancellation,
        // as a call on a dead connection does.
        let stuck = LockedValue<CheckedContinuation<Void, Never>?>(nil)
        let work = PeriodicWork("test sweep", every: .milliseconds(20), limit: .milliseconds(200), logger: Logger(label: "test")) {
            let number = sweeps.withLock { $0 += 1; return $0 }
            if number == 1 {
                await withCheckedContinuation { continuation in stuck.withLock { $0 = continuation } }
            }
        }
        let running = Task { try await work.run() }
        // Generous limits: at the start of `make test` the test process's threads can be starved for
        // seconds (a 10 ms sweep once ran every 2 s). The stuck sweep never ends before the check, so
        // any limit tells "stops" from "waits for it".
        try await eventually("sweeps after the stuck one", timeout: .seconds(45)) { sweeps.value >= 5 }
        running.cancel()
        // Shutting down does not wait for the abandoned sweep either.
        try await eventually("the work stops when cancelled", timeout: .seconds(45)) {
            await awaitResult(of: running, atMost: .milliseconds(100)) != nil
        }
        stuck.withLock { $0 }?.resume()
    }

    @Test func aFailingSweepIsTriedAgain() async throws {
        struct Refused: Error {}
        let sweeps = LockedValue(0)
        let work = PeriodicWork("test sweep", every: .milliseconds(10), logger: Logger(label: "test")) {
            sweeps.withLock { $0 += 1 }
            throw Refused()
        }
        let running = Task { try await work.run() }
        try await eventually("sweeps after failures", timeout: .seconds(45)) { sweeps.value >= 3 }
        running.cancel()
        _ = await running.result
    }
}
