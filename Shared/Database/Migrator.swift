import Logging
import PostgresNIO

/// Applies ``Migration``s at start-up, all pending ones in one transaction.
///
/// History lives in `schema_migrations(version PK, name, checksum, applied_at)`. Before applying
/// anything the migrator compares that history with its list and refuses (``MigrationError``,
/// nothing changed) when they disagree: a recorded version the code doesn't know, a recorded name or
/// checksum that differs, or a version missing below the newest recorded one. A transaction-scoped
/// advisory lock serialises services that start together: the second waits, then finds nothing to do.
public struct Migrator: Sendable {
    public let migrations: [Migration]
    private let logger: Logger

    /// Arbitrary but fixed: every Cyclorama process must use the same key.
    static let advisoryLockKey: Int64 = 0x4379_636c_6f72_616d  // "Cycloram"

    public init(migrations: [Migration] = CycloramaMigrations.all, logger: Logger) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Brings the database up to date. Returns the versions applied by this call (empty when it
    /// already was). Throws ``MigrationError`` when history and code disagree or a statement fails;
    /// connection errors are thrown as they are (the caller may retry).
    @discardableResult
    public func migrate(on client: PostgresClient) async throws -> [Int] {
        try validateList()
        let migrations = self.migrations
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            try await Self.apply(migrations, on: connection, logger: logger)
        }
    }

    private static func apply(_ migrations: [Migration], on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        // A migration may rewrite a large table: the sessions' one-minute statement limit
        // (DatabaseConfiguration.sessionLimits) is lifted for this transaction only.
        try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)

        var recorded: [(version: Int, name: String, checksum: String)] = []
        let rows = try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version", logger: logger)
        for try await (version, name, checksum) in rows.decode((Int, String, String).self) {
            recorded.append((version, name, checksum))
        }
        try Self.check(recorded: recorded, against: migrations)

        let newest = recorded.last?.version ?? 0
        var applied: [Int] = []
        for migration in migrations where migration.version > newest {
            logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            for statement in migration.statements {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                } catch let error as PSQLError {
                    throw MigrationError(
                        code: .statementFailed, version: migration.version,
                        message: "\(migration.name): \(error.serverInfo?[.message] ?? String(reflecting: error)) — in: \(statement.prefix(200))")
                }
            }
            try await connection.query("""
                INSERT INTO schema_migrations (version, name, checksum)
                VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                """, logger: logger)
            applied.append(migration.version)
        }
        return applied
    }

    private func validateList() throws {
        var seen: Set<Int> = []
        for migration in migrations {
            guard migration.version > 0 else {
                throw MigrationError(code: .invalidMigrations, version: migration.version, message: "versions must be positive")
            }
            guard seen.insert(migration.version).inserted else {
                throw MigrationError(code: .invalidMigrations, version: migration.version, message: "two migrations share this version")
            }
        }
    }

    /// The history must be exactly the code's first N migrations, unchanged.
    static func check(recorded: [(version: Int, name: String, checksum: String)], against migrations: [Migration]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for record in recorded {
            guard let migration = known[record.version] else {
                let newestKnown = migrations.last?.version ?? 0
                throw MigrationError(
                    code: .unknownVersion, version: record.version,
                    message: "the database records migration \(record.version) '\(record.name)', which this build does not know (it knows up to \(newestKnown)); it was migrated by a newer build — deploy that build, or restore the database")
            }
            guard migration.name == record.name else {
                throw MigrationError(
                    code: .nameMismatch, version: record.version,
                    message: "recorded as '\(record.name)' but this build calls it '\(migration.name)'")
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError(
                    code: .checksumMismatch, version: record.version,
                    message: "'\(migration.name)' was applied with checksum \(record.checksum) but this build's SQL has \(migration.checksum); a shipped migration was edited — revert the edit and add a new migration instead")
            }
        }
        let recordedVersions = Set(recorded.map(\.version))
        if let newest = recorded.last?.version,
           let missing = migrations.first(where: { $0.version < newest && !recordedVersions.contains($0.version) }) {
            throw MigrationError(
                code: .missingVersion, version: missing.version,
                message: "'\(missing.name)' was never applied, but the newer migration \(newest) was; migrations must be added after the newest one")
        }
    }
}
