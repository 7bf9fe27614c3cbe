import Foundation
import Logging
import PostgresNIO

/// A batch result waiting for (or given) a person's decision.
public struct ReviewCandidate: Sendable, Equatable {
    public enum Decision: String, Sendable {
        case approved
        case rejected
    }

    public var id: UUID
    public var jobId: UUID
    public var batchId: UUID
    public var mediaId: UUID
    public var file: StoredFile
    /// nil while it waits.
    public var decision: Decision?
    public var decidedAt: Date?
    /// The media version it became, once approved.
    public var versionId: UUID?
    /// The version the job was made from (the current one when the result was kept, for results that
    /// do not name their source): an approval replaces it, and only it.
    public var baseVersionId: UUID?
    public var createdAt: Date
}

/// What a decision over a batch's candidates did.
public struct ReviewDecisionOutcome: Sendable, Equatable {
    /// The candidates this decision changed.
    public var decided: [UUID] = []
    /// Candidates that already had this decision (the same request again).
    public var unchanged: [UUID] = []
    /// Job id → why it was left as it was (the other decision was taken, the media was deleted).
    public var skipped: [UUID: String] = [:]
}

/// The review step of batches (`review_candidates`, docs/api.md): a result of a batch that asked for
/// review is kept beside its media, and becomes the media's new version only once approved.
public struct ReviewStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.reviews")) {
        self.client = client
        self.logger = logger
    }

    /// True when batch `id` holds its results for review (fixed when the batch is created).
    public func isUnderReview(batch id: UUID) async throws -> Bool {
        for review in try await client.rows("SELECT review FROM batches WHERE id = \(id)", logger: logger).decode(Bool.self) {
            return review
        }
        return false
    }

    /// Keeps a finished batch item's file as a candidate and completes its job, in one transaction;
    /// the media is not touched. Idempotent by job id. `.applied(versionId:)` carries the candidate's id.
    /// The candidate's base is the version the job was made from (the newest one holding its source
    /// file; the current one when the result does not say), so an image changed during the job is
    /// not replaced by work made from the older one when the candidate is approved.
    public func keep(_ result: GenerationResult) async throws -> GenerationApplyOutcome {
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            var job: (status: String, mediaId: UUID, kind: String, batchId: UUID?)?
            for try await row in try await connection.query(
                "SELECT status, media_id, kind, batch_id FROM generation_jobs WHERE id = \(result.jobId) FOR UPDATE", logger: logger
            ).decode((String, UUID, String, UUID?).self) {
                job = row
            }
            if let refusal = GenerationApplyOutcome.refusal(
                jobId: result.jobId, mediaId: result.mediaId, variation: false, job: job.map { ($0.mediaId, $0.kind) }) {
                return refusal
            }
            guard let job, let batchId = job.batchId else {
                return .refused(reason: "job \(result.jobId.uuidString.lowercased()) belongs to no batch: nothing to review")
            }
            // Nothing could ever be approved for a media deleted for good: no candidate is kept.
            if try await MediaStore.isPurged(result.mediaId, on: connection, logger: logger) { return .mediaGone }
            var existing: UUID?
            for try await id in try await connection.query(
                "SELECT id FROM review_candidates WHERE job_id = \(result.jobId)", logger: logger).decode(UUID.self) {
                existing = id
            }
            if job.status == "COMPLETED", let existing { return .alreadyApplied(versionId: existing) }
            if job.status == "FAILED" || job.status == "CANCELLED" { return .jobEnded(status: job.status) }
            let base = try await MediaStore.baseVersion(of: result, on: connection, logger: logger)
            let file = result.file
            let id = existing ?? UUID()
            try await connection.query("""
                INSERT INTO review_candidates (id, job_id, batch_id, media_id, file_path, mime_type, width, height, bytes, sha256,
                                               base_version_id)
                VALUES (\(id), \(result.jobId), \(batchId), \(result.mediaId), \(file.path), \(file.mimeType), \(file.width),
                        \(file.height), \(file.bytes), \(file.sha256),
                        \(base))
                ON CONFLICT (job_id) DO NOTHING
                """, logger: logger)
            try await result.completeJob(on: connection, logger: logger)
            return .applied(versionId: id, previousVersionId: nil)
        }
    }

    /// The candidates of batch `id`, in the order their jobs were created.
    public func candidates(batch id: UUID) async throws -> [ReviewCandidate] {
        try await records(client.rows("""
            \(unescaped: Self.columns) WHERE r.batch_id = \(id) ORDER BY j.created_at, j.id
            """, logger: logger))
    }

    /// The candidate of job `jobId` of batch `batchId`.
    public func candidate(batch batchId: UUID, job jobId: UUID) async throws -> ReviewCandidate? {
        try await records(client.rows("""
            \(unescaped: Self.columns) WHERE r.batch_id = \(batchId) AND r.job_id = \(jobId)
            """, logger: logger)).first
    }

    /// Approves or rejects the candidates of batch `batchId` made by `jobIds` (nil: every one waiting),
    /// each in a transaction of its own. An approved candidate becomes its media's new current version
    /// (source `generation`, the job's result); a rejected one leaves the media as it is. A decision
    /// is final: the other one is refused for that candidate (``ReviewDecisionOutcome/skipped``), the
    /// same one again changes nothing. A candidate whose media was deleted is skipped, and waits; one
    /// whose media changed since it was made (another result, a revert, a chosen variation) cannot be
    /// approved — it would replace the newer image with a result of the older one — and is skipped.
    /// Either can still be rejected.
    public func decide(batch batchId: UUID, jobIds: [UUID]?, _ decision: ReviewCandidate.Decision) async throws -> ReviewDecisionOutcome {
        let targets: [UUID]
        if let jobIds {
            targets = jobIds
        } else {
            targets = try await candidates(batch: batchId).filter { $0.decision == nil }.map(\.jobId)
        }
        var outcome = ReviewDecisionOutcome()
        for jobId in targets {
            switch try await decideOne(batch: batchId, job: jobId, decision) {
            case .decided: outcome.decided.append(jobId)
            case .unchanged: outcome.unchanged.append(jobId)
            case .skipped(let reason): outcome.skipped[jobId] = reason
            }
        }
        return outcome
    }

    private enum OneOutcome: Sendable {
        case decided
        case unchanged
        case skipped(String)
    }

    private func decideOne(batch batchId: UUID, job jobId: UUID, _ decision: ReviewCandidate.Decision) async throws -> OneOutcome {
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            var found: (id: UUID, mediaId: UUID, decision: String?)?
            for try await row in try await connection.query("""
                SELECT id, media_id, decision FROM review_candidates WHERE batch_id = \(batchId) AND job_id = \(jobId)
                """, logger: logger).decode((UUID, UUID, String?).self) {
                found = (row.0, row.1, row.2)
            }
            guard let found else { return .skipped("no result of this batch waits for review under job \(jobId.uuidString.lowercased())") }
            // The media row first: choices, reverts and results for one media queue here.
            let current = try await MediaStore.lockShown(found.mediaId, on: connection, logger: logger)
            var candidate: (decision: String?, path: String, mime: String, width: Int, height: Int, bytes: Int, sha: String, base: UUID?, basePath: String?)?
            for try await row in try await connection.query("""
                SELECT r.decision, r.file_path, r.mime_type, r.width, r.height, r.bytes, r.sha256, r.base_version_id, b.file_path
                FROM review_candidates r LEFT JOIN media_versions b ON b.id = r.base_version_id
                WHERE r.id = \(found.id) FOR UPDATE OF r
                """, logger: logger).decode((String?, String, String, Int, Int, Int, String, UUID?, String?).self) {
                candidate = row
            }
            guard let candidate else { return .skipped("the result of job \(jobId.uuidString.lowercased()) is gone") }
            if let taken = candidate.decision {
                return taken == decision.rawValue ? .unchanged : .skipped("already \(taken)")
            }
            if decision == .rejected {
                try await connection.query(
                    "UPDATE review_candidates SET decision = 'rejected', decided_at = now() WHERE id = \(found.id)", logger: logger)
                return .decided
            }
            guard let current else { return .skipped("the image was deleted; restore it from the trash to approve its result") }
            guard current.isStill(base: candidate.base, basePath: candidate.basePath) else {
                return .skipped("the image changed after this result was made; approving it would replace the newer image (generate it again)")
            }
            let versionId = UUID()
            try await connection.query("""
                INSERT INTO media_versions (id, media_id, version_number, source, job_id, file_path, mime_type, width, height, bytes, sha256)
                VALUES (\(versionId), \(found.mediaId), (SELECT max(version_number) + 1 FROM media_versions WHERE media_id = \(found.mediaId)),
                        'generation', \(jobId), \(candidate.path), \(candidate.mime), \(candidate.width), \(candidate.height),
                        \(candidate.bytes), \(candidate.sha))
                """, logger: logger)
            try await connection.query("""
                UPDATE media SET current_version_id = \(versionId), file_path = \(candidate.path), mime_type = \(candidate.mime),
                       width = \(candidate.width), height = \(candidate.height), bytes = \(candidate.bytes), sha256 = \(candidate.sha),
                       updated_at = now()
                WHERE id = \(found.mediaId)
                """, logger: logger)
            try await connection.query("""
                UPDATE review_candidates SET decision = 'approved', decided_at = now(), version_id = \(versionId) WHERE id = \(found.id)
                """, logger: logger)
            try await connection.query(
                "UPDATE generation_jobs SET result_version_id = \(versionId), updated_at = now() WHERE id = \(jobId)", logger: logger)
            return .decided
        }
    }

    // MARK: Plumbing

    private static let columns = """
        SELECT r.id, r.job_id, r.batch_id, r.media_id, r.file_path, r.mime_type, r.width, r.height, r.bytes, r.sha256,
               r.decision, r.decided_at, r.version_id, r.base_version_id, r.created_at
        FROM review_candidates r JOIN generation_jobs j ON j.id = r.job_id
        """

    private func records(_ rows: [PostgresRow]) throws -> [ReviewCandidate] {
        var result: [ReviewCandidate] = []
        for row in rows {
            let c = try row.decode((UUID, UUID, UUID, UUID, String, String, Int, Int, Int, String, String?, Date?, UUID?, UUID?, Date).self)
            result.append(ReviewCandidate(
                id: c.0, jobId: c.1, batchId: c.2, mediaId: c.3,
                file: StoredFile(path: c.4, mimeType: c.5, width: c.6, height: c.7, bytes: c.8, sha256: c.9),
                decision: c.10.flatMap(ReviewCandidate.Decision.init(rawValue:)), decidedAt: c.11, versionId: c.12,
                baseVersionId: c.13, createdAt: c.14))
        }
        return result
    }
}
