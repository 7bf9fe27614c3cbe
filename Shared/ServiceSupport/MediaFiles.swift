import Crypto
import Database
import Foundation
import ServiceCore
import Timing

/// Media files on disk under one root, named by their content: `ab/cd/<sha256>.<ext>`.
///
/// Names never come from users, the same bytes are stored once, and a write is atomic (temporary
/// file, then rename), so a crash never leaves half a file under a real name.
///
/// Files of media deleted for good are erased by ``erase(_:unlessTouchedWithin:isReferenced:)``
/// while others may be storing the same bytes. The two meet safely because storing an existing
/// file touches it (its modification time is now) and a touch that finds no file writes it again,
/// while erasing first moves the file aside, then keeps it if it was touched within the grace
/// period or is referred to, and only then unlinks it: a writer that stored (or touched) the file
/// before its row was committed is either seen by the touch or finds the file gone and writes it.
public struct MediaFiles: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// Stores `bytes` (already sniffed as `image`) and describes the stored file.
    public func store(_ bytes: [UInt8], as image: SniffedImage) throws -> StoredFile {
        let digest = Digest.sha256Hex(bytes)
        let relative = "\(digest.prefix(2))/\(digest.dropFirst(2).prefix(2))/\(digest).\(image.fileExtension)"
        let destination = root.appendingPathComponent(relative)
        let manager = FileManager.default
        // Already there: touched, so that a sweep erasing it now keeps it (see the type's comment).
        if utimes(destination.path, nil) != 0 {
            try manager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(UUID().uuidString).part")
            try Data(bytes).write(to: temporary)
            if rename(temporary.path, destination.path) != 0 {
                try? manager.removeItem(at: temporary)
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: destination.path])
            }
        }
        return StoredFile(
            path: relative, mimeType: image.mimeType, width: image.width, height: image.height,
            bytes: bytes.count, sha256: digest)
    }

    /// What ``erase(_:unlessTouchedWithin:isReferenced:)`` did.
    public enum Erasure: Sendable, Equatable {
        case erased
        /// There was no such file (erased already, or never stored).
        case absent
        /// Kept: a row refers to it.
        case referenced
        /// Kept for now: stored or touched within the grace period (a writer may be about to refer to it).
        case touchedRecently
    }

    /// Erases the stored file at `path` unless a row refers to it or it was stored or touched within
    /// `grace` (longer than any writer takes from storing a file to committing the row that names it).
    ///
    /// Both are checked first, with the file in place (a file someone still has is never moved, so
    /// their downloads never miss it); only a file old and unreferenced is moved aside, and both are
    /// checked again: a writer storing it from then on writes it again instead of trusting a file
    /// about to go, and one that touched it just before is seen by the grace. A file put back is
    /// touched, so a copy a writer stored meanwhile keeps its grace. A copy left aside by a crash is
    /// put back first.
    public func erase(
        _ path: String, unlessTouchedWithin grace: Duration, now: @autoclosure () -> Date = Date(),
        isReferenced: () async throws -> Bool
    ) async throws -> Erasure {
        guard let url = url(forPath: path) else {
            return .absent
        }
        recoverSetAside(url)
        func touchedRecently(_ file: URL) -> Bool? {
            guard let modified = try? FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as? Date else { return nil }
            return now().timeIntervalSince(modified) < grace.timeInterval
        }
        // With the file in place.
        guard let recent = touchedRecently(url) else { return .absent }
        if recent { return .touchedRecently }
        if try await isReferenced() { return .referenced }
        // Aside, and again.
        let aside = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).erasing")
        guard rename(url.path, aside.path) == 0 else {
            guard errno == ENOENT else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
            return .absent
        }
        /// Puts it back (a copy stored meanwhile has the same bytes: the name is their digest) and
        /// touches it, so that a writer's touch is not undone by an older modification time.
        func keep(_ reason: Erasure) -> Erasure {
            _ = rename(aside.path, url.path)
            _ = utimes(url.path, nil)
            return reason
        }
        if touchedRecently(aside) != false { return keep(.touchedRecently) }
        let referenced: Bool
        do { referenced = try await isReferenced() } catch {
            _ = keep(.referenced)
            throw error
        }
        if referenced { return keep(.referenced) }
        try FileManager.default.removeItem(at: aside)
        return .erased
    }

    /// Hands the stored files (as rows name them: `ab/cd/<sha256>.<ext>`) not written or touched
    /// since `cutoff` to `body`, up to `batch` at a time, for ``PurgedFileStore/enqueueUnreferenced(_:)``.
    /// On the way it settles what a process that died left behind, when older than `cutoff`: a
    /// write's temporary file is removed (its writer is gone: a write renames it within moments) and
    /// a copy an erasure moved aside is put back (or dropped when the file is there). The
    /// thumbnails (`thumbnails/`, made again on demand) and anything not named like a stored file
    /// are left alone. Returns how many files were handed over.
    @discardableResult
    public func forEachFile(
        untouchedSince cutoff: Date, batch: Int = 500, _ body: ([String]) async throws -> Void
    ) async throws -> Int {
        let base = root.standardizedFileURL.path + "/"
        let keys: [URLResourceKey] = [.isRegularFileKey, .contentModificationDateKey]
        guard let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: keys) else { return 0 }
        var pending: [String] = [], handed = 0
        var entries = 0
        while let url = walk.nextObject() as? URL {
            entries += 1
            if entries % 1000 == 0 { try Task.checkCancellation() }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(base) else { continue }
            let relative = String(path.dropFirst(base.count))
            if relative == "thumbnails" {
                walk.skipDescendants()
                continue
            }
            guard let values = try? url.resourceValues(forKeys: Set(keys)), values.isRegularFile == true,
                  let modified = values.contentModificationDate, modified < cutoff
            else { continue }
            let name = url.lastPathComponent
            if name.hasPrefix("."), name.hasSuffix(".part") {
                try? FileManager.default.removeItem(at: url)
            } else if name.hasPrefix("."), name.hasSuffix(".erasing") {
                // Moved aside a day ago, not just now: a rename keeps the modification time (the
                // file's age) and sets the status change time, which says when it was moved.
                var status = stat()
                guard lstat(url.path, &status) == 0, Double(status.st_ctim.tv_sec) < cutoff.timeIntervalSince1970 else { continue }
                // `.<name>.<uuid>.erasing`: the name is what precedes the last two dots' parts.
                let parts = name.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
                if parts.count >= 4 {
                    recoverSetAside(url.deletingLastPathComponent().appendingPathComponent(parts.dropLast(2).joined(separator: ".")))
                }
            } else if Self.isStoredName(relative) {
                pending.append(relative)
                if pending.count >= batch {
                    try await body(pending)
                    handed += pending.count
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
        if !pending.isEmpty {
            try await body(pending)
            handed += pending.count
        }
        return handed
    }

    /// `ab/cd/<sha256>.<ext>` with `ab` and `cd` the digest's first four hex digits, as ``store(_:as:)`` names files.
    static func isStoredName(_ relative: String) -> Bool {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let dot = parts[2].firstIndex(of: ".") else { return false }
        let digest = parts[2][..<dot], fileExtension = parts[2][parts[2].index(after: dot)...]
        return digest.count == 64 && digest.allSatisfy { $0.isHexDigit && !$0.isUppercase }
            && parts[0] == digest.prefix(2) && parts[1] == digest.dropFirst(2).prefix(2)
            && !fileExtension.isEmpty && fileExtension.allSatisfy { $0.isLetter || $0.isNumber }
    }

    /// Puts back a copy of `url` that an erasure moved aside and never finished with (the process
    /// died between the two renames); extra copies (same bytes) are removed.
    private func recoverSetAside(_ url: URL) {
        let folder = url.deletingLastPathComponent()
        let prefix = ".\(url.lastPathComponent)."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".erasing") {
            let copy = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) {
                try? FileManager.default.removeItem(at: copy)
            } else {
                _ = rename(copy.path, url.path)
            }
        }
    }

    /// The absolute location of a stored file; nil for a path that would leave the root.
    public func url(for file: StoredFile) -> URL? { url(forPath: file.path) }

    /// The absolute location of the file stored at `path`; nil for a path that would leave the root.
    public func url(forPath path: String) -> URL? {
        guard !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else { return nil }
        return root.appendingPathComponent(path)
    }
}
