import Database
import Foundation
import Hummingbird
import Imaging
import Logging
import NIOPosix
import ServiceCore
import ServiceSupport
import Shared
import Synchronization

/// ZIP downloads of a selection: `POST /api/exports` records what to put in it and answers with a
/// signed link; `GET /exports/:id/archive` (token-free, like the signed media links) streams the
/// archive, one image at a time, so the browser saves it straight to disk whatever its size.
///
/// Each image is its current version when the link is followed, as it is stored (`original`
/// without a size) or re-encoded as JPEG, PNG or WebP with its long side at most `maxSide`
/// (never enlarged; a transparent image saved as JPEG goes onto white). Names are the media's,
/// with the extension of what the entry holds, made unique (`shoe.jpg`, `shoe (2).jpg`).
struct ExportController: Sendable {
    let media: MediaStore
    let exports: MediaExportStore
    let files: MediaFiles
    let signer: MediaURLSigner
    /// The largest image re-encoded (the thumbnails' bound: upscaled results are large).
    var maxPixels = Thumbnails.maxPixels
    var threadPool: NIOThreadPool = .singleton
    let logger: Logger

    static let maxItems = 500
    /// Archives streamed at once by one gateway (each re-encodes its images on the thread pool).
    static let streamsAtOnce = 2
    let streams = Slots(count: ExportController.streamsAtOnce)

    /// A counted set of places; `take()` answers nil when none is free.
    final class Slots: Sendable {
        private let free: Mutex<Int>
        init(count: Int) { free = Mutex(count) }
        func take() -> Slot? {
            free.withLock { count in
                guard count > 0 else { return nil }
                count -= 1
                return Slot(owner: self)
            }
        }
        fileprivate func give() { free.withLock { $0 += 1 } }
    }

