import Logging
import ServiceLifecycle

/// A sweep run every `interval` until graceful shutdown, as a `Service`: the gateway's job reaper,
/// the dispatcher's orphan sweep. A sweep that fails is logged and tried again next time.
public struct PeriodicWork: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    /// - Parameter name: what the log calls it when a sweep fails (`job reaper`, `orphan sweep`).
    public init(_ name: String, every interval: Duration, logger: Logger, _ work: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.logger = logger
        self.work = work
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: interval)
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
