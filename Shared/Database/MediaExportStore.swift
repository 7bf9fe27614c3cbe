import Foundation
import Logging
import PostgresNIO
import Timing

/// What a ZIP export holds: the media (in the order asked for), the format and the size. The
/// archive itself is made when its link is followed, from the media's files as they are then.
public struct MediaExport: Sendable, Equatable {
    public var id: UUID
    public var mediaIds: [UUID]
    /// `original`, `jpeg`, `png` or `webp`.
    public var format: String
    /// The longest side in pixels (never enlarged); nil keeps each image's size.
    public var maxSide: Int?
    public var createdAt: Date

    public init(id: UUID, mediaIds: [UUID], format: String, maxSide: Int?, createdAt: Date = Date()) {
        self.id = id
        self.mediaIds = mediaIds
        self.format = format
        self.maxSide = maxSide
        self.createdAt = createdAt
    }
}

/// The `media_exports` rows. An export lives a day (its link far less): older ones are removed
/// whenever one is made.
public struct MediaExportStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    public static let lifetime: Duration = .seconds(86_400)

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.media-exports")) {
        self.client = client
        self.logger = logger
    }

    /// Records `export` (and forgets the exports older than ``lifetime``).
    public func create(_ export: MediaExport) async throws {
        try await client.rows(
            "DELETE FROM media_exports WHERE created_at < now() - make_interval(secs => \(Self.lifetime.timeInterval))",
            logger: logger)
        try await client.rows("""
            INSERT INTO media_exports (id, media_ids, format, max_side)
            VALUES (\(export.id), \(export.mediaIds), \(export.format), \(export.maxSide))
            """, logger: logger)
    }

    /// The export, nil when unknown or older than ``lifetime``.
    public func export(_ id: UUID) async throws -> MediaExport? {
        let rows = try await client.rows("""
            SELECT id, media_ids, format, max_side, created_at FROM media_exports
            WHERE id = \(id) AND created_at >= now() - make_interval(secs => \(Self.lifetime.timeInterval))
            """, logger: logger)
        for (id, ids, format, maxSide, created) in try rows.decode((UUID, [UUID], String, Int?, Date).self) {
            return MediaExport(id: id, mediaIds: ids, format: format, maxSide: maxSide, createdAt: created)
        }
        return nil
    }
}
