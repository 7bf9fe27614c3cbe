import Database
import Foundation
import Hummingbird
import ServiceCore
import ServiceSupport
import Shared

/// `/api/media`: upload, list, read, download, version history, revert, delete, delete for good.
struct MediaController: Sendable {
    let store: MediaStore
    let files: MediaFiles
    let thumbnails: Thumbnails
    /// Erases the files of what is deleted for good; nil leaves them to the periodic sweep.
    var purgedFiles: PurgedFileSweeper?
    /// Checks signed download links; nil disables them.
    var signer: MediaURLSigner?
    /// Largest accepted image (15 MB): more is 413.
    var maxImageBytes = 15 << 20
    /// Most pixels an accepted image may have (`UPLOAD_MAX_PIXELS`), judged from its header before
    /// anything decodes it: more is 413 `too_many_pixels`.
    var maxImagePixels = MediaController.defaultMaxImagePixels
    /// The trash's keeping time (`TRASH_KEEP_DAYS`), said in each trashed item's `erasesAt`.
    var trashKeep: Duration?
    static let defaultMaxImagePixels = 50_000_000

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.post("/media", use: upload)
        group.get("/media", use: list)
        group.get("/media/:id", use: show)
        group.get("/media/:id/file", use: file)
        group.get("/media/:id/versions", use: versions)
        group.get("/media/:id/versions/:versionId/file", use: versionFile)
        group.get("/media/:id/thumbnail", use: thumbnail)
        group.get("/media/:id/versions/:versionId/thumbnail", use: versionThumbnail)
        group.post("/media/:id/revert/:versionId", use: revert)
        group.patch("/media/:id", use: rename)
        group.delete("/media/trash", use: emptyTrash)
        group.delete("/media/:id", use: delete)
        group.post("/media/:id/restore", use: restore)
    }

    @Sendable func upload(_ request: Request, context: ServiceRequestContext) async throws -> EditedResponse<MediaResponse> {
        // Multipart adds a little framing around the file; anything far beyond the cap is refused unread.
        let envelope = maxImageBytes + 64 * 1024
        if let length = request.headers[.contentLength].flatMap(Int.init), length > envelope {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "uploads are limited to 15 MB")
        }
        let body = Array(buffer: try await request.body.collect(upTo: envelope))
        var bytes = body
        var fileName: String?
        // Checked even when a multipart field wins over it: a malformed request is refused whole.
        var collection = try request.uri.queryParameters["collection"].map { try Self.givenCollection(String($0)) }
        if let boundary = request.headers[.contentType].flatMap(MultipartForm.boundary(fromContentType:)) {
            guard let form = MultipartForm(body: body, boundary: boundary), let file = form.fileBytes else {
                throw APIError.badRequest("multipart upload without a file part (a part with a filename)", code: "invalid_upload")
            }
            bytes = file
            fileName = form.fileName
            collection = try form.fields["collection"].map(Self.givenCollection) ?? collection
        } else {
            fileName = request.headers[.contentDisposition].flatMap { HeaderParameters($0)["filename"] }
        }
        guard !bytes.isEmpty else { throw APIError.badRequest("the upload is empty", code: "invalid_upload") }
        guard bytes.count <= maxImageBytes else {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "uploads are limited to 15 MB; this one is \(bytes.count) bytes")
        }
        let image = try checked(bytes)
        let stored = try files.store(bytes, as: image)
        let media = try await store.create(
            collection: try Self.collection(collection), originalFilename: fileName.map(Self.cleanFileName), file: stored)
        return EditedResponse(status: .created, response: MediaResponse(media: MediaJSON(media)))
    }

    /// The upload as an image the pipeline may decode: a supported format, whole, and within the
    /// pixel cap (a 10 KB PNG may claim 20000 x 20000; its header is all that is read).
    private func checked(_ bytes: [UInt8]) throws -> SniffedImage {
        switch ImageSniffer.inspect(bytes) {
        case .notAnImage:
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: "the upload is not a PNG, JPEG, WebP or GIF image (judged by its content, not its name)")
        case .damaged(let format, let reason):
            throw APIError(.unprocessableContent, code: "corrupt_image", message: "the upload is a damaged \(format): \(reason)")
        case .image(let image):
            guard image.pixels <= maxImagePixels else {
                throw APIError(
                    .contentTooLarge, code: "too_many_pixels",
                    message: "the image is \(image.width)x\(image.height) (\(Self.megapixels(image.pixels)) MP); uploads are limited to \(Self.megapixels(maxImagePixels)) MP (UPLOAD_MAX_PIXELS)")
            }
            return image
        }
    }

    private static func megapixels(_ pixels: Int) -> String {
        let tenths = (pixels + 50_000) / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> MediaListResponse {
        let query = request.uri.queryParameters
        let page = try Self.integer(query["page"].map(String.init), name: "page", default: 1, range: 1...100_000)
        let pageSize = try Self.integer(query["pageSize"].map(String.init), name: "pageSize", default: 50, range: 1...200)
        let collection = try query["collection"].map(String.init).flatMap { $0.isEmpty ? nil : try Self.collection($0) }
        let search = try query["q"].map(String.init).flatMap(Self.search)
        let state = try query["state"].map(String.init).flatMap { raw -> MediaState? in
            guard !raw.isEmpty else { return nil }
            guard let state = MediaState(rawValue: raw) else {
                throw APIError.badRequest(
                    "state must be one of \(MediaState.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(raw.prefix(32))\"",
                    code: "invalid_field")
            }
            return state
        }
        let sort = try query["sort"].map(String.init).map { raw -> MediaSort in
            guard let sort = MediaSort(rawValue: raw.isEmpty ? MediaSort.newest.rawValue : raw) else {
                throw APIError.badRequest(
                    "sort must be one of \(MediaSort.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(raw.prefix(32))\"",
                    code: "invalid_field")
            }
            return sort
        } ?? .newest
        let trash = try Self.flag(query["trash"].map(String.init), name: "trash")
        let (items, total) = try await store.list(MediaQuery(
            collection: collection, search: search, state: state, sort: sort, trash: trash, page: page, pageSize: pageSize))
        return MediaListResponse(items: items.map { MediaJSON($0, trashKeep: trashKeep) }, page: page, pageSize: pageSize, total: total)
    }

    /// `POST /api/media/:id/restore`: brings a media back from the trash as it was (its versions,
    /// name and collection); a media in the library is answered as it is, so an undo sent twice is
    /// harmless.
    @Sendable func restore(_ request: Request, context: ServiceRequestContext) async throws -> MediaResponse {
        let id = try Self.uuid(context, "id")
        guard let media = try await store.restore(id) else { throw APIError.notFound("no media \(id.lowercasedString)") }
        return MediaResponse(media: MediaJSON(media))
    }

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> MediaResponse {
        MediaResponse(media: MediaJSON(try await existing(context)))
    }

    @Sendable func file(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try await serve(try await existing(context), request)
    }

    /// `GET /media/:id/file?expires=&signature=`: the token-free download a generation backend uses
    /// (``MediaURLSigner``); outside `/api`, so no bearer token is asked for.
    @Sendable func signedFile(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = try Self.uuid(context, "id")
        let query = request.uri.queryParameters
        let version = query["v"].map(String.init)
        guard let signer,
              signer.isValid(
                mediaId: id, version: version, expires: query["expires"].map(String.init) ?? "",
                signature: query["signature"].map(String.init) ?? "")
        else {
            throw APIError(.forbidden, code: "invalid_signature", message: "the link is invalid or has expired")
        }
        if let version {
            // A link to one exact file: served from disk, PostgreSQL is not needed (nor asked).
            guard let path = MediaURLSigner.path(ofVersion: version),
                  let url = files.url(forPath: path),
                  let data = FileManager.default.contents(atPath: url.path), let sniffed = ImageSniffer.sniff(Array(data))
            else { throw APIError.notFound("media \(id.lowercasedString) has no file \(version.prefix(80))") }
            let etag = "\"\(version.prefix(64))\""
            if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
            return Response(
                status: .ok, headers: [.contentType: sniffed.mimeType, .eTag: etag, .cacheControl: "private, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        guard let media = try await store.media(id) else { throw APIError.notFound("no media \(id.lowercasedString)") }
        return try await serve(media, request)
    }

    private func serve(_ media: MediaRecord, _ request: Request) async throws -> Response {
        try serve(media.file, request, of: "media \(media.id.lowercasedString)")
    }

    private func serve(_ file: StoredFile, _ request: Request, of what: String) throws -> Response {
        guard let url = files.url(for: file), let data = FileManager.default.contents(atPath: url.path) else {
            throw APIError(.internalServerError, code: "file_missing", message: "the file of \(what) is missing from the store")
        }
        let etag = "\"\(file.sha256)\""
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
        return Response(
            status: .ok,
            headers: [.contentType: file.mimeType, .eTag: etag, .cacheControl: "private, no-cache"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    @Sendable func versions(_ request: Request, context: ServiceRequestContext) async throws -> VersionListResponse {
        let media = try await existing(context)
        return VersionListResponse(
            mediaId: media.id.lowercasedString, currentVersionId: media.currentVersionId.lowercasedString,
            versions: try await store.versions(of: media.id).map(VersionJSON.init))
    }

    /// `GET /api/media/:id/versions/:versionId/file`: an earlier (or the current) version's bytes,
    /// for history thumbnails and before/after comparisons.
    @Sendable func versionFile(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let media = try await existing(context)
        let versionId = try Self.uuid(context, "versionId")
        guard let version = try await store.versions(of: media.id).first(where: { $0.id == versionId }) else {
            throw APIError.notFound("media \(media.id.lowercasedString) has no version \(versionId.lowercasedString)")
        }
        return try serve(version.file, request, of: "version \(versionId.lowercasedString)")
    }

    /// `GET /api/media/:id/thumbnail?size=`: the current version, small (``Thumbnails``), for the
    /// grid. Its ETag names the file and the size, so a revalidation is a 304 until the media changes.
    /// A media in the trash has one too (the trash view shows what it would restore).
    @Sendable func thumbnail(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let media = try await existing(context, includingTrash: true)
        return try await thumbnails.response(of: media.file, request, immutable: false)
    }

    /// `GET /api/media/:id/versions/:versionId/thumbnail?size=`: one version, small (the history).
    /// A version never changes: cached by the browser for a year.
    @Sendable func versionThumbnail(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let media = try await existing(context)
        let versionId = try Self.uuid(context, "versionId")
        guard let version = try await store.versions(of: media.id).first(where: { $0.id == versionId }) else {
            throw APIError.notFound("media \(media.id.lowercasedString) has no version \(versionId.lowercasedString)")
        }
        return try await thumbnails.response(of: version.file, request, immutable: true)
    }

    @Sendable func revert(_ request: Request, context: ServiceRequestContext) async throws -> MediaResponse {
        let media = try await existing(context)
        let versionId = try Self.uuid(context, "versionId")
        let expected = try request.uri.queryParameters["ifCurrent"].map { raw in
            guard let id = UUID(uuidString: String(raw)) else {
                throw APIError.badRequest("ifCurrent must be a version id (a UUID); got \"\(raw.prefix(64))\"", code: "invalid_field")
            }
            return id
        }
        let reverted: MediaRecord?
        do {
            reverted = try await store.revert(media.id, to: versionId, ifCurrent: expected)
        } catch let changed as ImageChanged {
            throw APIError(.conflict, code: "image_changed", message: "media \(media.id.lowercasedString) shows version "
                + "\(changed.current.lowercasedString) now, not \(expected?.lowercasedString ?? "-") (ifCurrent): nothing was reverted")
        }
        guard let reverted else {
            throw APIError.notFound("media \(media.id.lowercasedString) has no version \(versionId.lowercasedString)")
        }
        return MediaResponse(media: MediaJSON(reverted))
    }

    /// `PATCH /api/media/:id` `{"originalName": "..."}`: the name the library shows.
    @Sendable func rename(_ request: Request, context: ServiceRequestContext) async throws -> MediaResponse {
        let id = try Self.uuid(context, "id")
        let body = Array(buffer: try await request.body.collect(upTo: 16 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {\"originalName\": \"...\"}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "originalName" }) {
            throw APIError.badRequest("\(unknown) is not a field of a media item that can be changed; only originalName", code: "invalid_field")
        }
        guard case .string(let raw)? = object["originalName"] else {
            throw APIError.badRequest("originalName must be a string", code: "invalid_field")
        }
        guard let name = Self.displayName(raw) else {
            throw APIError.badRequest(
                "originalName must be 1 to 255 characters without / or \\ or control characters; got \"\(raw.prefix(64))\"",
                code: "invalid_field")
        }
        guard let renamed = try await store.rename(id, to: name) else { throw APIError.notFound("no media \(id.lowercasedString)") }
        return MediaResponse(media: MediaJSON(renamed))
    }

    /// `DELETE /api/media/:id`: moves the media to the trash; with `?permanently=true`, deletes a
    /// media in the trash for good (one in the library is 409 `not_in_trash`: two steps, never one).
    @Sendable func delete(_ request: Request, context: ServiceRequestContext) async throws -> SuccessResponse {
        let id = try Self.uuid(context, "id")
        if try Self.flag(request.uri.queryParameters["permanently"].map(String.init), name: "permanently") {
            guard try await purge([id]).count == 1 else {
                guard try await store.media(id) == nil else {
                    throw APIError(.conflict, code: "not_in_trash", message: "media \(id.lowercasedString) is in the library: move it to the trash first")
                }
                throw APIError.notFound("no media \(id.lowercasedString) in the trash")
            }
            return SuccessResponse(success: true)
        }
        guard try await store.delete(id) else { throw APIError.notFound("no media \(id.lowercasedString)") }
        return SuccessResponse(success: true)
    }

    /// `DELETE /api/media/trash[?deletedBefore=<ISO 8601>]`: deletes everything in the trash for good,
    /// or only what was moved there before that instant: what the person who confirmed saw, not what
    /// someone else trashed a moment later and may still undo.
    @Sendable func emptyTrash(_ request: Request, context: ServiceRequestContext) async throws -> PurgeResponse {
        var cutoff: Date?
        if let raw = request.uri.queryParameters["deletedBefore"].map(String.init) {
            guard let date = MessageCoding.parseTimestamp(raw) else {
                throw APIError.badRequest("deletedBefore must be an ISO 8601 time (2026-12-07T21:40:00.000Z); got \(raw.prefix(80))", code: "invalid_field")
            }
            cutoff = date
        }
        return PurgeResponse(success: true, deleted: try await purge(nil, deletedBefore: cutoff).count)
    }

    /// Deletes for good (``MediaStore/purge(_:)``) and answers; the files are erased by a sweep
    /// started now, beside the answer (a trash of thousands must not hold the request), and by the
    /// periodic one for what it leaves. A sweep that fails is logged; the deletion itself is done.
    private func purge(_ ids: [UUID]?, deletedBefore cutoff: Date? = nil) async throws -> [UUID] {
        let purged = try await store.purge(ids, deletedBefore: cutoff)
        if !purged.isEmpty, let purgedFiles {
            Task {
                do { try await purgedFiles.sweep() } catch {
                    purgedFiles.logger.warning("erasing files after a purge failed; the periodic sweep will", metadata: ["error": "\(error)"])
                }
            }
        }
        return purged
    }

    // MARK: Input

    private func existing(_ context: ServiceRequestContext, includingTrash: Bool = false) async throws -> MediaRecord {
        let id = try Self.uuid(context, "id")
        guard let media = try await store.media(id, includingTrash: includingTrash) else { throw APIError.notFound("no media \(id.lowercasedString)") }
        return media
    }

    static func uuid(_ context: ServiceRequestContext, _ name: String) throws -> UUID {
        let raw = context.parameters.get(name) ?? ""
        guard let id = UUID(uuidString: raw) else {
            throw APIError.badRequest("\(name) must be a UUID; got \"\(raw.prefix(64))\"", code: "invalid_field")
        }
        return id
    }

    /// Collections are upper-case names such as PRODUCTS (default) or BANNERS.
    static func collection(_ raw: String?) throws -> String {
        guard let raw, !raw.isEmpty else { return "PRODUCTS" }
        let name = raw.uppercased()
        guard name.count <= 32, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw APIError.badRequest("collection must be 1-32 letters, digits or underscores; got \"\(raw.prefix(64))\"", code: "invalid_field")
        }
        return name
    }

    /// A collection the upload names (query or form field): present means 1-32 characters.
    static func givenCollection(_ raw: String) throws -> String {
        guard !raw.isEmpty else {
            throw APIError.badRequest("collection, when given, must be 1-32 letters, digits or underscores; got an empty one", code: "invalid_field")
        }
        return try collection(raw)
    }

    static func integer(_ raw: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw, !raw.isEmpty else { return value }
        guard let number = Int(raw), range.contains(number) else {
            throw APIError.badRequest("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound); got \"\(raw.prefix(32))\"", code: "invalid_field")
        }
        return number
    }

    /// A name search (`q`): at most 200 characters, no control characters; empty means none.
    static func search(_ raw: String) throws -> String? {
        let words = raw.trimmingCharacters(in: .whitespaces)
        guard words.unicodeScalars.count <= 200, !words.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.badRequest("q must be at most 200 characters without control characters", code: "invalid_field")
        }
        return words.isEmpty ? nil : words
    }

    /// A yes/no query parameter: `true` or `false` (absent or empty: false).
    static func flag(_ raw: String?, name: String) throws -> Bool {
        switch raw {
        case nil, "", "false": return false
        case "true": return true
        case let other?:
            throw APIError.badRequest("\(name) must be true or false; got \"\(other.prefix(32))\"", code: "invalid_field")
        }
    }

    /// A name given to a media item, trimmed, or nil when it is not acceptable — the rule the
    /// OpenAPI document states for `originalName`: at most 255 code points, no slash or backslash,
    /// no control character, something besides white space.
    static func displayName(_ raw: String) -> String? {
        let forbidden = raw.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.properties.generalCategory == .control }
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        return forbidden || name.isEmpty || raw.unicodeScalars.count > 255 ? nil : name
    }

    /// Keeps only the last path component and printable characters of a client's file name.
    static func cleanFileName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        return String(last.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }.prefix(255).map(Character.init))
    }
}
