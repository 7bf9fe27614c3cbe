import Foundation
import Logging
import PostgresNIO

/// The queue of files whose last known owner was deleted for good (``MediaStore/purge(_:)``), that
/// were stored for a result never applied (``enqueue(_:)``), or that were found on disk with no row
/// naming them (``enqueueUnreferenced(_:)``), for the gateway's sweeper: a file leaves the queue
/// once it is erased or found to be someone's again.
public struct PurgedFileStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.purged-files")) {
        self.client = client
        self.logger = logger
    }

    /// What the sweeper made of one queued file.
    public enum Outcome: Sendable {
        /// Erased: it leaves the queue.
        case erased
        /// Someone's again, or gone already: it leaves the queue.
        case settled
        /// Not yet (written or touched too recently): it stays for the next sweep.
        case later
    }

    /// Hands up to `limit` queued files, oldest first, to `decide` with a way to ask whether any row
    /// refers to the file now; returns how many left the queue and how many of those were erased. The rows are locked (`SKIP LOCKED`), so
    /// two sweepers never take the same file.
    public func sweep(
        limit: Int,
        _ decide: @escaping @Sendable (_ path: String, _ isReferenced: () async throws -> Bool) async throws -> Outcome
    ) async throws -> (settled: Int, erased: Int) {
        try await client.transaction(logger: logger) { connection in
            var paths: [String] = []
            let rows = try await connection.query("""
                SELECT path FROM purged_files ORDER BY purged_at, path LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            for try await path in rows.decode(String.self) { paths.append(path) }
            var settled = 0, erased = 0
            for path in paths {
                let outcome = try await decide(path) {
                    let answer = try await connection.query("""
                        SELECT NOT (\(unescaped: Self.unreferenced)) FROM (SELECT \(path)::text AS p) AS file
                        """, logger: logger)
                    for try await referenced in answer.decode(Bool.self) { return referenced }
                    return true
                }
                if case .later = outcome { continue }
                try await connection.query("DELETE FROM purged_files WHERE path = \(path)", logger: logger)
                settled += 1
                if case .erased = outcome { erased += 1 }
            }
            return (settled, erased)
        }
    }

    /// Queues `path` (as media rows name files): a result the ingestor stored and then could not
    /// apply (its media went, its job ended). Queuing a file that someone has is harmless: the sweeper
    /// finds it referenced and lets it go; one stored again meanwhile is within its grace.
    public func enqueue(_ path: String) async throws {
        try await client.rows("""
            INSERT INTO purged_files (path) VALUES (\(path)) ON CONFLICT (path) DO UPDATE SET purged_at = now()
            """, logger: logger)
    }

    /// Queues those of `paths` that no row refers to: files found on disk that nothing names (a
    /// process that died between storing a file and committing the row naming it, or a result whose
    /// job ended otherwise before it was applied; docs/data.md). Returns how many were queued anew.
    /// The sweeper asks again before it erases anything, so a file named meanwhile stays.
    public func enqueueUnreferenced(_ paths: [String]) async throws -> Int {
        guard !paths.isEmpty else { return 0 }
        let rows = try await client.rows("""
            INSERT INTO purged_files (path)
            SELECT p FROM unnest(\(paths)::text[]) AS p WHERE \(unescaped: Self.unreferenced)
            ON CONFLICT (path) DO NOTHING
            RETURNING path
            """, logger: logger)
        var queued = 0
        for _ in try rows.decode(String.self) { queued += 1 }
        return queued
    }

    /// Those of `paths` that no row refers to (nothing is queued).
    public func unreferenced(_ paths: [String]) async throws -> [String] {
        guard !paths.isEmpty else { return [] }
        let rows = try await client.rows("""
            SELECT p FROM unnest(\(paths)::text[]) AS p WHERE \(unescaped: Self.unreferenced)
            """, logger: logger)
        var found: [String] = []
        for path in try rows.decode(String.self) { found.append(path) }
        return found
    }

    /// Whether any media names a file at all: a database that names none is not the one the media
    /// folder's files belong to (a fresh or wrong database), and nothing may be erased on its word.
    public func namesAnyFile() async throws -> Bool {
        let rows = try await client.rows("SELECT EXISTS (SELECT 1 FROM media_versions) OR EXISTS (SELECT 1 FROM media)", logger: logger)
        for any in try rows.decode(Bool.self) { return any }
        return false
    }

    /// True for a file path `p` that no row refers to: no media that is not deleted for good, no
    /// version, no review candidate, no variation (every table with a `file_path`).
    private static let unreferenced = """
        NOT EXISTS (SELECT 1 FROM media WHERE file_path = p AND purged_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM media_versions WHERE file_path = p)
            AND NOT EXISTS (SELECT 1 FROM review_candidates WHERE file_path = p)
            AND NOT EXISTS (SELECT 1 FROM variations WHERE file_path = p)
        """

    /// How many files wait to be erased.
    public func count() async throws -> Int {
        let rows = try await client.rows("SELECT count(*)::bigint FROM purged_files", logger: logger)
        for count in try rows.decode(Int.self) { return count }
        return 0
    }
}
