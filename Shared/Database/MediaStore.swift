import Foundation
import Logging
import PostgresNIO

/// A file in the media store: where it lives (relative to the media root) and what it is.
public struct StoredFile: Sendable, Equatable {
    public var path: String
    public var mimeType: String
    public var width: Int
    public var height: Int
    public var bytes: Int
    public var sha256: String

    public init(path: String, mimeType: String, width: Int, height: Int, bytes: Int, sha256: String) {
        self.path = path
        self.mimeType = mimeType
        self.width = width
        self.height = height
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// A media item: a stable id whose current file changes as versions are added.
public struct MediaRecord: Sendable, Equatable {
    public var id: UUID
    public var collection: String
    public var originalFilename: String?
    /// The current version's file.
    public var file: StoredFile
    public var currentVersionId: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// Where the media stands with generation (``MediaState``).
    public var state: MediaState
    /// When it was moved to the trash; nil for a media in the library.
    public var deletedAt: Date?
}

/// Where a media item stands with generation, as the library shows and filters it. Exactly one
/// holds, in this order: a job is running for it (`inProgress`); a batch result for it waits for
/// review (`awaitingReview`); its latest job (of those that
/// replace the image) failed, and failed after the image it shows was made (`failed`); the image it shows is a
/// generated one — a generation, a chosen variation, or a revert to one of them (`processed`);
/// otherwise `unprocessed`.
public enum MediaState: String, Sendable, CaseIterable {
    case unprocessed, processed, inProgress, awaitingReview, failed
}

/// The orders the library lists in. In the trash, `newest` and `oldest` go by when an item was
/// deleted; elsewhere by when it was uploaded. Ties go newest first, then by id, so pages never
/// overlap.
public enum MediaSort: String, Sendable, CaseIterable {
    case newest, oldest, name, nameDescending = "name_desc", largest, smallest

    func sql(trash: Bool) -> String {
        let date = trash ? "deleted_at" : "created_at"
        switch self {
        case .newest: return "\(date) DESC, id"
        case .oldest: return "\(date) ASC, id"
        case .name: return "lower(original_filename) ASC NULLS LAST, created_at DESC, id"
        case .nameDescending: return "lower(original_filename) DESC NULLS LAST, created_at DESC, id"
        case .largest: return "bytes DESC, created_at DESC, id"
        case .smallest: return "bytes ASC, created_at DESC, id"
        }
    }
}

/// What a page of the library holds: the filters, the order and the page.
public struct MediaQuery: Sendable, Equatable {
    /// One collection, or nil for all.
    public var collection: String?
    /// Part of the name, matched without regard to case; nil or empty for any.
    public var search: String?
    public var state: MediaState?
    public var sort: MediaSort
    /// The trash (deleted items) instead of the library.
    public var trash: Bool
    public var page: Int
    public var pageSize: Int

    public init(
        collection: String? = nil, search: String? = nil, state: MediaState? = nil, sort: MediaSort = .newest,
        trash: Bool = false, page: Int = 1, pageSize: Int = 50
    ) {
        self.collection = collection
        self.search = search
        self.state = state
        self.sort = sort
        self.trash = trash
        self.page = page
        self.pageSize = pageSize
    }

    /// The search as an ILIKE pattern: the words match literally (`%`, `_` and `\` escaped).
    var pattern: String? {
        guard let search, !search.isEmpty else { return nil }
        var escaped = ""
        for character in search {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return "%\(escaped)%"
    }
}

/// One entry of a media's version history.
public struct MediaVersionRecord: Sendable, Equatable {
    public var id: UUID
    public var mediaId: UUID
    public var number: Int
    /// `upload`, `generation`, `variation` or `revert`.
    public var source: String
    public var jobId: UUID?
    public var revertedFromVersionId: UUID?
    public var file: StoredFile
    public var createdAt: Date
}

/// The media library's rows: media and their version history. Files themselves live on disk.
public struct MediaStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.media-store")) {
        self.client = client
        self.logger = logger
    }

    /// Creates a media item whose first version (`upload`) is `file`.
    public func create(collection: String, originalFilename: String?, file: StoredFile) async throws -> MediaRecord {
        let mediaId = UUID()
        let versionId = UUID()
        let logger = self.logger
        try await transaction { connection in
            try await connection.query("""
                INSERT INTO media (id, collection, original_filename, file_path, mime_type, width, height, bytes, sha256, current_version_id)
                VALUES (\(mediaId), \(collection), \(originalFilename), \(file.path), \(file.mimeType), \(file.width),
                        \(file.height), \(file.bytes), \(file.sha256), \(versionId))
                """, logger: logger)
            try await connection.query("""
                INSERT INTO media_versions (id, media_id, version_number, source, file_path, mime_type, width, height, bytes, sha256)
                VALUES (\(versionId), \(mediaId), 1, 'upload', \(file.path), \(file.mimeType), \(file.width), \(file.height),
                        \(file.bytes), \(file.sha256))
                """, logger: logger)
        }
        guard let created = try await media(mediaId) else { throw MediaStoreError(message: "media \(mediaId) vanished after insert") }
        return created
    }

    /// The media item, nil when unknown or deleted (or, with `includingTrash`, unknown or deleted
    /// for good).
    public func media(_ id: UUID, includingTrash: Bool = false) async throws -> MediaRecord? {
        try await records(client.rows("""
            \(unescaped: Self.mediaColumns) WHERE id = \(id) AND (\(includingTrash) OR deleted_at IS NULL) AND purged_at IS NULL
            """, logger: logger)).first
    }

    /// One page of the library (or the trash) and how many items match in all.
    public func list(_ query: MediaQuery) async throws -> (items: [MediaRecord], total: Int) {
        let offset = max(0, query.page - 1) * query.pageSize
        let (collection, pattern, state) = (query.collection, query.pattern, query.state?.rawValue)
        let trash = query.trash
        // The conditions are written out so the partial indexes apply. The filters are bound; an absent one is NULL, which PostgreSQL folds away when it plans
        // the (unnamed) statement with its values. `state` is computed per row only when filtered on.
        let items = try await records(client.rows("""
            \(unescaped: Self.mediaColumns)
            WHERE \(unescaped: trash ? Self.inTrash : "deleted_at IS NULL")
              AND (\(collection)::text IS NULL OR collection = \(collection))
              AND (\(pattern)::text IS NULL OR original_filename ILIKE \(pattern))
              AND (\(state)::text IS NULL OR \(unescaped: Self.stateExpression) = \(state))
            ORDER BY \(unescaped: query.sort.sql(trash: trash)) LIMIT \(query.pageSize) OFFSET \(offset)
            """, logger: logger))
        let counted = try await client.rows("""
            SELECT count(*)::bigint FROM media
            WHERE \(unescaped: trash ? Self.inTrash : "deleted_at IS NULL")
              AND (\(collection)::text IS NULL OR collection = \(collection))
              AND (\(pattern)::text IS NULL OR original_filename ILIKE \(pattern))
              AND (\(state)::text IS NULL OR \(unescaped: Self.stateExpression) = \(state))
            """, logger: logger)
        var total = 0
        for count in try counted.decode(Int.self) { total = count }
        return (items, total)
    }

    /// The media of `ids` in the library (not deleted), in no particular order.
    public func media(ids: [UUID]) async throws -> [MediaRecord] {
        try await records(client.rows(
            "\(unescaped: Self.mediaColumns) WHERE id = ANY(\(ids)) AND deleted_at IS NULL", logger: logger))
    }

    /// The file at `path` if it is one of `mediaId`'s versions (in the trash or not), else nil.
    public func versionFile(of mediaId: UUID, path: String) async throws -> StoredFile? {
        let rows = try await client.rows("""
            SELECT file_path, mime_type, width, height, bytes, sha256 FROM media_versions
            WHERE media_id = \(mediaId) AND file_path = \(path) LIMIT 1
            """, logger: logger)
        for (path, mime, width, height, bytes, sha) in try rows.decode((String, String, Int, Int, Int, String).self) {
            return StoredFile(path: path, mimeType: mime, width: width, height: height, bytes: bytes, sha256: sha)
        }
        return nil
    }

    /// The version history, newest first (empty for an unknown or deleted media).
    public func versions(of mediaId: UUID) async throws -> [MediaVersionRecord] {
        let rows = try await client.rows("""
            SELECT v.id, v.media_id, v.version_number, v.source, v.job_id, v.reverted_from_version_id,
                   v.file_path, v.mime_type, v.width, v.height, v.bytes, v.sha256, v.created_at
            FROM media_versions v JOIN media m ON m.id = v.media_id
            WHERE v.media_id = \(mediaId) AND m.deleted_at IS NULL
            ORDER BY v.version_number DESC
            """, logger: logger)
        var versions: [MediaVersionRecord] = []
        for (id, media, number, source, job, revertedFrom, path, mime, width, height, bytes, sha, created)
            in try rows.decode((UUID, UUID, Int, String, UUID?, UUID?, String, String, Int, Int, Int, String, Date).self) {
            versions.append(MediaVersionRecord(
                id: id, mediaId: media, number: number, source: source, jobId: job, revertedFromVersionId: revertedFrom,
                file: StoredFile(path: path, mimeType: mime, width: width, height: height, bytes: bytes, sha256: sha),
                createdAt: created))
        }
        return versions
    }

    /// Makes an earlier version current again by adding a `revert` version with its file, so the
    /// history only ever grows. Nil when the media or the version (of that media) is unknown. With
    /// `ifCurrent`, only while the media still shows that version: otherwise nothing is done and
    /// ``ImageChanged`` is thrown (an Undo must not take back a change made since).
    public func revert(_ mediaId: UUID, to versionId: UUID, ifCurrent expected: UUID? = nil) async throws -> MediaRecord? {
        let newVersionId = UUID()
        let logger = self.logger
        let reverted: Bool = try await transaction { connection in
            // Lock the media row: concurrent reverts and generations get consecutive version numbers.
            guard let shown = try await Self.lockShown(mediaId, on: connection, logger: logger) else { return false }
            if let expected, expected != shown.version { throw ImageChanged(current: shown.version) }
            let inserted = try await connection.query("""
                INSERT INTO media_versions (id, media_id, version_number, source, reverted_from_version_id,
                                            file_path, mime_type, width, height, bytes, sha256)
                SELECT \(newVersionId), v.media_id,
                       (SELECT max(version_number) + 1 FROM media_versions WHERE media_id = \(mediaId)),
                       'revert', v.id, v.file_path, v.mime_type, v.width, v.height, v.bytes, v.sha256
                FROM media_versions v WHERE v.id = \(versionId) AND v.media_id = \(mediaId)
                RETURNING id
                """, logger: logger)
            var added = false
            for try await _ in inserted.decode(UUID.self) { added = true }
            guard added else { return false }
            try await connection.query("""
                UPDATE media SET current_version_id = v.id, file_path = v.file_path, mime_type = v.mime_type,
                       width = v.width, height = v.height, bytes = v.bytes, sha256 = v.sha256, updated_at = now()
                FROM media_versions v WHERE v.id = \(newVersionId) AND media.id = \(mediaId)
                """, logger: logger)
            return true
        }
        return reverted ? try await media(mediaId) : nil
    }

    /// Makes a generation's result the media's current version, in ONE transaction with the job's
    /// ledger row: the version is added (unique per job), the media points at it, and the job is
    /// COMPLETED. Idempotent by job id: a second call finds the job completed and changes nothing.
    public func applyGeneration(_ result: GenerationResult) async throws -> GenerationApplyOutcome {
        let logger = self.logger
        return try await transaction { connection in
            let jobs = try await connection.query(
                "SELECT status, result_version_id, media_id, kind FROM generation_jobs WHERE id = \(result.jobId) FOR UPDATE",
                logger: logger)
            var job: (status: String, version: UUID?, mediaId: UUID, kind: String)?
            for try await row in jobs.decode((String, UUID?, UUID, String).self) { job = row }
            // A result is applied only to the media its accepted job names.
            if let refusal = GenerationApplyOutcome.refusal(
                jobId: result.jobId, mediaId: result.mediaId, variation: false, job: job.map { ($0.mediaId, $0.kind) }) {
                return refusal
            }
            guard let job else { return .mediaGone }
            switch job.status {
            case "COMPLETED":
                guard let version = job.version else { throw MediaStoreError(message: "job \(result.jobId) is COMPLETED without a version") }
                return .alreadyApplied(versionId: version)
            case "FAILED", "CANCELLED":
                return .jobEnded(status: job.status)
            default: break
            }
            // An item in the trash takes its result too (restored, it shows it; its Undo must not
            // cost a paid result); only one deleted for good (its row a tombstone) does not. Its row
            // is locked, so a purge waits for this transaction or this one finds it purged.
            let locked = try await connection.query(
                "SELECT current_version_id FROM media WHERE id = \(result.mediaId) AND purged_at IS NULL FOR UPDATE", logger: logger)
            var found = false
            var previous: UUID?
            for try await current in locked.decode(UUID?.self) {
                found = true
                previous = current
            }
            guard found else { return .mediaGone }
            let versionId = UUID()
            let file = result.file
            try await connection.query("""
                INSERT INTO media_versions (id, media_id, version_number, source, job_id, file_path, mime_type, width, height, bytes, sha256)
                VALUES (\(versionId), \(result.mediaId),
                        (SELECT max(version_number) + 1 FROM media_versions WHERE media_id = \(result.mediaId)),
                        'generation', \(result.jobId), \(file.path), \(file.mimeType), \(file.width), \(file.height),
                        \(file.bytes), \(file.sha256))
                """, logger: logger)
            try await connection.query("""
                UPDATE media SET current_version_id = \(versionId), file_path = \(file.path), mime_type = \(file.mimeType),
                       width = \(file.width), height = \(file.height), bytes = \(file.bytes), sha256 = \(file.sha256), updated_at = now()
                WHERE id = \(result.mediaId)
                """, logger: logger)
            try await connection.query("""
                UPDATE generation_jobs SET status = 'COMPLETED', result_version_id = \(versionId), cost = \(result.cost),
                       backend = \(result.backend), backend_job_id = \(result.backendJobId),
                       completed_at = now(), updated_at = now()
                WHERE id = \(result.jobId)
                """, logger: logger)
            return .applied(versionId: versionId, previousVersionId: previous)
        }
    }

    /// Renames a media item (its `originalName`); nil for an unknown or deleted one.
    public func rename(_ mediaId: UUID, to name: String) async throws -> MediaRecord? {
        let rows = try await client.rows(
            "UPDATE media SET original_filename = \(name), updated_at = now() WHERE id = \(mediaId) AND deleted_at IS NULL RETURNING id",
            logger: logger)
        for _ in try rows.decode(UUID.self) { return try await media(mediaId) }
        return nil
    }

    /// Moves the media to the trash (its files and history stay; ``restore(_:)`` brings it back);
    /// false when unknown or in the trash already.
    public func delete(_ mediaId: UUID) async throws -> Bool {
        let rows = try await client.rows(
            "UPDATE media SET deleted_at = now() WHERE id = \(mediaId) AND deleted_at IS NULL RETURNING id", logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// Brings the media back from the trash as it was (a media in the library stays as it is);
    /// nil when unknown or deleted for good.
    public func restore(_ mediaId: UUID) async throws -> MediaRecord? {
        try await client.rows(
            "UPDATE media SET deleted_at = NULL WHERE id = \(mediaId) AND \(unescaped: Self.inTrash)", logger: logger)
        return try await media(mediaId)
    }

    /// Deletes media in the trash for good: `ids` (each must be in the trash), or the whole trash
    /// when nil. What they were goes — name, versions, review candidates, variations — and
    /// their files are queued in `purged_files` for the gateway's sweeper, which erases each one once
    /// nothing refers to it. The row stays as a tombstone (`purged_at`), so the ledger's jobs for it,
    /// and the spend they hold, stay too. Returns the ids deleted; an id not in the trash is left out.
    /// `deletedBefore`: only what went to the trash before then (the trash's keeping time, run by the
    /// gateway).
    public func purge(_ ids: [UUID]?, deletedBefore cutoff: Date? = nil) async throws -> [UUID] {
        try await transaction { connection in
            var purged: [UUID] = []
            let rows = try await connection.query("""
                SELECT id FROM media WHERE \(unescaped: Self.inTrash) AND (\(ids)::uuid[] IS NULL OR id = ANY(\(ids)))
                  AND (\(cutoff)::timestamptz IS NULL OR deleted_at < \(cutoff))
                ORDER BY id FOR UPDATE
                """, logger: logger)
            for try await id in rows.decode(UUID.self) { purged.append(id) }
            guard !purged.isEmpty else { return [] }
            // Every file they refer to, before the rows that say so go.
            try await connection.query("""
                INSERT INTO purged_files (path)
                SELECT file_path FROM media WHERE id = ANY(\(purged))
                UNION SELECT file_path FROM media_versions WHERE media_id = ANY(\(purged))
                UNION SELECT file_path FROM review_candidates WHERE media_id = ANY(\(purged))
                UNION SELECT file_path FROM variations WHERE media_id = ANY(\(purged)) AND file_path IS NOT NULL
                ON CONFLICT (path) DO UPDATE SET purged_at = now()
                """, logger: logger)
            try await connection.query("""
                UPDATE media SET purged_at = now(), original_filename = NULL, current_version_id = NULL, updated_at = now()
                WHERE id = ANY(\(purged))
                """, logger: logger)
            try await connection.query("DELETE FROM review_candidates WHERE media_id = ANY(\(purged))", logger: logger)
            try await connection.query("DELETE FROM variations WHERE media_id = ANY(\(purged))", logger: logger)
            try await connection.query("DELETE FROM media_versions WHERE media_id = ANY(\(purged))", logger: logger)
            return purged
        }
    }

    /// Whether media `id` was deleted for good, read with a share lock that a purge (which locks the
    /// row for update) waits for, or waits on: a candidate kept in this transaction (a variation, a
    /// result under review) is never left behind by a purge committing meanwhile.
    static func isPurged(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query("SELECT purged_at IS NOT NULL FROM media WHERE id = \(id) FOR SHARE", logger: logger)
        for try await purged in rows.decode(Bool.self) { return purged }
        return false
    }

    /// In the trash: deleted, not for good (the condition of the `media_trash` index).
    static let inTrash = "deleted_at IS NOT NULL AND purged_at IS NULL"

    // MARK: Plumbing

    private static let mediaColumns = """
        SELECT id, collection, original_filename, file_path, mime_type, width, height, bytes, sha256,
               current_version_id, created_at, updated_at, deleted_at, \(stateExpression) FROM media
        """

    /// ``MediaState`` of the row `media` in SQL: four index lookups (generation_jobs_media, review_candidates_waiting,
    /// the version's primary key, media_versions_history).
    static let stateExpression = """
        CASE
          WHEN EXISTS (SELECT 1 FROM generation_jobs j WHERE j.media_id = media.id
                       AND j.status <> ALL('{\(JobStatus.terminal.joined(separator: ","))}'::text[])) THEN 'inProgress'
          WHEN EXISTS (SELECT 1 FROM review_candidates r WHERE r.media_id = media.id AND r.decision IS NULL) THEN 'awaitingReview'
          WHEN (SELECT j.status = 'FAILED' AND j.updated_at > (SELECT v.created_at FROM media_versions v WHERE v.id = media.current_version_id)
                FROM generation_jobs j WHERE j.media_id = media.id AND j.kind <> 'variation'
                ORDER BY j.created_at DESC LIMIT 1) THEN 'failed'
          WHEN EXISTS (SELECT 1 FROM media_versions g WHERE g.media_id = media.id
                       AND g.source IN ('generation', 'variation') AND g.sha256 = media.sha256) THEN 'processed'
          ELSE 'unprocessed'
        END
        """

    private func records(_ rows: [PostgresRow]) throws -> [MediaRecord] {
        var result: [MediaRecord] = []
        for (id, collection, name, path, mime, width, height, bytes, sha, version, created, updated, deleted, state)
            in try rows.decode((UUID, String, String?, String, String, Int, Int, Int, String, UUID, Date, Date, Date?, String).self) {
            result.append(MediaRecord(
                id: id, collection: collection, originalFilename: name,
                file: StoredFile(path: path, mimeType: mime, width: width, height: height, bytes: bytes, sha256: sha),
                currentVersionId: version, createdAt: created, updatedAt: updated,
                state: MediaState(rawValue: state) ?? .unprocessed, deletedAt: deleted))
        }
        return result
    }

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await client.transaction(logger: logger, body)
    }
}

extension MediaStore {
    /// The version a kept candidate (a batch item under review, an A/B variation) was made from,
    /// inside the caller's transaction: the newest version of its media holding the job's source
    /// file, else the media's current version (a result whose messages do not name the source).
    static func baseVersion(of result: GenerationResult, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        let rows = try await connection.query("""
            SELECT COALESCE((SELECT id FROM media_versions WHERE media_id = \(result.mediaId) AND file_path = \(result.sourcePath)
                             ORDER BY version_number DESC LIMIT 1),
                            (SELECT current_version_id FROM media WHERE id = \(result.mediaId)))
            """, logger: logger)
        var base: UUID?
        for try await row in rows.decode(UUID?.self) { base = row }
        return base
    }

    /// What a media shows: its current version and that version's file.
    struct Shown {
        var version: UUID
        var path: String

        /// Whether this is still the photo a candidate made from version `base` (whose file is at
        /// `basePath`) may replace: that version, or the same file again (reverted away and back:
        /// files are named by their content).
        func isStill(base: UUID?, basePath: String?) -> Bool { version == base || path == basePath }
    }

    /// What media `id` shows, its row locked for the caller's transaction (choices, approvals,
    /// reverts and results for one media queue there); nil when it is unknown or in the trash.
    static func lockShown(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Shown? {
        let rows = try await connection.query(
            "SELECT current_version_id, file_path FROM media WHERE id = \(id) AND deleted_at IS NULL FOR UPDATE", logger: logger)
        var shown: Shown?
        for try await (version, path) in rows.decode((UUID, String).self) { shown = Shown(version: version, path: path) }
        return shown
    }
}

/// A change asked for on the condition that the media still shows a version it no longer shows.
public struct ImageChanged: Error, Sendable, Equatable {
    /// The version it shows now.
    public var current: UUID
}

/// A finished generation, stored on disk, to be made the media's current version.
public struct GenerationResult: Sendable {
    public var jobId: UUID
    public var mediaId: UUID
    /// The ledger's kind: `single`, `batch` or `variation`.
    public var kind: String
    public var batchId: UUID?
    public var variationName: String?
    public var correlationId: String
    public var backend: String
    public var backendJobId: String
    /// USD.
    public var cost: Double
    public var file: StoredFile
    /// The path of the media file the job was made from (its `source`), when the message said.
    public var sourcePath: String?

    public init(
        jobId: UUID, mediaId: UUID, kind: String, batchId: UUID?, variationName: String?, correlationId: String,
        backend: String, backendJobId: String, cost: Double, file: StoredFile, sourcePath: String? = nil
    ) {
        self.jobId = jobId
        self.mediaId = mediaId
        self.kind = kind
        self.batchId = batchId
        self.variationName = variationName
        self.correlationId = correlationId
        self.backend = backend
        self.backendJobId = backendJobId
        self.cost = cost
        self.file = file
        self.sourcePath = sourcePath
    }
}

/// What ``MediaStore/applyGeneration(_:)`` did.
extension GenerationResult {
    /// Marks the job COMPLETED with what its run cost and where it ran, inside the caller's
    /// transaction: for a result kept as a candidate (a variation, a batch item under review), whose
    /// media version comes later, when it is chosen or approved.
    func completeJob(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("""
            UPDATE generation_jobs SET status = 'COMPLETED', cost = \(cost), backend = \(backend),
                   backend_job_id = \(backendJobId), completed_at = now(), updated_at = now()
            WHERE id = \(jobId)
            """, logger: logger)
    }
}

public enum GenerationApplyOutcome: Sendable, Equatable {
    /// The result is the media's new current version.
    case applied(versionId: UUID, previousVersionId: UUID?)
    /// The job was applied before (a redelivery): nothing changed.
    case alreadyApplied(versionId: UUID)
    /// The job had already ended as FAILED or CANCELLED: the result is not applied.
    case jobEnded(status: String)
    /// The media is deleted or unknown.
    case mediaGone
    /// The result names a job nobody accepted, or a job for another media (or of another kind):
    /// nothing is applied, and the job it names is left alone.
    case refused(reason: String)

    /// The refusal for a result that claims job `jobId` of media `mediaId` (a variation or not) when
    /// the job as the ledger has it (its media and kind; nil: no such job) does not allow it; nil
    /// when it does.
    public static func refusal(
        jobId: UUID, mediaId: UUID, variation: Bool, job: (mediaId: UUID, kind: String)?
    ) -> GenerationApplyOutcome? {
        let id = jobId.uuidString.lowercased()
        guard let job else {
            return .refused(reason: "no job \(id) in the ledger: Cyclorama runs and applies only the jobs it accepted")
        }
        guard job.mediaId == mediaId else {
            return .refused(reason: "job \(id) is for media \(job.mediaId.uuidString.lowercased()), not \(mediaId.uuidString.lowercased())")
        }
        guard (job.kind == "variation") == variation else {
            return .refused(reason: "job \(id) is a \(job.kind) job, not a \(variation ? "variation" : "generation that replaces the image")")
        }
        return nil
    }
}

/// A media-store operation that could not be carried out.
public struct MediaStoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
