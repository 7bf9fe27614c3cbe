import Foundation
import Testing

/// Every system test starts the whole system (six processes on its own vhost and database). They
/// mostly wait — on deadlines, backoffs, a browser, a crashed process coming back: run one at a
/// time they kept a core a quarter busy and made the main run ~7 minutes long. All at once, ~50
/// systems of six processes on two cores starve each other into timeouts. So each test function
/// takes one of a few slots (``SystemSlots``) for its whole run, beside the lighter suites of the
/// other targets.
@Suite(.systemSlot) enum SystemSuites {}

/// At most ``limit`` system tests run at once: `CYCLORAMA_TEST_SYSTEMS` (default 3; 1 runs them one
/// at a time). A test waits for a slot before it starts anything, and gives it back however it
/// ends. The system suites' time limits (15 minutes) leave room for the wait.
actor SystemSlots {
    static let limit: Int = {
        let given = ProcessInfo.processInfo.environment["CYCLORAMA_TEST_SYSTEMS"].flatMap { Int($0) }
        return max(1, given ?? 3)
    }()
    static let shared = SystemSlots(limit: limit)

    private var free: Int
    private var waiting: [(id: UInt64, rank: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    private var lastWaiter: UInt64 = 0

    init(limit: Int) { free = limit }

    /// Runs `body` in a slot; says on standard error how long `name` waited and ran (a test's own
    /// duration in the report counts its wait too, and so does its `.timeLimit`: Swift Testing
    /// starts the limit's clock before a trait's scope). A test cancelled while it waits (its time
    /// limit passed) leaves the queue without taking a slot. A waiter of a higher `rank` (its
    /// ``SystemSlots/rank(of:)``) is served before every waiter of a lower one: longest first, as
    /// one started last would keep the run going alone at its end (the fuzzer, untagged, once
    /// started last and ran its 50 s alone).
    func run(_ name: String, rank: Int, _ body: @Sendable () async throws -> Void) async throws {
        let asked = ContinuousClock.now
        try await take(rank: rank)
        let started = ContinuousClock.now
        defer {
            give()
            let waited = (started - asked).secondsText, ran = (ContinuousClock.now - started).secondsText
            FileHandle.standardError.write(Data("system slot: \(name) ran \(ran) s (waited \(waited) s)\n".utf8))
        }
        try await body()
    }

    /// How early a test is served: 2 for the ones that run longest (`.longestSystemTest`: the
    /// fuzzers, ~50 s each here), 1 for the other long ones (`.longSystemTest`), 0 for the rest.
    static func rank(of tags: Set<Tag>) -> Int {
        tags.contains(.longestSystemTest) ? 2 : tags.contains(.longSystemTest) ? 1 : 0
    }

    private func take(rank: Int) async throws {
        if free > 0 {
            free -= 1
            return
        }
        lastWaiter += 1
        let id = lastWaiter
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    // Behind the waiters of its rank and higher, in front of the rest.
                    let place = waiting.firstIndex { $0.rank < rank } ?? waiting.endIndex
                    waiting.insert((id, rank, continuation), at: place)
                }
            }
        } onCancel: {
            Task { await self.leave(id) }
        }
    }

    /// A waiter that was cancelled leaves the queue (no-op once it was handed a slot).
    private func leave(_ id: UInt64) {
        guard let index = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    /// A freed slot goes straight to the first waiter (the longest tests first, then first come, first served).
    private func give() {
        if waiting.isEmpty {
            free += 1
        } else {
            waiting.removeFirst().continuation.resume()
        }
    }
}

/// The trait that puts each test function of a suite (and of its nested suites) in a slot.
struct SystemSlot: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await SystemSlots.shared.run(test.name, rank: SystemSlots.rank(of: test.tags), function)
    }
}

extension Tag {
    /// A system test that runs for half a minute or more on this machine (the browser's, the CLI's):
    /// its slot is given before the others'.
    @Tag static var longSystemTest: Self
    /// The longest system tests (schemathesis, the fuzzer: ~50 s each in a full run): served first of all.
    @Tag static var longestSystemTest: Self
}

extension Trait where Self == SystemSlot {
    /// Runs each test function in one of ``SystemSlots``' few slots.
    static var systemSlot: Self { SystemSlot() }
}

