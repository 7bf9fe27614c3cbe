import Database
import Foundation
import Hummingbird
import Imaging
import Metrics
import NIOPosix
import ServiceCore
import ServiceSupport
import Synchronization

/// Thumbnails of stored media files, made on first request and kept on disk beside the media:
/// `<MEDIA_ROOT>/thumbnails/<size>/<ab>/<sha256>.<jpg|png>`. A stored file never changes (it is
/// named by its content), so neither does its thumbnail: the cache is never invalidated, and a
/// file's thumbnails go when the file does (``forget(path:)``, when media are deleted for good).
///
/// The work (libvips: JPEG and WebP shrink while loading) runs on NIO's blocking pool, so at most
/// a core's worth of thumbnails are made at once and the event loops never wait on it. A thumbnail
/// asked for again while it is being made is waited for, not made twice (a page of tiles asks for
/// all of them at once); `gateway_thumbnails_made_total{size}` counts the ones made.
struct Thumbnails: Sendable {
    /// The sizes asked for (`?size=`): the long side in pixels. One of these, so the cache stays small.
    static let sizes = [128, 256, 512]
    static let defaultSize = 256
    /// The largest file a thumbnail is made of: more than an upload may have, since an upscaled
    /// result (4x) is larger than its photo; libvips streams a PNG and shrinks a JPEG while loading.
    static let maxPixels = 400_000_000

    let files: MediaFiles
    let maxPixels: Int
    var threadPool: NIOThreadPool = .singleton
    /// Thumbnails being made now, by `<size>/<sha256>`.
    let inFlight = InFlight()

    final class InFlight: Sendable {
        let tasks = Mutex<[String: Task<Thumbnail, any Error>]>([:])
    }

    struct Thumbnail: Sendable {
        var bytes: [UInt8]
        var mimeType: String
    }

    /// The answer to a thumbnail request for `file` (`?size=`): its ETag names the file and the size,
    /// so a revalidation is a 304 until the file changes; `immutable` for a file that never changes
    /// (a version, a review candidate), cached by the browser for a year.
    func response(of file: StoredFile, _ request: Request, immutable: Bool) async throws -> Response {
        let size = try Self.size(of: request)
        let etag = "\"\(file.sha256)-\(size)\""
        let cache = immutable ? "private, max-age=31536000, immutable" : "private, no-cache"
        if request.headers[.ifNoneMatch] == etag {
            return Response(status: .notModified, headers: [.eTag: etag, .cacheControl: cache])
        }
        let thumbnail = try await thumbnail(of: file, size: size)
        return Response(
            status: .ok, headers: [.contentType: thumbnail.mimeType, .eTag: etag, .cacheControl: cache],
            body: .init(byteBuffer: ByteBuffer(bytes: thumbnail.bytes)))
    }

    /// The thumbnail of `file` at `size`, from the cache or made now.
    func thumbnail(of file: StoredFile, size: Int) async throws -> Thumbnail {
        let folder = thumbnailFolder(size: size, sha256: file.sha256)
        for (suffix, type) in [("jpg", "image/jpeg"), ("png", "image/png")] {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("\(file.sha256).\(suffix)").path) {
                return Thumbnail(bytes: Array(data), mimeType: type)
            }
        }
        let key = "\(size)/\(file.sha256)"
        let inFlight = inFlight
        // Under the lock, so the task's own removal (which takes it too) always comes after this insert.
        let task = inFlight.tasks.withLock { tasks in
            if let running = tasks[key] { return running }
            let making = Task {
                defer { _ = inFlight.tasks.withLock { $0.removeValue(forKey: key) } }
                return try await make(file, size: size, folder: folder)
            }
            tasks[key] = making
            return making
        }
        return try await task.value
    }

    private func make(_ file: StoredFile, size: Int, folder: URL) async throws -> Thumbnail {
        guard let source = files.url(for: file) else {
            throw APIError(.internalServerError, code: "file_missing", message: "the stored file's path is not valid")
        }
        let maxPixels = maxPixels
        return try await threadPool.runIfActive {
            guard let data = FileManager.default.contents(atPath: source.path) else {
                throw APIError(.internalServerError, code: "file_missing", message: "the file is missing from the store")
            }
            let made: FittedImage
            do {
                made = try ImageCodec.thumbnail(Array(data), maxSide: size, maxPixels: maxPixels)
            } catch let error as ImagingError {
                // Every stored file was checked at upload (or made by the engine): this is the store's fault.
                throw APIError(.internalServerError, code: "thumbnail_failed", message: "no thumbnail could be made: \(error.message)")
            }
            let suffix = made.mediaType == "image/png" ? "png" : "jpg"
            try? Self.keep(made.bytes, at: folder.appendingPathComponent("\(file.sha256).\(suffix)"))
            Counter(label: "gateway_thumbnails_made_total", dimensions: [("size", String(size))]).increment()
            return Thumbnail(bytes: made.bytes, mimeType: made.mediaType)
        }
    }

    /// Where the thumbnails of the file with digest `sha256` at `size` are kept: `thumbnails/<size>/<ab>/`.
    private func thumbnailFolder(size: Int, sha256: String) -> URL {
        files.root.appendingPathComponent("thumbnails/\(size)/\(sha256.prefix(2))")
    }

    /// Erases the thumbnails of the stored file at `path` (`ab/cd/<sha256>.<ext>`), every size.
    func forget(path: String) {
        let sha256 = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        for size in Self.sizes {
            let folder = thumbnailFolder(size: size, sha256: sha256)
            for suffix in ["jpg", "png"] {
                try? FileManager.default.removeItem(at: folder.appendingPathComponent("\(sha256).\(suffix)"))
            }
        }
    }

    /// Writes atomically (a temporary file, then a rename): a reader sees all of it or nothing.
    private static func keep(_ bytes: [UInt8], at destination: URL) throws {
        let folder = destination.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(UUID().uuidString).part")
        do {
            try Data(bytes).write(to: temporary)
        } catch {
            // A disk that filled up part-way leaves no half-written file behind.
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        if rename(temporary.path, destination.path) != 0 {
            try? FileManager.default.removeItem(at: temporary)
        }
    }

    /// `?size=` of a thumbnail request: one of ``sizes``, ``defaultSize`` when absent.
    static func size(of request: Request) throws -> Int {
        guard let raw = request.uri.queryParameters["size"].map(String.init), !raw.isEmpty else { return defaultSize }
        guard let size = Int(raw), sizes.contains(size) else {
            throw APIError.badRequest(
                "size must be one of \(sizes.map(String.init).joined(separator: ", ")); got \"\(raw.prefix(16))\"", code: "invalid_field")
        }
        return size
    }
}
