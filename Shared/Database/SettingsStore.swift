import Foundation
import Logging
import PostgresNIO

/// Reads (and plainly writes) the `settings` table. Validation and encryption belong to the
/// settings-service, which owns the settings; this type only moves rows.
public struct SettingsStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.settings-store")) {
        self.client = client
        self.logger = logger
    }

    /// Every setting, ordered by category then key.
    public func all() async throws -> [Setting] {
        try await settings(client.rows("""
            SELECT key, value, category, description, encrypted, updated_at
            FROM settings ORDER BY category, key
            """, logger: logger))
    }

    /// The settings with these keys (unknown keys are simply absent from the answer).
    public func settings(for keys: [String]) async throws -> [Setting] {
        try await settings(client.rows("""
            SELECT key, value, category, description, encrypted, updated_at
            FROM settings WHERE key = ANY(\(keys)) ORDER BY category, key
            """, logger: logger))
    }

    /// The stored value of one setting, nil when there is no such key.
    public func value(for key: String) async throws -> String? {
        let rows = try await client.rows("SELECT value FROM settings WHERE key = \(key)", logger: logger)
        for value in try rows.decode(String.self) { return value }
        return nil
    }

    /// Stores new values for existing keys in one transaction and returns the updated rows.
    /// Keys that do not exist are not created: the answer lacks them, and nothing is written when
    /// any is missing (``SettingsStoreError``).
    @discardableResult
    public func update(_ values: [String: String]) async throws -> [Setting] {
        guard !values.isEmpty else { return [] }
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            var updated: [Setting] = []
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                let rows = try await connection.query("""
                    UPDATE settings SET value = \(value), updated_at = now() WHERE key = \(key)
                    RETURNING key, value, category, description, encrypted, updated_at
                    """, logger: logger)
                let found = try await Self.settings(rows.collect())
                guard let setting = found.first else { throw SettingsStoreError(message: "unknown setting '\(key)'") }
                updated.append(setting)
            }
            return updated
        }
    }

    private func settings(_ rows: [PostgresRow]) throws -> [Setting] {
        try Self.settings(rows)
    }

    private static func settings(_ rows: [PostgresRow]) throws -> [Setting] {
        var result: [Setting] = []
        for (key, value, category, description, encrypted, updatedAt)
            in try rows.decode((String, String, String, String, Bool, Date).self) {
            result.append(Setting(key: key, value: value, category: category, description: description,
                                  encrypted: encrypted, updatedAt: updatedAt))
        }
        return result
    }
}

/// A settings write that cannot be carried out.
public struct SettingsStoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
