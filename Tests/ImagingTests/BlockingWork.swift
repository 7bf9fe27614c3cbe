import Foundation
import Testing

/// Runs a suite's tests on threads of their own instead of Swift's cooperative pool.
///
/// Imaging tests block: libvips and OpenCV calls, the model's first load, and pixel loops that
/// take seconds in a debug build. The cooperative pool has one thread per core (two here), and two
/// tests blocking it stop every other test in the process — their timers, HTTP servers and
/// deadlines — for as long as they run (77 s in one CI run, failing tests that had done nothing
/// wrong). With this trait the whole test, and every task it starts, runs on one thread of its own
/// instead, at a lower priority: imaging tests take turns there while the cooperative pool goes on
/// with everything else. One lane, not a thread per test: 74 CPU-bound tests on 74 threads would
/// leave the rest of the process a thirty-eighth of the cores, a stall again by another name
/// (measured: 97 s before the first trivial test passed). Each imaging suite carries it; code
/// under test keeps its own thread pools (libvips and OpenCV still use every core inside a call).
struct BlockingWork: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(BlockingWorkExecutor.shared) { try await function() }
    }
}

extension Trait where Self == BlockingWork {
    /// See ``BlockingWork``.
    static var blockingWork: Self { BlockingWork() }
}

/// A task executor over one thread of its own, at a lower priority (nice 10): the imaging tests'
/// CPU-bound work yields the cores to the rest of the suite, whose tests measure time (deadlines,
/// rate limits, retry windows). Threads libvips and OpenCV start from it inherit the priority.
final class BlockingWorkExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BlockingWorkExecutor()
    /// Guards `jobs`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        let thread = Thread { [self] in run() }
        thread.name = "tests.blocking-work"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        // On Linux the nice value belongs to the thread: this lowers this one (and what it starts) only.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        let executor = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: executor)
        }
    }
}
