import Database
import Foundation
import Logging
import PostgresNIO
import TestSupport

/// Every test gets its own database, `test_<uuid>`, created through the `postgres` maintenance
/// database and dropped afterwards, so tests run in parallel with everyone else's.
enum TestDatabase {
    static let logger = Logger(label: "test.database")

    static var baseConfiguration: DatabaseConfiguration {
        get throws { try DatabaseConfiguration(url: TestEnvironment.databaseURL) }
    }

    /// Creates a fresh, empty database, runs `body` with a running client for it, drops it.
    static func withFreshDatabase<T>(_ body: (PostgresClient, DatabaseConfiguration) async throws -> T) async throws -> T {
        let base = try baseConfiguration
        let name = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        // Identifiers cannot be bound as parameters; `name` is made only of [a-z0-9_] above.
        try await withClient(base.with(database: "postgres")) { admin in
            try await admin.query(PostgresQuery(unsafeSQL: #"CREATE DATABASE "\#(name)""#), logger: logger)
        }
        let configuration = base.with(database: name)
        do {
            let result = try await withClient(configuration) { try await body($0, configuration) }
            try await drop(name, base)
            return result
        } catch {
            try? await drop(name, base)
            throw error
        }
    }

    /// Runs `body` while a client's `run()` is going in a child task, then stops it.
    static func withClient<T>(_ configuration: DatabaseConfiguration, _ body: (PostgresClient) async throws -> T) async throws -> T {
        // The pool warns when a query comes before run() got going, which is harmless here.
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration.postgres, backgroundLogger: background)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await client.run() }
            do {
                let result = try await body(client)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    private static func drop(_ name: String, _ base: DatabaseConfiguration) async throws {
        try await withClient(base.with(database: "postgres")) { admin in
            try await admin.query(PostgresQuery(unsafeSQL: #"DROP DATABASE IF EXISTS "\#(name)" WITH (FORCE)"#), logger: logger)
        }
    }

    /// The rows of a one-column text query.
    static func strings(_ query: PostgresQuery, on client: PostgresClient) async throws -> [String] {
        var result: [String] = []
        for try await value in try await client.query(query, logger: logger).decode(String.self) { result.append(value) }
        return result
    }

    static func count(_ query: PostgresQuery, on client: PostgresClient) async throws -> Int {
        var result = 0
        for try await value in try await client.query(query, logger: logger).decode(Int.self) { result = value }
        return result
    }
}
