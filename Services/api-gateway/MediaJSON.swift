import Database
import Foundation
import Hummingbird
import Shared
import Timing

/// A media item as the API shows it (the seed's field names: `url`, `thumbnailUrl`, `mimeType`, `originalName`).
struct MediaJSON: Codable, Sendable, Equatable {
    var id: String
    var collection: String
    var originalName: String?
    var mimeType: String
    var url: String
    var thumbnailUrl: String
    var width: Int
    var height: Int
    var size: Int
    var sha256: String
    var currentVersionId: String
    var createdAt: String
    var updatedAt: String
    /// `unprocessed`, `processed`, `inProgress`, `awaitingReview` or `failed` (``MediaState``).
    var state: String
    /// When it went to the trash; absent for a media in the library.
    var deletedAt: String?
    /// When a media in the trash will be deleted for good by itself (`TRASH_KEEP_DAYS` after
    /// `deletedAt`); absent in the library and when the trash is kept until emptied by hand.
    var erasesAt: String?

    /// `trashKeep`: the trash's keeping time, for `erasesAt`.
    init(_ media: MediaRecord, trashKeep: Duration? = nil) {
        id = media.id.lowercasedString
        collection = media.collection
        originalName = media.originalFilename
        mimeType = media.file.mimeType
        url = "/api/media/\(id)/file"
        // 256 px on the long side by default; `?size=128|256|512` for others.
        thumbnailUrl = "/api/media/\(id)/thumbnail"
        width = media.file.width
        height = media.file.height
        size = media.file.bytes
        sha256 = media.file.sha256
        currentVersionId = media.currentVersionId.lowercasedString
        createdAt = MessageCoding.formatTimestamp(media.createdAt)
        updatedAt = MessageCoding.formatTimestamp(media.updatedAt)
        state = media.state.rawValue
        deletedAt = media.deletedAt.map(MessageCoding.formatTimestamp)
        if let deleted = media.deletedAt, let keep = trashKeep {
            erasesAt = MessageCoding.formatTimestamp(deleted.addingTimeInterval(keep.timeInterval))
        }
    }
}

struct VersionJSON: Codable, Sendable, Equatable {
    var id: String
    var number: Int
    var source: String
    var jobId: String?
    var revertedFromVersionId: String?
    var mimeType: String
    var width: Int
    var height: Int
    var size: Int
    var sha256: String
    var createdAt: String

    init(_ version: MediaVersionRecord) {
        id = version.id.lowercasedString
        number = version.number
        source = version.source
        jobId = version.jobId?.lowercasedString
        revertedFromVersionId = version.revertedFromVersionId?.lowercasedString
        mimeType = version.file.mimeType
        width = version.file.width
        height = version.file.height
        size = version.file.bytes
        sha256 = version.file.sha256
        createdAt = MessageCoding.formatTimestamp(version.createdAt)
    }
}

struct MediaResponse: ResponseCodable, Equatable {
    var success = true
    var media: MediaJSON
}

struct MediaListResponse: ResponseCodable, Equatable {
    var success = true
    var items: [MediaJSON]
    var page: Int
    var pageSize: Int
    var total: Int
}

struct VersionListResponse: ResponseCodable, Equatable {
    var success = true
    var mediaId: String
    var currentVersionId: String
    var versions: [VersionJSON]
}

struct SuccessResponse: ResponseCodable, Equatable {
    var success: Bool
}

/// The answer to emptying the trash: how many media were deleted for good.
struct PurgeResponse: ResponseCodable, Equatable {
    var success: Bool
    var deleted: Int
}

extension UUID {
    /// The lower-case form the HTTP API uses.
    var lowercasedString: String { uuidString.lowercased() }
}
