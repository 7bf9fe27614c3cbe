import Foundation
import Logging
import ServiceLifecycle
import Timing

/// Runs queued jobs, at most `concurrency` at a time: fetch the image, render it, keep the result.
///
/// A job's work runs in its own task so `/cancel`, `policy.executionTimeout` and TTL expiry can stop
/// it; its slot is freed only when that work has really ended (a blocking render on a thread runs to
/// its end), so the pool never holds more renders than slots. On graceful shutdown it starts nothing
/// new and lets the running jobs finish within the shutdown grace.
final class JobScheduler: Service, Sendable {
    let store: JobStore
    let source: ImageSource
    let renderer: any ImageRenderer
    let results: ResultFiles
    let logger: Logger
    private let wakeups: AsyncStream<Void>

    init(store: JobStore, wakeups: AsyncStream<Void>, source: ImageSource, renderer: any ImageRenderer, results: ResultFiles, logger: Logger) {
        self.store = store
        self.wakeups = wakeups
        self.source = source
        self.renderer = renderer
        self.results = results
        self.logger = logger
    }

    /// A stream the store pokes whenever a job is queued or a slot frees up.
    static func makeWakeups() -> (AsyncStream<Void>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        return (stream, { continuation.yield() })
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await _ in wakeups.cancelOnGracefulShutdown() {
                while let ticket = await store.startNext() {
                    group.addTask { await self.execute(ticket) }
                }
            }
        }
    }

    private func execute(_ ticket: JobTicket) async {
        var logger = logger
        logger[metadataKey: "job"] = "\(ticket.id)"
        let work = Task { try await self.perform(ticket) }
        await store.setAbort(id: ticket.id, attempt: ticket.attempt) { work.cancel() }
        let watchdog = Task {
            try await Task.sleep(for: ticket.executionTimeout)
            let message = "execution exceeded policy.executionTimeout of \(ticket.executionTimeout.wholeMilliseconds) ms"
            await self.store.finish(id: ticket.id, attempt: ticket.attempt, outcome: .failure(JobFailure(.timedOut, message)))
            work.cancel()
        }
        // The work is an unstructured task (so it can be cancelled from outside): pass on our cancellation.
        let outcome = await withTaskCancellationHandler { await work.result } onCancel: { work.cancel() }
        watchdog.cancel()
        switch outcome {
        case .success(let summary):
            if await store.finish(id: ticket.id, attempt: ticket.attempt, outcome: .success(summary)) {
                logger.info("completed", metadata: ["total_ms": "\(summary.timings["total"] ?? 0)"])
            } else {
                // Cancelled, timed out or expired while rendering: the result is discarded.
                await results.remove(ResultKey(id: ticket.id, attempt: ticket.attempt, format: summary.format))
            }
        case .failure(let error):
            let failure = switch error {
            case let failure as JobFailure: failure
            case is CancellationError: JobFailure(.renderFailed, "stopped: the engine is shutting down")
            default: JobFailure(.renderFailed, "internal error: \(error)")
            }
            if await store.finish(id: ticket.id, attempt: ticket.attempt, outcome: .failure(failure)) {
                logger.notice("failed", metadata: ["error": "\(failure.message)"])
            }
        }
        await store.releaseSlot()
    }

    private func perform(_ ticket: JobTicket) async throws -> RenderedSummary {
        let clock = ContinuousClock()
        let start = clock.now
        let options = try ticket.options.get()
        await store.note(id: ticket.id, attempt: ticket.attempt, stage: "fetching")
        let image = try await source.fetch(options.image)
        let fetched = clock.now
        try Task.checkCancellation()
        await store.note(id: ticket.id, attempt: ticket.attempt, stage: "rendering")
        let rendered = try await renderer.render(image, options: options)
        try Task.checkCancellation()
        await store.note(id: ticket.id, attempt: ticket.attempt, stage: "storing")
        do {
            try await results.write(rendered.encoded, ResultKey(id: ticket.id, attempt: ticket.attempt, format: rendered.format))
        } catch {
            throw JobFailure(.renderFailed, "could not store the result: \(error)")
        }
        var timings = rendered.timings
        timings["fetch"] = (fetched - start).wholeMilliseconds
        timings["total"] = (clock.now - start).wholeMilliseconds
        return RenderedSummary(
            width: rendered.width, height: rendered.height, format: rendered.format, timings: timings,
            returnBase64: options.returnBase64)
    }
}

/// Removes expired jobs and their result files, every `interval`.
struct JobSweeper: Service {
    let store: JobStore
    let results: ResultFiles
    let interval: Duration

    func run() async throws {
        var lastFileSweep = ContinuousClock.now
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            for key in await store.sweep() {
                await results.remove(key)
            }
            // Files of jobs this process never knew (finished before a restart) expire by their age.
            if ContinuousClock.now - lastFileSweep > .seconds(60) {
                lastFileSweep = .now
                await results.removeExpiredFiles()
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
