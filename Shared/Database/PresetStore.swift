import Foundation
import Logging
import PostgresNIO

/// A saved set of generation options, by name.
public struct OptionPreset: Sendable, Equatable {
    public var id: UUID
    public var name: String
    /// The options as the API's JSON (`GenerationOptions`).
    public var optionsJSON: String
    public var createdAt: Date
    public var updatedAt: Date
}

/// What saving a preset did.
public enum PresetSaveOutcome: Sendable, Equatable {
    case saved(OptionPreset)
    /// Another preset has this name (names are compared without case).
    case nameTaken
    /// The id is taken by a preset of another name or options (an idempotency key used twice).
    case idConflict
    case notFound
}

/// The `option_presets` table: named generation options (docs/api.md).
public struct PresetStore: Sendable {
    /// At most this many presets: a list to choose from, not a database.
    public static let maxPresets = 50

    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.presets")) {
        self.client = client
        self.logger = logger
    }

    /// Every preset, by name.
    public func all() async throws -> [OptionPreset] {
        try await records(client.rows("\(unescaped: Self.columns) ORDER BY lower(name), id", logger: logger))
    }

    public func preset(_ id: UUID) async throws -> OptionPreset? {
        try await records(client.rows("\(unescaped: Self.columns) WHERE id = \(id)", logger: logger)).first
    }

    /// Creates preset `id` (the same id again with the same name and options: the one there is).
    /// nil when there are ``maxPresets`` already.
    public func create(id: UUID, name: String, optionsJSON: String) async throws -> PresetSaveOutcome? {
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            // One creator at a time: the count and the name are checked against what is committed.
            try await connection.query("LOCK TABLE option_presets IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            // The same request again (same id): the preset it made, if it is still what was asked for.
            var same: Bool?
            for try await equal in try await connection.query(
                "SELECT name = \(name) AND options = \(optionsJSON)::jsonb FROM option_presets WHERE id = \(id)", logger: logger
            ).decode(Bool.self) {
                same = equal
            }
            if let same {
                guard same else { return .idConflict }
                return try await Self.fetch(id, on: connection, logger: logger).map(PresetSaveOutcome.saved) ?? .notFound
            }
            var taken = false
            for try await _ in try await connection.query(
                "SELECT 1 FROM option_presets WHERE lower(name) = lower(\(name))", logger: logger).decode(Int.self) {
                taken = true
            }
            if taken { return .nameTaken }
            var count = 0
            for try await n in try await connection.query("SELECT count(*)::int FROM option_presets", logger: logger).decode(Int.self) { count = n }
            guard count < Self.maxPresets else { return nil }
            try await connection.query("""
                INSERT INTO option_presets (id, name, options) VALUES (\(id), \(name), \(optionsJSON)::jsonb)
                """, logger: logger)
            return try await Self.fetch(id, on: connection, logger: logger).map(PresetSaveOutcome.saved) ?? .notFound
        }
    }

    /// Renames preset `id` and/or replaces its options.
    public func update(_ id: UUID, name: String?, optionsJSON: String?) async throws -> PresetSaveOutcome {
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            try await connection.query("LOCK TABLE option_presets IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            if let name {
                var taken = false
                for try await _ in try await connection.query(
                    "SELECT 1 FROM option_presets WHERE lower(name) = lower(\(name)) AND id <> \(id)", logger: logger).decode(Int.self) {
                    taken = true
                }
                if taken { return .nameTaken }
            }
            let rows = try await connection.query("""
                UPDATE option_presets SET name = coalesce(\(name), name), options = coalesce(\(optionsJSON)::jsonb, options), updated_at = now()
                WHERE id = \(id) RETURNING id
                """, logger: logger)
            var found = false
            for try await _ in rows.decode(UUID.self) { found = true }
            guard found else { return .notFound }
            return try await Self.fetch(id, on: connection, logger: logger).map(PresetSaveOutcome.saved) ?? .notFound
        }
    }

    /// False when there was no such preset.
    public func delete(_ id: UUID) async throws -> Bool {
        for _ in try await client.rows("DELETE FROM option_presets WHERE id = \(id) RETURNING id", logger: logger).decode(UUID.self) {
            return true
        }
        return false
    }

    // MARK: Plumbing

    private static let columns = "SELECT id, name, options::text, created_at, updated_at FROM option_presets"

    private static func fetch(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> OptionPreset? {
        var result: OptionPreset?
        for try await (id, name, options, created, updated) in try await connection.query(
            "\(unescaped: columns) WHERE id = \(id)", logger: logger).decode((UUID, String, String, Date, Date).self) {
            result = OptionPreset(id: id, name: name, optionsJSON: options, createdAt: created, updatedAt: updated)
        }
        return result
    }

    private func records(_ rows: [PostgresRow]) throws -> [OptionPreset] {
        var result: [OptionPreset] = []
        for (id, name, options, created, updated) in try rows.decode((UUID, String, String, Date, Date).self) {
            result.append(OptionPreset(id: id, name: name, optionsJSON: options, createdAt: created, updatedAt: updated))
        }
        return result
    }
}
