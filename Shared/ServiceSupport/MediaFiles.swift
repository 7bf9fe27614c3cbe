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
    /// `isReferenced` is asked after the file is moved aside, so a writer storing it from then on
    /// writes it again instead of trusting a file about to go.
    public func erase(
        _ path: String, unlessTouchedWithin grace: Duration, now: Date = Date(), isReferenced: () async throws -> Bool
    ) async throws -> Erasure {
        guard let url = url(for: StoredFile(path: path, mimeType: "", width: 1, height: 1, bytes: 0, sha256: "")) else {
            return .absent
        }
        let aside = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).erasing")
        guard rename(url.path, aside.path) == 0 else {
            guard errno == ENOENT else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
            return .absent
        }
        /// Puts it back: a copy stored meanwhile has the same bytes (the name is their digest).
        func keep(_ reason: Erasure) -> Erasure {
            _ = rename(aside.path, url.path)
            return reason
        }
        let modified = (try? FileManager.default.attributesOfItem(atPath: aside.path)[.modificationDate] as? Date) ?? now
        if now.timeIntervalSince(modified) < Double(grace.components.seconds) { return keep(.touchedRecently) }
        let referenced: Bool
        do { referenced = try await isReferenced() } catch {
            _ = keep(.referenced)
            throw error
        }
        if referenced { return keep(.referenced) }
        try FileManager.default.removeItem(at: aside)
        return .erased
    }

    /// The absolute location of a stored file; nil for a path that would leave the root.
    public func url(for file: StoredFile) -> URL? {
        guard !file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else { return nil }
        return root.appendingPathComponent(file.path)
    }
}
