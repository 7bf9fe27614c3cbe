import Foundation
import Logging
import PostgresNIO

/// Where and how to reach PostgreSQL.
///
/// Built from a URL, `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`
/// (`postgresql://` works too). Defaults: port 5432, TLS off (`sslmode=disable`; the local set-up
/// listens on 127.0.0.1 only), at most 20 pooled connections. Tune the pool through ``postgres``.
///
/// Every session is bounded on the server's side (``sessionLimits``): no statement runs longer than
/// a minute, and a transaction left idle for a minute (its client stuck or gone without a word) is
/// ended, so that the rows it locked are free again. Migrations lift the statement limit for their
/// own transaction.
public struct DatabaseConfiguration: Sendable {
    /// The PostgresNIO client configuration, ready for `PostgresClient(configuration:backgroundLogger:)`.
    public var postgres: PostgresClient.Configuration

    /// Parses the URL. Throws ``DatabaseConfigurationError`` naming what is wrong (never echoing the password).
    public init(url: String) throws {
        func invalid(_ why: String) -> DatabaseConfigurationError { DatabaseConfigurationError(message: "invalid database URL: \(why)") }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user name") }
        let database = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard !database.isEmpty else { throw invalid("no database name") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }

        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw invalid("sslmode must be disable, prefer or require, got '\(sslMode)'")
        }
        postgres = PostgresClient.Configuration(
            host: host, port: port, username: user, password: components.password, database: database, tls: tls)
        postgres.options.additionalStartupParameters = Self.sessionLimits
    }

    /// Server-side limits set for every session at connection (PostgreSQL run-time parameters).
    public static let sessionLimits = [
        ("statement_timeout", "60s"),
        ("idle_in_transaction_session_timeout", "60s"),
    ]

    /// The same server and credentials, another database (tests use `postgres` to create their own).
    public func with(database: String) -> DatabaseConfiguration {
        var copy = self
        copy.postgres.database = database
        return copy
    }
}

/// The database URL could not be understood.
public struct DatabaseConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
