import Database
import Foundation
import Logging
import Metrics
import ServiceSupport

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

    /// Sweeps the queue until nothing more can be settled now; returns the files erased.
    @discardableResult
    func sweep() async throws -> Int {
        var erased = 0
        while true {
            let settled = try await store.sweep(limit: 100) { path, isReferenced in
                let erasure = try await files.erase(path, unlessTouchedWithin: grace, isReferenced: isReferenced)
                switch erasure {
                case .erased:
                    erased += 1
                    thumbnails.forget(path: path)
                    Counter(label: "gateway_purged_files_erased_total").increment()
                    return .settled
                case .absent, .referenced:
                    return .settled
                case .touchedRecently:
                    return .later
                }
            }
            if settled == 0 { break }
        }
        if erased > 0 { logger.info("erased the files of media deleted for good", metadata: ["files": "\(erased)"]) }
        return erased
    }
}
