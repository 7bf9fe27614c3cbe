import Shared
import Synchronization

/// How long runs took at the backend lately, by kind of run (backend and upscale factor), so a
/// follower can poll when its job should be done instead of on a schedule that knows nothing
/// (``FollowMachine/expectedRun``). The `executionTime` of each completed job is kept, the last
/// ``capacity`` per kind; the estimate is a low quantile of them, so most jobs are not yet done at
/// their first poll and a job that ends early is not waited for long. In memory, per dispatcher: a
/// restarted one polls on the plain schedule until a few jobs completed.
final class ExecutionTimes: Sendable {
    /// Runs kept per kind.
    let capacity: Int
    /// Fewer runs than this: no estimate.
    let minimumSamples: Int
    /// Which quantile of the kept runs is the estimate (0.2: four in five took at least as long).
    let quantile: Double
    private let runs = Mutex<[String: [Duration]]>([:])

    init(capacity: Int = 32, minimumSamples: Int = 3, quantile: Double = 0.2) {
        self.capacity = capacity
        self.minimumSamples = minimumSamples
        self.quantile = quantile
    }

    /// The kind of a run: what it is asked to do makes its time.
    static func kind(_ backend: GenerationBackend, _ options: ResolvedGenerationOptions) -> String {
        "\(backend.rawValue)/x\(options.upscale.rawValue)"
    }

    /// A completed run's `executionTime` (milliseconds, as the backend reported it).
    func record(_ kind: String, milliseconds: Int) {
        guard milliseconds >= 0 else { return }
        runs.withLock { runs in
            var kept = runs[kind, default: []]
            kept.append(.milliseconds(milliseconds))
            if kept.count > capacity { kept.removeFirst(kept.count - capacity) }
            runs[kind] = kept
        }
    }

    /// What a run of this kind is expected to take; nil until ``minimumSamples`` are known.
    func estimate(_ kind: String) -> Duration? {
        let kept = runs.withLock { $0[kind] ?? [] }
        guard kept.count >= minimumSamples else { return nil }
        let sorted = kept.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * quantile).rounded(.down)))]
    }
}
