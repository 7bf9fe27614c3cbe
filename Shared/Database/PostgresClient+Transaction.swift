import Logging
import PostgresNIO

extension PostgresClient {
    /// `withTransaction`, rethrowing the closure's own error rather than PostgresNIO's wrapper, so
    /// callers see `MediaStoreError`, `PSQLError` and the like directly.
    func transaction<T: Sendable>(logger: Logger, _ body: (PostgresConnection) async throws -> sending T) async throws -> T {
        do {
            return try await withTransaction(logger: logger) { try await body($0) }
        } catch let error as PostgresTransactionError {
            // What went wrong inside (a MigrationError, a lost connection), not the wrapper.
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }
}
