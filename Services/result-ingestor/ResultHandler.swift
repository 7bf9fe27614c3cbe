import AsyncHTTPClient
import Database
import Foundation
import Logging
import Messaging
import ServiceCore
import ServiceSupport
import Shared

/// Applies one finished generation: download (allowed hosts only, size cap, timeout), check that it
/// decodes; for a RunPod result, the fidelity guard (docs/fidelity.md), then its frame
/// (docs/framing.md) or the photo's geometry and the upscale (the local engine does all that
/// itself); store content-addressed, then ONE transaction (new
/// version, media points at it, job COMPLETED), then MediaUpdated and the terminal
/// GenerationCompleted (with `mediaVersionId`) on the events exchange and to `replyTo`.
///
/// Idempotent by job id: a redelivery after a crash finds the job COMPLETED and only publishes the
/// events again (consumers of those are idempotent too).
struct ResultHandler: Sendable {
    let configuration: IngestorConfiguration
    let http: HTTPClient
    let store: MediaStore
    let variations: VariationStore
    let reviews: ReviewStore
    let ledger: JobLedger
    let files: MediaFiles
    /// Where a stored result that is not applied goes, to be erased by the gateway's sweeper.
    let unapplied: PurgedFileStore
    let broker: AMQPConnection
    let ending: JobEnding
    let logger: Logger
    /// `aiImageFidelityMode`, read when a RunPod result arrives.
    var fidelityMode: @Sendable () async -> FidelityMode = { .restore }
    /// How result host names are resolved for the address rule.
    var resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve

    func handle(_ rendered: GenerationRendered, now: Date = Date()) async throws -> HandlingOutcome {
        var logger = logger
        logger[metadataKey: "jobId"] = "\(rendered.jobId)"
        // A result is applied only to the media its accepted job names, so a forged or misrouted
        // message changes nothing (and fails no job); decided before anything is downloaded.
        let job = try await ledger.job(rendered.jobId)
        if case .refused(let reason) = GenerationApplyOutcome.refusal(
            jobId: rendered.jobId, mediaId: rendered.mediaId, variation: rendered.kind == .variation,
            job: job.map { ($0.mediaId, $0.kind) }) {
            return .refuse(reason: reason)
        }
        // A redelivery after the result was applied (or after the job was cancelled) must not
        // depend on the result still being downloadable: decide from the ledger first.
        if let job, job.status.isTerminal {
            return try await settleEnded(rendered, job, logger: logger)
        }
        let stored: StoredFile
        do {
            stored = try await fetchAndStore(rendered)
        } catch let failure as IngestFailure {
            if failure.transient {
                let waited = now.timeIntervalSince(rendered.occurredAt)
                if waited < configuration.retryWindow.timeInterval {
                    // Held and tried again by the consumer, without using up a retry (an outage of the result host).
                    throw DependencyUnavailable("result host", failure.reason)
                }
                return try await fail(
                    rendered, .retriesExhausted,
                    "\(failure.reason); the result host did not deliver within INGEST_RETRY_SECONDS (\(configuration.retryWindow.components.seconds) s) of the backend finishing",
                    logger: logger)
            }
            return try await fail(rendered, failure.code ?? (failure.expired ? .resultExpired : .invalidOutput), failure.reason, logger: logger)
        }
        let result = GenerationResult(
            jobId: rendered.jobId, mediaId: rendered.mediaId, kind: rendered.kind.ledgerKind,
            batchId: rendered.batchId, variationName: rendered.variationName, correlationId: rendered.correlationId,
            backend: rendered.backend.rawValue, backendJobId: rendered.backendJobId, cost: rendered.cost ?? 0, file: stored,
            sourcePath: rendered.source?.path)
        if rendered.kind == .variation {
            // A candidate: kept beside the media, which changes only when it is chosen.
            return try await settleCandidate(rendered, stored, try await variations.applyVariation(result), logger: logger)
        }
        if let batchId = job?.batchId, try await reviews.isUnderReview(batch: batchId) {
            // A batch under review: kept as a candidate; the media changes once a person approves it.
            return try await settleCandidate(rendered, stored, try await reviews.keep(result), logger: logger)
        }
        let outcome = try await store.applyGeneration(result)
        try await abandonUnlessApplied(stored, outcome, logger: logger)
        switch outcome {
        case .applied(let versionId, let previous):
            logger.info("media updated", metadata: ["mediaId": "\(rendered.mediaId)", "versionId": "\(versionId)"])
            try await announce(rendered, versionId: versionId, previous: previous, file: stored, logger: logger)
        case .alreadyApplied(let versionId):
            logger.info("already applied; publishing the events again", metadata: ["versionId": "\(versionId)"])
            // A concurrent delivery applied its copy: this one's bytes, if they differ, are no one's.
            try await announce(rendered, versionId: versionId, previous: nil, file: stored, logger: logger)
        case .jobEnded(let status):
            logger.info("job already ended; result not applied", metadata: ["status": "\(status)"])
            if status == "CANCELLED" {
                // Cancelled after the backend finished: this is where the job's terminal event comes from.
                return try await fail(rendered, .cancelled, "cancelled on request", logger: logger)
            }
        case .mediaGone:
            return try await fail(rendered, .mediaNotFound, "media \(rendered.mediaId.uuidString.lowercased()) was deleted before its result arrived", logger: logger)
        case .refused(let reason):
            return .refuse(reason: reason)
        }
        return .done
    }

