import Crypto
import Database
import Foundation
import ServiceCore

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
        guard let url = url(for: StoredFile(path: path, mimeType: "", width: 1, height: 1, bytes: 0, sha256: "")) else {
            return .absent
        }
        recoverSetAside(url)
        func touchedRecently(_ file: URL) -> Bool? {
            guard let modified = try? FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as? Date else { return nil }
            return now().timeIntervalSince(modified) < Double(grace.components.seconds)
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
    public func url(for file: StoredFile) -> URL? {
        guard !file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else { return nil }
        return root.appendingPathComponent(file.path)
    }
}
