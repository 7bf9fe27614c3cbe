import Foundation
import Logging
import PostgresNIO
import Timing

/// One A/B candidate: a finished (or pending) variation of a media item.
public struct VariationRecord: Sendable, Equatable {
    public var id: UUID
    public var setId: UUID
    public var mediaId: UUID
    public var name: String
    public var prompt: String?
    public var jobId: UUID
    public var jobStatus: JobStatus
    /// The candidate's file once its job completed.
    public var file: StoredFile?
    public var chosenAt: Date?
    public var chosenVersionId: UUID?
    public var createdAt: Date
}

/// A requested variation: its job and what it asks for.
public struct NewVariation: Sendable {
    public var jobId: UUID
    public var name: String
    public var prompt: String?
    public var optionsJSON: String

    public init(jobId: UUID, name: String, prompt: String?, optionsJSON: String) {
        self.jobId = jobId
        self.name = name
        self.prompt = prompt
        self.optionsJSON = optionsJSON
    }
}

/// What choosing a winner did.
public enum ChooseOutcome: Sendable, Equatable {
    /// The candidate is the media's new current version (also when it had been chosen before).
    case chosen(versionId: UUID)
    /// Its job has not completed (its status).
    case notReady(JobStatus)
    /// Another candidate of the same set was chosen already.
    case otherChosen(jobId: UUID)
    /// The media shows another photo than the one the candidate was made from: choosing it would
    /// replace the newer image with a variation of the older one.
    case imageChanged
    case notFound
}

