import Database
import Logging
import Shared
import PostgresNIO
import Testing

@Suite("Migrations against a real PostgreSQL")
struct MigrationTests {
    let migrator = Migrator(logger: TestDatabase.logger)

    /// The schema's tables; a test fails when one goes missing.
    static let tables = ["api_tokens", "batches", "generation_jobs", "idempotency_records", "media", "media_exports", "media_versions",
                         "notification_attempts", "notifications", "option_presets", "purged_files", "review_candidates", "schema_migrations", "settings", "variations"]

    @Test func aFreshDatabaseGetsEveryTableAndTheRecordedHistory() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            #expect(try await migrator.migrate(on: client) == CycloramaMigrations.all.map(\.version))
            let tables = try await TestDatabase.strings(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1", on: client)
            #expect(tables == Self.tables)
            var history: [(Int, String, String)] = []
            let rows = try await client.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
            for try await row in rows.decode((Int, String, String).self) { history.append(row) }
            #expect(history.map(\.0) == CycloramaMigrations.all.map(\.version))
            #expect(history.map(\.1) == CycloramaMigrations.all.map(\.name))
            #expect(history.map(\.2) == CycloramaMigrations.all.map(\.checksum))
        }
    }

    @Test func aSecondRunAppliesNothing() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await migrator.migrate(on: client)
            #expect(try await migrator.migrate(on: client) == [])
            #expect(try await TestDatabase.count("SELECT count(*) FROM schema_migrations", on: client) == CycloramaMigrations.all.count)
        }
    }

    @Test func aTamperedChecksumIsRefusedAndNothingChanges() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await migrator.migrate(on: client)
            try await client.query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
            let withNewMigration = Migrator(migrations: CycloramaMigrations.all + [Self.probe(version: 100)], logger: TestDatabase.logger)
            let error = await #expect(throws: MigrationError.self) { try await withNewMigration.migrate(on: client) }
            #expect(error?.code == .checksumMismatch)
            #expect(error?.version == 1)
            #expect(error?.message.contains("edited") == true)
            #expect("\(error.map { "\($0)" } ?? "")".contains("migration 1"))
            try await Self.expectUnchanged(client, checksumOfVersion1: "edited")
        }
    }

    @Test func anUnknownFutureVersionIsRefusedAndNothingChanges() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await migrator.migrate(on: client)
            try await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'from the future', 'x')")
            let withNewMigration = Migrator(migrations: CycloramaMigrations.all + [Self.probe(version: 100)], logger: TestDatabase.logger)
            let error = await #expect(throws: MigrationError.self) { try await withNewMigration.migrate(on: client) }
            #expect(error?.code == .unknownVersion)
            #expect(error?.version == 999)
            #expect(error?.message.contains("does not know") == true)
            #expect(try await TestDatabase.count("SELECT count(*) FROM schema_migrations", on: client) == CycloramaMigrations.all.count + 1)
            #expect(try await Self.probeExists(client) == false)
        }
    }

    @Test func aRenamedMigrationIsRefused() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await migrator.migrate(on: client)
            try await client.query("UPDATE schema_migrations SET name = 'something else' WHERE version = 2")
            let error = await #expect(throws: MigrationError.self) { try await migrator.migrate(on: client) }
            #expect(error?.code == .nameMismatch)
            #expect(error?.version == 2)
        }
    }

    @Test func aMigrationInsertedBelowTheNewestAppliedOneIsRefused() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            let base = CycloramaMigrations.all
            try await Migrator(migrations: base + [Self.probe(version: 101, table: "probe_b")], logger: TestDatabase.logger).migrate(on: client)
            let late = Migrator(migrations: base + [Self.probe(version: 100), Self.probe(version: 101, table: "probe_b")],
                                logger: TestDatabase.logger)
            let error = await #expect(throws: MigrationError.self) { try await late.migrate(on: client) }
            #expect(error?.code == .missingVersion)
            #expect(error?.version == 100)
            #expect(try await Self.probeExists(client) == false)
        }
    }

    @Test func aFailingStatementRollsBackTheWholeRun() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            let broken = Migration(version: 100, name: "broken", sql: """
                CREATE TABLE probe (id integer PRIMARY KEY);
                INSERT INTO no_such_table VALUES (1);
                """)
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(migrations: CycloramaMigrations.all + [broken], logger: TestDatabase.logger).migrate(on: client)
            }
            #expect(error?.code == .statementFailed)
            #expect(error?.version == 100)
            #expect(error?.message.contains("no_such_table") == true)
            // Not even the earlier migrations or the history table survive: it was one transaction.
            let tables = try await TestDatabase.count(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", on: client)
            #expect(tables == 0)
        }
    }

    @Test func everySessionIsBoundedAndOnlyMigrationsLiftTheStatementLimit() async throws {
        try await TestDatabase.withFreshDatabase { client, configuration in
            // What every service's sessions get.
            #expect(try await TestDatabase.strings("SHOW statement_timeout", on: client) == ["1min"])
            #expect(try await TestDatabase.strings("SHOW idle_in_transaction_session_timeout", on: client) == ["1min"])

            // The same rule with a shorter limit: a slow statement is ended by the server...
            var short = configuration
            short.postgres.options.additionalStartupParameters = [("statement_timeout", "300ms")]
            let (state, applied, after) = try await TestDatabase.withClient(short) { client async throws -> (String?, [Int], [String]) in
                var state: String?
                do {
                    for try await _ in try await client.query("SELECT pg_sleep(1)", logger: TestDatabase.logger) {}
                } catch let error as PSQLError {
                    state = error.serverInfo?[.sqlState]
                }
                // ...except in a migration, which may rewrite a large table.
                let slow = Migration(version: 100, name: "slow", sql: "SELECT pg_sleep(1);")
                let applied = try await Migrator(migrations: CycloramaMigrations.all + [slow], logger: TestDatabase.logger).migrate(on: client)
                return (state, applied, try await TestDatabase.strings("SHOW statement_timeout", on: client))
            }
            #expect(state == "57014", "query_canceled by statement_timeout")
            #expect(applied.last == 100)
            #expect(after == ["300ms"], "lifted for that transaction only")
        }
    }

    @Test func migrationsStartedTogetherFromTwoClientsApplyOnce() async throws {
        try await TestDatabase.withFreshDatabase { first, configuration in
            try await TestDatabase.withClient(configuration) { second in
                async let a = migrator.migrate(on: first)
                async let b = migrator.migrate(on: second)
                let results = try await [a, b].sorted { $0.count < $1.count }
                #expect(results == [[], CycloramaMigrations.all.map(\.version)])
                #expect(try await TestDatabase.count("SELECT count(*) FROM settings", on: first) == 21, "every seeded setting, once")
            }
        }
    }

    /// The seeded settings are what ``CycloramaSettings`` assumes when a value is missing, and every
    /// one of them passes the catalog.
    @Test func theSeededSettingsAreTheTypedDefaults() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await migrator.migrate(on: client)
            let stored = Dictionary(uniqueKeysWithValues: try await SettingsStore(client: client).all().map { ($0.key, $0.value) })
            let typed = CycloramaSettings(stored)
            #expect(typed.unreadable.isEmpty, "\(typed.unreadable)")
            #expect(typed == CycloramaSettings(), "the seed and the defaults agree")
            #expect(Set(stored.keys) == Set(SettingsCatalog.rules.keys), "every setting the catalog knows is seeded")
        }
    }

    @Test func aBrokenMigrationListIsRefusedBeforeTouchingTheDatabase() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            let duplicate = Migrator(migrations: [Self.probe(version: 1), Self.probe(version: 1, table: "probe_b")],
                                     logger: TestDatabase.logger)
            let error = await #expect(throws: MigrationError.self) { try await duplicate.migrate(on: client) }
            #expect(error?.code == .invalidMigrations)
            let tables = try await TestDatabase.count(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", on: client)
            #expect(tables == 0)
        }
    }

    // MARK: - Helpers

    static func probe(version: Int, table: String = "probe") -> Migration {
        Migration(version: version, name: "probe \(table)", sql: "CREATE TABLE \(table) (id integer PRIMARY KEY);")
    }

    static func probeExists(_ client: PostgresClient) async throws -> Bool {
        try await TestDatabase.count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'probe'", on: client) > 0
    }

    static func expectUnchanged(_ client: PostgresClient, checksumOfVersion1: String) async throws {
        #expect(try await TestDatabase.count("SELECT count(*) FROM schema_migrations", on: client) == CycloramaMigrations.all.count)
        #expect(try await TestDatabase.strings("SELECT checksum FROM schema_migrations WHERE version = 1", on: client)
                == [checksumOfVersion1])
        #expect(try await probeExists(client) == false)
    }
}
