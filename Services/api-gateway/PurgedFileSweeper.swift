import Database
import Foundation
import Logging
import Metrics
import ServiceSupport
import Timing

/// Erases the files of media deleted for good (docs/data.md, "Deleting for good"): each file
/// queued by ``MediaStore/purge(_:)`` goes, with its thumbnails, once no row refers to it and it
/// was not stored or touched within `grace` (``MediaFiles/erase(_:unlessTouchedWithin:now:isReferenced:)``
/// says why that makes a concurrent upload of the same bytes safe). Starts beside the answer to a
/// purge and runs every `PURGE_SWEEP_INTERVAL_SECONDS`, so a file kept for now goes on a later
/// sweep; two gateways never take the same file (``PurgedFileStore/sweep(limit:_:)``).
struct PurgedFileSweeper: Sendable {
    let store: PurgedFileStore
    let files: MediaFiles
    let thumbnails: Thumbnails
    let grace: Duration
    let logger: Logger

    /// Queues the stored files that no row names and that nobody wrote or touched for `age`, then
    /// sweeps: what a crash between storing a file and committing its row left, or a result whose
    /// job ended otherwise while the ingestor that stored it was gone (docs/data.md, "Files nothing
    /// names"). Run every `UNNAMED_FILE_SCAN_HOURS`; returns how many files were queued anew.
    ///
    /// Crashes leave a few such files, never many: when more than ``unnamedLimit(lookedAt:)`` are
    /// found, or the database names no file at all, the folder is not this database's (a fresh or
    /// restored database, another deployment's folder) and nothing is queued; the error says so.
    @discardableResult
    func queueUnnamedFiles(olderThan age: Duration) async throws -> Int {
        var unnamed: [String] = []
        let cutoff = Date().addingTimeInterval(-age.timeInterval)
        let seen = try await files.forEachFile(untouchedSince: cutoff) { paths in
            // Past the largest share ever allowed the walk goes on only to count.
            if unnamed.count <= Self.mostUnnamed { unnamed += try await store.unreferenced(paths) }
        }
        guard !unnamed.isEmpty else { return 0 }
        let limit = Self.unnamedLimit(lookedAt: seen)
        guard unnamed.count <= limit, try await store.namesAnyFile() else {
            Counter(label: "gateway_unnamed_file_walks_refused_total").increment()
            logger.error(
                "many stored files are named by no row: is MEDIA_ROOT this database's media folder? Nothing was queued for erasure",
                metadata: ["unnamed": "\(unnamed.count)\(unnamed.count > Self.mostUnnamed ? "+" : "")", "looked at": "\(seen)", "limit": "\(limit)"])
            return 0
        }
        var queued = 0
        for start in stride(from: 0, to: unnamed.count, by: 500) {
            queued += try await store.enqueueUnreferenced(Array(unnamed[start..<min(unnamed.count, start + 500)]))
        }
        if queued > 0 {
            Counter(label: "gateway_unnamed_files_queued_total").increment(by: queued)
            logger.warning("found stored files that nothing names; queued for erasure", metadata: ["files": "\(queued)", "looked at": "\(seen)"])
            try await sweep()
        }
        return queued
    }

    /// How many unnamed files a walk that looked at `lookedAt` files may queue: 10, or 1 % of them.
    static func unnamedLimit(lookedAt: Int) -> Int { min(mostUnnamed, max(10, lookedAt / 100)) }
    static let mostUnnamed = 10_000

    /// Sweeps the queue until nothing more can be settled now; returns the files erased.
    @discardableResult
    func sweep() async throws -> Int {
        var erased = 0
        while true {
            let swept = try await store.sweep(limit: 100) { path, isReferenced in
                let erasure = try await files.erase(path, unlessTouchedWithin: grace, isReferenced: isReferenced)
                switch erasure {
                case .erased:
                    thumbnails.forget(path: path)
                    Counter(label: "gateway_purged_files_erased_total").increment()
                    return .erased
                case .absent, .referenced:
                    return .settled
                case .touchedRecently:
                    return .later
                }
            }
            erased += swept.erased
            if swept.settled == 0 { break }
        }
        if erased > 0 { logger.info("erased queued files that nothing names (media deleted for good, results never applied)", metadata: ["files": "\(erased)"]) }
        return erased
    }
}
