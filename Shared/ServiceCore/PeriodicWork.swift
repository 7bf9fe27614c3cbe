import Logging
import ServiceLifecycle
import Timing

/// A sweep run every `interval` until graceful shutdown, as a `Service`: the gateway's job reaper,
/// the dispatcher's orphan sweep. A sweep that fails is logged and tried again next time.
///
/// A sweep that has not finished within `limit` is abandoned (cancelled, not waited for) and the
/// next one runs on time: the reaper is what ends jobs nothing else ends, so one call that never
/// returns must not stop it for good. Every sweep here is safe beside another one (they claim their
/// rows with `SKIP LOCKED`, as several gateways or dispatchers do).
public struct PeriodicWork: Service {
    let name: String
    let interval: Duration
    let first: Duration
    let limit: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    /// - Parameters:
    ///   - name: what the log calls it when a sweep fails (`job reaper`, `orphan sweep`).
    ///   - first: when the first sweep runs (default: after `interval`).
    ///   - limit: how long a sweep may take (default: ten intervals, at least ten minutes).
    public init(
        _ name: String, every interval: Duration, first: Duration? = nil, limit: Duration? = nil, logger: Logger,
        _ work: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.interval = interval
        self.first = first ?? interval
        self.limit = limit ?? max(interval * 10, .seconds(600))
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
                    let sweep = Task { try await work() }
                    switch await awaitResult(of: sweep, atMost: limit) {
                    case .success?:
                        break
                    case .failure(let error)?:
                        if error is CancellationError { throw CancellationError() }
                        logger.warning("\(name) failed; next time", metadata: ["error": "\(error)"])
                    case nil:
                        sweep.cancel()
                        try Task.checkCancellation()  // shutting down
                        logger.error(
                            "\(name) did not finish in time; abandoned it (it may still finish) and going on",
                            metadata: ["limit": "\(limit)"])
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }
}
