import Crypto
import Database
import Foundation
import ServiceCore

/// Media files on disk under one root, named by their content: `ab/cd/<sha256>.<ext>`.
///
/// Names never come from users, the same bytes are stored once, and a write is atomic (temporary
/// file, then rename), so a crash never leaves half a file under a real name.
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
        if !manager.fileExists(atPath: destination.path) {
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

    /// The absolute location of a stored file; nil for a path that would leave the root.
    public func url(for file: StoredFile) -> URL? {
        guard !file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else { return nil }
        return root.appendingPathComponent(file.path)
    }
}