    /// Unless `outcome` is this copy applied, the stored result is one no row will refer to (another
    /// delivery's copy was applied, the job ended, the media is gone, the result was refused): queued
    /// (before the job's end is recorded, so a crash in between queues it again on redelivery) for the
    /// gateway's sweeper, which erases it once nothing refers to it and it was not stored again within
    /// the grace (docs/data.md).
    private func abandonUnlessApplied(_ stored: StoredFile, _ outcome: GenerationApplyOutcome, logger: Logger) async throws {
        if case .applied = outcome { return }
        try await unapplied.enqueue(stored.path)
        logger.info("result not applied; its file is queued for erasure", metadata: ["path": "\(stored.path)"])
    }

    /// After a result was kept as a candidate (a variation, or a batch item under review): the
    /// terminal event names the candidate; the media is unchanged.
    private func settleCandidate(
        _ rendered: GenerationRendered, _ stored: StoredFile, _ outcome: GenerationApplyOutcome, logger: Logger
    ) async throws -> HandlingOutcome {
        try await abandonUnlessApplied(stored, outcome, logger: logger)
        switch outcome {
        case .applied(let candidateId, _), .alreadyApplied(let candidateId):
            logger.info("result kept as a candidate", metadata: ["candidateId": "\(candidateId)"])
            try Task.checkCancellation()
            try await broker.publishTerminal(
                GenerationCompleted(applying: rendered, mediaVersionId: candidateId), replyTo: rendered.replyTo, logger: logger)
        case .jobEnded(let status):
            if status == "CANCELLED" { return try await fail(rendered, .cancelled, "cancelled on request", logger: logger) }
        case .mediaGone:
            return try await fail(rendered, .mediaNotFound, "media \(rendered.mediaId.uuidString.lowercased()) is gone", logger: logger)
        case .refused(let reason):
            return .refuse(reason: reason)
        }
        return .done
    }

    /// The events for a job that already ended: the terminal event again for COMPLETED (its first
    /// publication may have been lost in a crash), GenerationFailed `cancelled` for CANCELLED,
    /// nothing for FAILED (whoever failed it published that).
    private func settleEnded(_ rendered: GenerationRendered, _ job: JobRecord, logger: Logger) async throws -> HandlingOutcome {
        // A batch item kept for review has a candidate, whatever was decided since.
        var candidate: ReviewCandidate?
        if job.status == .completed, rendered.kind != .variation, let batchId = job.batchId {
            candidate = try await reviews.candidate(batch: batchId, job: job.id)
        }
        switch job.status {
        case .completed where rendered.kind == .variation:
            if let candidate = try await variations.variation(mediaId: rendered.mediaId, jobId: rendered.jobId) {
                try await broker.publishTerminal(
                    GenerationCompleted(applying: rendered, mediaVersionId: candidate.id), replyTo: rendered.replyTo, logger: logger)
            }
        case .completed where candidate != nil:
            // Kept for review (approved since or not): the terminal event names the candidate, as the first one did.
            try Task.checkCancellation()
            try await broker.publishTerminal(
                GenerationCompleted(applying: rendered, mediaVersionId: candidate!.id), replyTo: rendered.replyTo, logger: logger)
        case .completed:
            if let versionId = job.resultVersionId,
               let version = try await store.versions(of: rendered.mediaId).first(where: { $0.id == versionId }) {
                logger.info("already applied; publishing the events again", metadata: ["versionId": "\(versionId)"])
                try await announce(rendered, versionId: versionId, previous: nil, file: version.file, logger: logger)
            }
        case .cancelled:
            return try await fail(rendered, .cancelled, "cancelled on request", logger: logger)
        default:
            break
        }
        return .done
    }

    private func announce(
        _ rendered: GenerationRendered, versionId: UUID, previous: UUID?, file: StoredFile, logger: Logger
    ) async throws {
        // An attempt abandoned past the consumer's handling limit is cancelled: it must not speak for
        // the job after the next attempt did (it may have applied the result; the next one announces it).
        try Task.checkCancellation()
        // A broadcast for other systems (no Cyclorama service reads it): nobody listening is fine.
        try await broker.publish(MediaUpdated(
            correlationId: rendered.correlationId, jobId: rendered.jobId, mediaId: rendered.mediaId, versionId: versionId,
            previousVersionId: previous, sha256: file.sha256, width: file.width, height: file.height, mime: file.mimeType),
            mandatory: false)
        try await broker.publishTerminal(
            GenerationCompleted(applying: rendered, mediaVersionId: versionId), replyTo: rendered.replyTo, logger: logger)
    }

    private func fail(_ rendered: GenerationRendered, _ code: FailureCode, _ reason: String, logger: Logger) async throws -> HandlingOutcome {
        try Task.checkCancellation()
        try await ending.fail(rendered, code: code, reason: reason, retryable: true, backendJobId: rendered.backendJobId)
        return .done
    }
}