/// The `variations` table: A/B candidates that do not replace the media until one is chosen.
public struct VariationStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.variations")) {
        self.client = client
        self.logger = logger
    }

    /// Records a set of variations and their jobs (QUEUED, with their queue deadline) in one
    /// transaction. False when its first job exists already (the same request again: nothing is written).
    @discardableResult
    public func insertSet(
        _ setId: UUID, mediaId: UUID, correlationId: String, variations: [NewVariation],
        queueDeadline: Duration = JobLedger.defaultQueueDeadline
    ) async throws -> Bool {
        let logger = self.logger
        let seconds = queueDeadline.timeInterval
        return try await transaction { connection in
            for (index, variation) in variations.enumerated() {
                let rows = try await connection.query("""
                    INSERT INTO generation_jobs (id, kind, media_id, variation_name, options, correlation_id, deadline_at)
                    VALUES (\(variation.jobId), 'variation', \(mediaId), \(variation.name), \(variation.optionsJSON)::jsonb, \(correlationId),
                            now() + make_interval(secs => \(seconds)))
                    ON CONFLICT (id) DO NOTHING RETURNING id
                    """, logger: logger)
                var inserted = false
                for try await _ in rows.decode(UUID.self) { inserted = true }
                if !inserted && index == 0 { return false }
                try await connection.query("""
                    INSERT INTO variations (id, set_id, media_id, name, prompt, job_id)
                    VALUES (\(UUID()), \(setId), \(mediaId), \(variation.name), \(variation.prompt), \(variation.jobId))
                    """, logger: logger)
            }
            return true
        }
    }

    /// Keeps a finished variation's file as a candidate and completes its job, in one transaction;
    /// the media is not touched. Idempotent by job id. `.applied(versionId:)` carries the candidate's id.
    /// Its base is the version it was made from (the newest one holding the job's source file; the
    /// current one when the result does not say): the only photo choosing it may replace.
    public func applyVariation(_ result: GenerationResult) async throws -> GenerationApplyOutcome {
        let logger = self.logger
        return try await transaction { connection in
            var job: (status: String, mediaId: UUID, kind: String)?
            for try await row in try await connection.query(
                "SELECT status, media_id, kind FROM generation_jobs WHERE id = \(result.jobId) FOR UPDATE", logger: logger
            ).decode((String, UUID, String).self) {
                job = row
            }
            if let refusal = GenerationApplyOutcome.refusal(
                jobId: result.jobId, mediaId: result.mediaId, variation: true, job: job.map { ($0.mediaId, $0.kind) }) {
                return refusal
            }
            guard let status = job?.status else { return .mediaGone }
            // Nothing could ever be chosen for a media deleted for good: no candidate is kept.
            if try await MediaStore.isPurged(result.mediaId, on: connection, logger: logger) { return .mediaGone }
            var candidate: UUID?
            for try await id in try await connection.query(
                "SELECT id FROM variations WHERE job_id = \(result.jobId)", logger: logger).decode(UUID.self) {
                candidate = id
            }
            if status == "COMPLETED", let candidate { return .alreadyApplied(versionId: candidate) }
            if status == "FAILED" || status == "CANCELLED" { return .jobEnded(status: status) }
            let file = result.file
            let id = candidate ?? UUID()
            let base = try await MediaStore.baseVersion(of: result, on: connection, logger: logger)
            if candidate == nil {
                // Published straight onto the broker: a set of its own.
                try await connection.query("""
                    INSERT INTO variations (id, set_id, media_id, name, job_id)
                    VALUES (\(id), \(UUID()), \(result.mediaId), \(result.variationName ?? "Variation"), \(result.jobId))
                    """, logger: logger)
            }
            try await connection.query("""
                UPDATE variations SET file_path = \(file.path), mime_type = \(file.mimeType), width = \(file.width),
                       height = \(file.height), bytes = \(file.bytes), sha256 = \(file.sha256),
                       base_version_id = \(base)
                WHERE id = \(id)
                """, logger: logger)
            try await result.completeJob(on: connection, logger: logger)
            return .applied(versionId: id, previousVersionId: nil)
        }
    }

    /// The candidates of a media, newest set first, in the order they were asked for.
    public func variations(of mediaId: UUID) async throws -> [VariationRecord] {
        try await records(client.rows("\(unescaped: Self.columns) WHERE v.media_id = \(mediaId) ORDER BY v.created_at DESC, v.set_id, v.name", logger: logger))
    }

    public func variation(mediaId: UUID, jobId: UUID) async throws -> VariationRecord? {
        try await records(client.rows("\(unescaped: Self.columns) WHERE v.media_id = \(mediaId) AND v.job_id = \(jobId)", logger: logger)).first
    }

    /// Makes a completed candidate the media's new current version (source `variation`), once per set.
    public func choose(mediaId: UUID, jobId: UUID) async throws -> ChooseOutcome {
        let logger = self.logger
        return try await transaction { connection in
            // The media row first: concurrent choices for one media (and so one set) queue here, and
            // the second one sees the first winner below.
            guard let current = try await MediaStore.lockShown(mediaId, on: connection, logger: logger) else { return .notFound }
            let rows = try await connection.query("""
                SELECT v.id, v.set_id, v.chosen_version_id, j.status, v.file_path, v.mime_type, v.width, v.height, v.bytes, v.sha256,
                       v.base_version_id, b.file_path
                FROM variations v JOIN generation_jobs j ON j.id = v.job_id LEFT JOIN media_versions b ON b.id = v.base_version_id
                WHERE v.media_id = \(mediaId) AND v.job_id = \(jobId) FOR UPDATE OF v
                """, logger: logger)
            var found: (UUID, UUID, UUID?, String, String?, String?, Int?, Int?, Int?, String?, UUID?, String?)?
            for try await row in rows.decode((UUID, UUID, UUID?, String, String?, String?, Int?, Int?, Int?, String?, UUID?, String?).self) {
                found = row
            }
            guard let (candidateId, setId, chosen, status, path, mime, width, height, bytes, sha, base, basePath) = found else { return .notFound }
            if let chosen { return .chosen(versionId: chosen) }
            guard status == "COMPLETED", let path, let mime, let width, let height, let bytes, let sha else {
                return .notReady(JobStatus(rawValue: status) ?? .queued)
            }
            for try await other in try await connection.query(
                "SELECT job_id FROM variations WHERE set_id = \(setId) AND chosen_at IS NOT NULL", logger: logger).decode(UUID.self) {
                return .otherChosen(jobId: other)
            }
            // A candidate kept before bases were recorded has none and is chosen as before.
            if let base, !current.isStill(base: base, basePath: basePath) { return .imageChanged }
            let versionId = UUID()
            try await connection.query("""
                INSERT INTO media_versions (id, media_id, version_number, source, job_id, file_path, mime_type, width, height, bytes, sha256)
                VALUES (\(versionId), \(mediaId), (SELECT max(version_number) + 1 FROM media_versions WHERE media_id = \(mediaId)),
                        'variation', \(jobId), \(path), \(mime), \(width), \(height), \(bytes), \(sha))
                """, logger: logger)
            try await connection.query("""
                UPDATE media SET current_version_id = \(versionId), file_path = \(path), mime_type = \(mime), width = \(width),
                       height = \(height), bytes = \(bytes), sha256 = \(sha), updated_at = now()
                WHERE id = \(mediaId)
                """, logger: logger)
            try await connection.query(
                "UPDATE variations SET chosen_at = now(), chosen_version_id = \(versionId) WHERE id = \(candidateId)", logger: logger)
            try await connection.query(
                "UPDATE generation_jobs SET result_version_id = \(versionId), updated_at = now() WHERE id = \(jobId)", logger: logger)
            return .chosen(versionId: versionId)
        }
    }

    // MARK: Plumbing

    private static let columns = """
        SELECT v.id, v.set_id, v.media_id, v.name, v.prompt, v.job_id, j.status, v.file_path, v.mime_type, v.width, v.height,
               v.bytes, v.sha256, v.chosen_at, v.chosen_version_id, v.created_at
        FROM variations v JOIN generation_jobs j ON j.id = v.job_id
        """

    private func records(_ rows: [PostgresRow]) throws -> [VariationRecord] {
        var result: [VariationRecord] = []
        for row in rows {
            let c = try row.decode((UUID, UUID, UUID, String, String?, UUID, String, String?, String?, Int?, Int?, Int?, String?, Date?, UUID?, Date).self)
            var file: StoredFile?
            if let path = c.7, let mime = c.8, let width = c.9, let height = c.10, let bytes = c.11, let sha = c.12 {
                file = StoredFile(path: path, mimeType: mime, width: width, height: height, bytes: bytes, sha256: sha)
            }
            result.append(VariationRecord(
                id: c.0, setId: c.1, mediaId: c.2, name: c.3, prompt: c.4, jobId: c.5, jobStatus: JobStatus(rawValue: c.6) ?? .queued,
                file: file, chosenAt: c.13, chosenVersionId: c.14, createdAt: c.15))
        }
        return result
    }

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await client.transaction(logger: logger, body)
    }
}
