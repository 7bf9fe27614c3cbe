import Logging
import ServiceLifecycle

/// A sweep run every `interval` until graceful shutdown, as a `Service`: the gateway's job reaper,
/// the dispatcher's orphan sweep. A sweep that fails is logged and tried again next time.
public struct PeriodicWork: Service {
    let name: String
    let interval: Duration
    let first: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    /// - Parameters:
    ///   - name: what the log calls it when a sweep fails (`job reaper`, `orphan sweep`).
    ///   - first: when the first sweep runs (default: after `interval`).
    public init(
        _ name: String, every interval: Duration, first: Duration? = nil, logger: Logger,
        _ work: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.interval = interval
        self.first = first ?? interval
        self.logger = logger
        self.work = work
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                var wait = first
                while true {
                    try await Task.sleep(for: wait)
                    wait = interval
                    do {
                        try await work()
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        logger.warning("\(name) failed; next time", metadata: ["error": "\(error)"])
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }
}
