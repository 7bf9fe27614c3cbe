import Database
import Foundation
import Logging
import PostgresNIO

/// A fresh, empty PostgreSQL database on the test server, for one test.
public struct TemporaryDatabase: Sendable {
    public let name: String
    /// `DATABASE_URL` pointing at it.
    public let url: String

    /// The server's URL the database was made on.
    public var serverURL: String = TestEnvironment.databaseURL

    /// Creates `test_<random>` through the `postgres` maintenance database (of `server`, by default
    /// the test server).
    public static func create(on server: String = TestEnvironment.databaseURL) async throws -> TemporaryDatabase {
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await maintenance("CREATE DATABASE \(name)", on: server)
        guard var components = URLComponents(string: server) else {
            throw URLError(.badURL)
        }
        components.path = "/\(name)"
        return TemporaryDatabase(name: name, url: components.string!, serverURL: server)
    }

    /// Drops the database (terminating connections a crashed service may have left).
    public func drop() async {
        try? await Self.maintenance("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", on: serverURL)
    }

    private static func maintenance(_ statement: String, on server: String) async throws {
        let configuration = try DatabaseConfiguration(url: server).with(database: "postgres")
        let client = PostgresClient(configuration: configuration.postgres)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            // Names are generated above from a UUID, never from input: safe to splice.
            try await client.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "test.database"))
            group.cancelAll()
        }
    }
}
