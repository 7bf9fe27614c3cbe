import Database
import Foundation
import Testing
import TestSupport

@Suite("Database URL parsing and SQL splitting")
struct ConfigurationAndSQLTests {
    @Test func urlsAreParsed() throws {
        let configuration = try DatabaseConfiguration(url: "postgres://app:p%40ss@db.internal:6543/cyclorama")
        #expect(configuration.postgres.host == "db.internal")
        #expect(configuration.postgres.port == 6543)
        #expect(configuration.postgres.username == "app")
        #expect(configuration.postgres.password == "p@ss")
        #expect(configuration.postgres.database == "cyclorama")
        let defaults = try DatabaseConfiguration(url: "postgresql://postgres@127.0.0.1/cyclorama")
        #expect(defaults.postgres.port == 5432)
        #expect(defaults.postgres.password == nil)
        #expect(defaults.with(database: "postgres").postgres.database == "postgres")
    }

    @Test(arguments: [
        "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h:70000/db",
        "postgres://u@h/db?sslmode=sometimes", "",
    ])
    func badURLsAreRefused(url: String) {
        let error = #expect(throws: DatabaseConfigurationError.self) { try DatabaseConfiguration(url: url) }
        #expect(error?.message.hasPrefix("invalid database URL") == true)
    }

    @Test func statementsSplitAtTopLevelSemicolonsOnly() {
        let sql = """
            -- a comment; with a semicolon
            CREATE TABLE t (note text DEFAULT 'a;b', "odd;name" int);
            /* block; comment */ INSERT INTO t VALUES ('it''s; fine', 1);
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            SELECT $$x;y$$, $1;
            ;
            -- trailing comment only
            """
        let statements = SQLStatements.split(sql)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix(#"CREATE TABLE t (note text DEFAULT 'a;b', "odd;name" int)"#))
        #expect(statements[1] == "/* block; comment */ INSERT INTO t VALUES ('it''s; fine', 1)")
        #expect(statements[2] == "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql")
        #expect(statements[3] == "SELECT $$x;y$$, $1")
    }

    @Test func theShippedMigrationsAreNumberedInOrderAndChecksummed() {
        let versions = CycloramaMigrations.all.map(\.version)
        #expect(versions == Array(1...versions.count))
        for migration in CycloramaMigrations.all {
            #expect(migration.checksum.count == 64)
            #expect(!migration.statements.isEmpty)
        }
        #expect(Migration(version: 1, name: "x", sql: "SELECT 1").checksum
                != Migration(version: 1, name: "x", sql: "SELECT 2").checksum)
    }

    /// Every call on PostgreSQL goes through `PostgresClient+Calls.swift`, which fails a call whose
    /// connection closed instead of letting it wait for ever: no other source file calls PostgresNIO's
    /// pool or opens a connection of its own in the ways this code does (a statement on a
    /// transaction's own `connection` is covered by the transaction). A text check: a client under
    /// another name than `client` would pass it.
    @Test func everyDatabaseCallGoesThroughTheGuardedCalls() throws {
        let root = TestEnvironment.repositoryRoot
        var direct: [String] = []
        for folder in ["Shared", "Services"] {
            let files = FileManager.default.enumerator(at: root.appendingPathComponent(folder), includingPropertiesForKeys: nil)
            while let file = files?.nextObject() as? URL {
                guard file.pathExtension == "swift", file.lastPathComponent != "PostgresClient+Calls.swift" else { continue }
                let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                for (number, line) in lines.enumerated()
                where ["client.query(", ".withConnection", ".withTransaction(", "PostgresConnection.connect"]
                    .contains(where: line.contains) {
                    direct.append("\(file.path.dropFirst(root.path.count + 1)):\(number + 1)")
                }
            }
        }
        #expect(direct.isEmpty, "calls past the guarded ones: \(direct)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("Shared/Database/PostgresClient+Calls.swift").path))
    }
}
