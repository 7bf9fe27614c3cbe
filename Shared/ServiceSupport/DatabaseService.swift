import Database
import Logging
import PostgresNIO
import ServiceCore
import ServiceLifecycle
import Timing

/// The PostgreSQL pool as a `Service`: runs the pool, applies the migrations (retrying while the
/// server is unreachable), then reports ready. Work that needs the schema awaits ``waitUntilReady()``.
public final class DatabaseService: Service, Sendable {
    public let client: PostgresClient
    let migrator: Migrator
    let logger: Logger
    let readiness = Readiness()

    public init(configuration: DatabaseConfiguration, logger: Logger) {
        self.client = PostgresClient(configuration: configuration.postgres, backgroundLogger: logger)
        self.migrator = Migrator(logger: logger)
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { await self.client.run() }
                    group.addTask { try await self.migrateUntilDone() }
                }
            }
        } catch is CancellationError {
            // Shut down while still waiting for the server: nothing to clean up.
            readiness.fail(CancellationError())
        }
    }

    /// Suspends until the migrations have been applied.
    public func waitUntilReady() async throws {
        try await readiness.wait()
    }

    /// True when a `SELECT 1` round trip succeeds within two seconds.
    public func isHealthy() async -> Bool {
        guard readiness.isOpen else { return false }
        return await withTimeout(.seconds(2)) {
            try await self.client.rows("SELECT 1", logger: self.logger)
        } != nil
    }

    private func migrateUntilDone() async throws {
        var backoff = Backoff(initial: .milliseconds(250), maximum: .seconds(5))
        while true {
            do {
                let applied = try await migrator.migrate(on: client)
                logger.info("database ready", metadata: ["migrationsApplied": "\(applied)"])
                readiness.open()
                return
            } catch let error as MigrationError {
                // History and code disagree: refusing to start is the only safe answer.
                logger.critical("migrations refused", metadata: ["error": "\(error)"])
                readiness.fail(error)
                throw error
            } catch {
                let delay = backoff.next()
                logger.warning("database not reachable yet", metadata: ["error": "\(String(reflecting: error))", "retryIn": "\(delay)"])
                try await Task.sleep(for: delay)
            }
        }
    }
}
