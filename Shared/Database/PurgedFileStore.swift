import Foundation
import Logging
import PostgresNIO

/// The queue of files whose last known owner was deleted for good (``MediaStore/purge(_:)``), or
/// that were stored for a result never applied (``enqueue(_:)``), for the gateway's sweeper: a file
/// leaves the queue once it is erased or found to be someone's again.
public struct PurgedFileStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.purged-files")) {
        self.client = client
        self.logger = logger
    }

    /// What the sweeper made of one queued file.
    public enum Outcome: Sendable {
        /// Erased, or someone's again: it leaves the queue.
        case settled
        /// Not yet (written or touched too recently): it stays for the next sweep.
        case later
    }

    /// Hands up to `limit` queued files, oldest first, to `decide` with a way to ask whether any row
    /// refers to the file now; returns how many were settled. The rows are locked (`SKIP LOCKED`), so
    /// two sweepers never take the same file.
    public func sweep(
        limit: Int,
        _ decide: (_ path: String, _ isReferenced: () async throws -> Bool) async throws -> Outcome
    ) async throws -> Int {
        try await client.transaction(logger: logger) { connection in
            var paths: [String] = []
            let rows = try await connection.query("""
                SELECT path FROM purged_files ORDER BY purged_at, path LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            for try await path in rows.decode(String.self) { paths.append(path) }
            var settled = 0
            for path in paths {
                let outcome = try await decide(path) {
                    let answer = try await connection.query("""
                        SELECT EXISTS (SELECT 1 FROM media WHERE file_path = \(path) AND purged_at IS NULL)
                            OR EXISTS (SELECT 1 FROM media_versions WHERE file_path = \(path))
                            OR EXISTS (SELECT 1 FROM review_candidates WHERE file_path = \(path))
                            OR EXISTS (SELECT 1 FROM variations WHERE file_path = \(path))
                        """, logger: logger)
                    for try await referenced in answer.decode(Bool.self) { return referenced }
                    return true
                }
                if case .settled = outcome {
                    try await connection.query("DELETE FROM purged_files WHERE path = \(path)", logger: logger)
                    settled += 1
                }
            }
            return settled
        }
    }

    /// Queues `path` (as media rows name files): a result the ingestor stored and then could not
    /// apply (its media went, its job ended). Queuing a file that someone has is harmless: the sweeper
    /// finds it referenced and lets it go; one stored again meanwhile is within its grace.
    public func enqueue(_ path: String) async throws {
        try await client.query("""
            INSERT INTO purged_files (path) VALUES (\(path)) ON CONFLICT (path) DO UPDATE SET purged_at = now()
            """, logger: logger)
    }

    /// How many files wait to be erased.
    public func count() async throws -> Int {
        let rows = try await client.query("SELECT count(*)::bigint FROM purged_files", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}
