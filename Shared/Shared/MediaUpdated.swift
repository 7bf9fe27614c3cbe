import Foundation

/// Event: media `mediaId` now shows version `versionId` (written by the result-ingestor after
/// storing a generation's image). Everything that points at the media id shows the new picture;
/// `previousVersionId` stays in the history and can be restored.
public struct MediaUpdated: CycloramaMessage {
    public static let messageType = MessageType.mediaUpdated
    public private(set) var type = MessageType.mediaUpdated
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    /// The job that produced the version.
    public var jobId: UUID
    public var mediaId: UUID
    public var versionId: UUID
    /// The version the media showed before; absent when it had none.
    public var previousVersionId: UUID?
    /// Lower-case hex SHA-256 of the stored file.
    public var sha256: String
    public var width: Int
    public var height: Int
    /// e.g. `image/png`.
    public var mime: String

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, versionId: UUID, previousVersionId: UUID? = nil,
        sha256: String, width: Int, height: Int, mime: String
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.versionId = versionId
        self.previousVersionId = previousVersionId
        self.sha256 = sha256
        self.width = width
        self.height = height
        self.mime = mime
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        let hex = sha256.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        if sha256.utf8.count != 64 || !hex {
            throw ValidationError(field: "sha256", reason: "must be 64 lower-case hex digits; got \(Check.quoted(sha256))")
        }
        try Check.atLeast(width, 1, "width")
        try Check.atLeast(height, 1, "height")
        if !mime.hasPrefix("image/") || mime.count > 100 {
            throw ValidationError(field: "mime", reason: "must be an image type like image/png; got \(Check.quoted(mime))")
        }
    }
}
