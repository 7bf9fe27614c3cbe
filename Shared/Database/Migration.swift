import Crypto

/// One numbered step of the schema.
///
/// `sql` may hold several statements separated by `;` (they are split with ``SQLStatements`` and run
/// one by one inside the migrator's transaction, since PostgreSQL's extended protocol takes one
/// statement at a time). Once a migration has shipped, never edit it: its checksum is recorded and
/// the migrator refuses to run when it changes. Add a new version instead.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Lower-case hex SHA-256 of ``sql``.
    public var checksum: String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The statements of ``sql``, in order, without empty ones.
    public var statements: [String] { SQLStatements.split(sql) }
}

/// Why the migrator refused, or which migration failed.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The database records a version this code does not know (a newer build migrated it).
        public static let unknownVersion = Code("unknownVersion")
        /// A recorded migration's checksum differs from the code's: someone edited a shipped migration
        /// (or the table).
        public static let checksumMismatch = Code("checksumMismatch")
        /// A recorded migration's name differs from the code's.
        public static let nameMismatch = Code("nameMismatch")
        /// The code has a migration older than the newest recorded one that was never applied.
        public static let missingVersion = Code("missingVersion")
        /// The code's own list is broken (duplicate or non-positive versions).
        public static let invalidMigrations = Code("invalidMigrations")
        /// A statement of a pending migration failed; nothing was applied.
        public static let statementFailed = Code("statementFailed")
    }

    public var code: Code
    /// The migration version concerned, when there is one.
    public var version: Int?
    public var message: String

    public init(code: Code, version: Int?, message: String) {
        self.code = code
        self.version = version
        self.message = message
    }

    public var description: String {
        let where_ = version.map { " (migration \($0))" } ?? ""
        return "MigrationError.\(code)\(where_): \(message)"
    }
}
