import Database
import Foundation
import Logging
import PostgresNIO

/// Direct access to a test system's database, for setting up what the API cannot (yet).
public enum SystemDatabase {
    public static func withClient<T: Sendable>(_ url: String, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        var logger = Logger(label: "test.system-database")
        logger.logLevel = .error
        let client = PostgresClient(configuration: try DatabaseConfiguration(url: url).postgres, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    public static func updateSettings(_ url: String, _ values: [String: String]) async throws {
        try await withClient(url) { try await SettingsStore(client: $0).update(values) }
    }
}