    /// One taken place; `release()` gives it back (once; at the latest when it is freed).
    final class Slot: Sendable {
        private let owner: Slots
        private let released = Mutex(false)
        fileprivate init(owner: Slots) { self.owner = owner }
        /// An answer dropped before its body was written (the client went away) gives it back too.
        deinit { release() }
        func release() {
            let first = released.withLock { done in
                defer { done = true }
                return !done
            }
            if first { owner.give() }
        }
    }
    /// How long an export's link works: long enough to start a download, short enough that a
    /// forwarded link soon stops working.
    static let linkLifetime: TimeInterval = 3600
    static let formats = ["original", "jpeg", "png", "webp"]
    static let sides = 16...10_000

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.post("/exports", use: create)
    }

    func addPublicRoutes(to router: Router<ServiceRequestContext>) {
        router.get("/exports/:id/archive", use: download)
    }

    // MARK: Create

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> EditedResponse<ExportResponse> {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest(#"the body must be a JSON object {"mediaIds": [...], "format": "...", "maxSide": n}"#, code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { !["mediaIds", "format", "maxSide"].contains($0) }) {
            throw APIError.badRequest("\(unknown) is not a field of an export; it takes mediaIds, format and maxSide", code: "invalid_field")
        }
        guard case .array(let raw)? = object["mediaIds"], (1...Self.maxItems).contains(raw.count) else {
            throw APIError.badRequest("mediaIds must be an array of 1 to \(Self.maxItems) media ids", code: "invalid_field")
        }
        var ids: [UUID] = []
        for item in raw {
            guard case .string(let text) = item, let id = UUID(uuidString: text) else {
                throw APIError.badRequest("mediaIds must hold media ids (UUIDs); got \(item.encodedText.prefix(64))", code: "invalid_field")
            }
            if !ids.contains(id) { ids.append(id) }
        }
        var format = "original"
        switch object["format"] {
        case nil, .null?: break
        case .string(let given)? where Self.formats.contains(given): format = given
        case let other?:
            throw APIError.badRequest(
                "format must be one of \(Self.formats.joined(separator: ", ")); got \(other.encodedText.prefix(32))", code: "invalid_field")
        }
        var maxSide: Int?
        switch object["maxSide"] {
        case nil, .null?: break
        case .int(let side)? where Self.sides.contains(side): maxSide = side
        case let other?:
            throw APIError.badRequest(
                "maxSide must be an integer in \(Self.sides.lowerBound)...\(Self.sides.upperBound) (pixels) or null; got \(other.encodedText.prefix(32))",
                code: "invalid_field")
        }
        let found = Set(try await media.media(ids: ids).map(\.id))
        let missing = ids.filter { !found.contains($0) }
        guard missing.isEmpty else {
            throw APIError.notFound(
                "not in the library: \(missing.prefix(5).map(\.lowercasedString).joined(separator: ", "))\(missing.count > 5 ? " and \(missing.count - 5) more" : "")")
        }
        let export = MediaExport(id: UUID(), mediaIds: ids, format: format, maxSide: maxSide)
        try await exports.create(export)
        let expires = Date().addingTimeInterval(Self.linkLifetime)
        return EditedResponse(status: .created, response: ExportResponse(export: ExportJSON(
            id: export.id.lowercasedString, items: ids.count, format: format, maxSide: maxSide,
            fileName: Self.fileName(export), url: signer.signedExportPath(exportId: export.id, expires: expires),
            expiresAt: MessageCoding.formatTimestamp(expires))))
    }

    static func fileName(_ export: MediaExport) -> String {
        let day = MessageCoding.formatTimestamp(export.createdAt).prefix(10)
        return "cyclorama-\(day)-\(export.mediaIds.count)-image\(export.mediaIds.count == 1 ? "" : "s").zip"
    }

    // MARK: Download

    @Sendable func download(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = try MediaController.uuid(context, "id")
        let query = request.uri.queryParameters
        guard signer.isValidExport(
            exportId: id, expires: query["expires"].map(String.init) ?? "", signature: query["signature"].map(String.init) ?? "")
        else {
            throw APIError(.forbidden, code: "invalid_signature", message: "the link is invalid or has expired")
        }
        guard let export = try await exports.export(id) else {
            throw APIError.notFound("no export \(id.lowercasedString) (exports are kept a day)")
        }
        // Read before the answer starts, so a database error is an error answer and not a cut-off
        // archive. A file that cannot be read once the archive is under way (deleted for good and
        // erased by the sweeper meanwhile) is left out and named in NOTES.txt, as a media deleted
        // since the export was made is.
        let byId = Dictionary(try await media.media(ids: export.mediaIds).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let items = export.mediaIds.compactMap { byId[$0] }
        let missing = export.mediaIds.filter { byId[$0] == nil }
        // Each archive re-encodes up to 500 images: a few at a time per gateway, the rest told to come back.
        guard let slot = streams.take() else {
            throw APIError(.tooManyRequests, code: "too_many_exports",
                           message: "\(Self.streamsAtOnce) exports are being downloaded; try again in a few seconds",
                           retryAfterSeconds: 5)
        }
        let controller = self
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/zip",
                .contentDisposition: "attachment; filename=\"\(Self.fileName(export))\"",
                .cacheControl: "private, no-store",
            ],
            body: ResponseBody { writer in
                defer { slot.release() }
                var zip = ZipWriter()
                var names = EntryNames()
                var asStored: [String] = []
                var unreadable: [UUID] = []
                for item in items {
                    guard let (bytes, type, converted) = try await controller.entry(item, export) else {
                        // Deleted for good and erased meanwhile, or lost from the store (which a live media's must not be).
                        controller.logger.error("export entry left out: its file cannot be read from the store", metadata: [
                            "exportId": "\(export.id)", "mediaId": "\(item.id)",
                        ])
                        unreadable.append(item.id)
                        continue
                    }
                    let name = names.unique(Self.baseName(item), extension: Self.fileExtension(type))
                    if !converted { asStored.append(name) }
                    try await writer.write(ByteBuffer(bytes: try zip.entry(named: name, data: bytes, modified: item.updatedAt)))
                }
                // What is not as asked is said in the archive itself.
                var note = ""
                if !missing.isEmpty {
                    note += "Deleted after the export was made, so not in it:\n" + missing.map { "  \($0.lowercasedString)\n" }.joined()
                }
                if !unreadable.isEmpty {
                    note += "Their files could not be read from the store when the archive was made (deleted for good meanwhile, or lost), so not in it:\n"
                        + unreadable.map { "  \($0.lowercasedString)\n" }.joined()
                }
                if !asStored.isEmpty {
                    note += "Could not be converted (too large to decode), so as stored:\n" + asStored.map { "  \($0)\n" }.joined()
                }
                if !note.isEmpty {
                    try await writer.write(ByteBuffer(bytes: try zip.entry(
                        named: names.unique("NOTES", extension: "txt"), data: Array(note.utf8), modified: Date())))
                }
                try await writer.write(ByteBuffer(bytes: zip.finish()))
                try await writer.finish(nil)
                controller.logger.info("export downloaded", metadata: [
                    "exportId": "\(export.id)", "items": "\(items.count - unreadable.count)", "missing": "\(missing.count)",
                    "unreadable": "\(unreadable.count)", "bytes": "\(zip.offset)",
                ])
            })
    }

    /// The entry's bytes, their media type and whether they are as asked: the stored file, or
    /// re-encoded on the thread pool (false when that failed and the stored file stands in); nil
    /// when the file cannot be read.
    private func entry(_ item: MediaRecord, _ export: MediaExport) async throws -> ([UInt8], String, Bool)? {
        guard let url = files.url(for: item.file) else { return nil }
        let target = Self.target(of: item.file.mimeType, format: export.format, resized: export.maxSide != nil)
        let maxSide = export.maxSide ?? 10_000_000 // libvips' largest coordinate: the image's own size
        let (maxPixels, logger) = (maxPixels, logger)
        return try await threadPool.runIfActive {
            guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
            guard let target else { return (Array(data), item.file.mimeType, true) }
            do {
                let fitted = try ImageCodec.fit(Array(data), maxSide: maxSide, maxPixels: maxPixels, format: target)
                return (fitted.bytes, fitted.mediaType, true)
            } catch {
                // The archive has started: an image that cannot be re-encoded (over the pixel bound)
                // goes in as it is stored rather than cut the download off.
                logger.warning("export entry kept as stored", metadata: ["mediaId": "\(item.id)", "error": "\(error)"])
                return (Array(data), item.file.mimeType, false)
            }
        }
    }

    /// What a file becomes: nil to keep it as stored; `original` with a size keeps the type (a GIF
    /// becomes a PNG: its first frame).
    static func target(of mimeType: String, format: String, resized: Bool) -> OutputFormat? {
        switch format {
        case "jpeg": return .jpeg
        case "png": return .png
        case "webp": return .webp
        default:
            guard resized else { return nil }
            return mimeType == "image/jpeg" ? .jpeg : mimeType == "image/webp" ? .webp : .png
        }
    }

    static func fileExtension(_ mimeType: String) -> String {
        ["image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"][mimeType] ?? "bin"
    }

    /// The media's name without its extension, safe as a file name on every system; its id when unnamed.
    static func baseName(_ item: MediaRecord) -> String {
        safeName(item.originalFilename ?? "") ?? item.id.lowercasedString
    }

    /// `name` without its extension as a file name Linux, macOS and Windows all take: characters
    /// Windows refuses become `_`, at most 200 UTF-8 bytes (so the name with a suffix stays under
    /// 255), no leading or trailing dot or space, never a device name (`CON`, `NUL`, `COM1`…: a `_`
    /// is added). Nil when nothing is left.
    static func safeName(_ raw: String) -> String? {
        var name = raw
        if let dot = name.lastIndex(of: "."), dot != name.startIndex { name = String(name[..<dot]) }
        let forbidden = Set("<>:\"/\\|?*")
        name = String(name.unicodeScalars.map { scalar -> Character in
            forbidden.contains(Character(scalar)) || scalar.properties.generalCategory == .control ? "_" : Character(scalar)
        })
        var cut = ""
        for character in name {
            guard cut.utf8.count + character.utf8.count <= 200 else { break }
            cut.append(character)
        }
        name = cut.trimmingCharacters(in: CharacterSet(charactersIn: " ."))
        guard !name.isEmpty else { return nil }
        let device = name.split(separator: ".").first.map { $0.uppercased() } ?? ""
        let devices: Set<String> = ["CON", "PRN", "AUX", "NUL"]
        if devices.contains(device) || ((device.hasPrefix("COM") || device.hasPrefix("LPT")) && device.count == 4 && device.last!.isNumber) {
            name += "_"
        }
        return name
    }

    /// Entry names made unique without regard to case (`shoe.jpg`, `shoe (2).jpg`), as a case-blind
    /// file system would need them.
    struct EntryNames {
        private var taken: Set<String> = []

        mutating func unique(_ base: String, extension suffix: String) -> String {
            var candidate = "\(base).\(suffix)"
            var number = 2
            while taken.contains(candidate.lowercased()) {
                candidate = "\(base) (\(number)).\(suffix)"
                number += 1
            }
            taken.insert(candidate.lowercased())
            return candidate
        }
    }
}

struct ExportJSON: Codable, Sendable, Equatable {
    var id: String
    var items: Int
    var format: String
    var maxSide: Int?
    /// What the browser saves it as.
    var fileName: String
    /// The signed, token-free download (valid for ``ExportController/linkLifetime``).
    var url: String
    var expiresAt: String
}

struct ExportResponse: ResponseCodable, Equatable {
    var success = true
    var export: ExportJSON
}
