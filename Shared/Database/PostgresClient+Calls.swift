import Logging
import NIOCore
import PostgresNIO
import Synchronization
import Timing

/// Every call this module makes goes through here, so that none of them can wait for ever.
///
/// PostgresNIO (1.33) can hand out a pooled connection that has just closed (the server stopped or
/// was killed), and a statement written to a closed channel is dropped without a word: its answer
/// never comes, and the call waits for ever. That is how an ingestor's apply hung past a PostgreSQL
/// restart, and how the gateway's reaper could have stopped for good (docs/reliability.md, "No
/// database call waits for ever when its connection closes"). So each
/// call runs in a task of its own, and once its connection has closed and the call has still not
/// finished ``ClosedConnectionWatch/grace`` later, the caller gets ``DatabaseConnectionLost`` and
/// the stuck task is left behind. A statement in flight when the connection closes fails at once on
/// its own; only a dropped one waits for the watch.
extension PostgresClient {
    /// One statement on a pooled connection, its rows read in full. An error names the caller's
    /// `file` and `line`.
    @discardableResult
    public func rows(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> [PostgresRow] {
        try await onConnection { connection in
            try await connection.query(query, logger: logger, file: file, line: line).collect()
        }
    }

    /// `body` in a transaction on one pooled connection (BEGIN, then COMMIT, or ROLLBACK when it
    /// throws), rethrowing `body`'s own error rather than PostgresNIO's wrapper, so callers see
    /// `MediaStoreError`, `PSQLError` and the like directly.
    func transaction<T: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await onConnection { connection in
                try await connection.withTransaction(logger: logger) { try await body($0) }
            }
        } catch let error as PostgresTransactionError {
            // What went wrong inside (a MigrationError, a lost connection), not the wrapper.
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }

    /// `body` with one pooled connection, failing with ``DatabaseConnectionLost`` rather than waiting
    /// for ever when the connection closes under it. `body` must not keep the connection.
    func onConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await ClosedConnectionWatch.shared.run(on: connection, body)
        }
    }
}

/// A database call gave up because its connection closed and the call never answered.
public struct DatabaseConnectionLost: Error, CustomStringConvertible, Sendable {
    public var description: String {
        "the database connection closed and the call on it never answered (PostgreSQL stopped or restarted)"
    }
}

/// Ends the calls still waiting on a connection ``grace`` after it closed.
///
/// One watch per process; it keeps, per open connection that has a call running, the way to end each
/// call, and listens once per connection for its close.
final class ClosedConnectionWatch: Sendable {
    static let shared = ClosedConnectionWatch(grace: .seconds(2))

    /// How long a call may still take to fail on its own after its connection closed.
    let grace: TimeAmount
    private let state = Mutex<(lastCall: Int, calls: [ObjectIdentifier: [Int: @Sendable () -> Void]])>((0, [:]))

    init(grace: TimeAmount) {
        self.grace = grace
    }

    /// Runs `body` in a task of its own and waits for its answer, or for the watch to end it.
    func run<T: Sendable>(
        on connection: PostgresConnection, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let answer = FirstAnswer<Result<T, any Error>>()
        let work = Task {
            do { answer.give(.success(try await body(connection))) } catch { answer.give(.failure(error)) }
        }
        let call = watch(connection) {
            answer.give(.failure(DatabaseConnectionLost()))
            work.cancel()  // it may not stop (a dropped statement ignores it), but it is told
        }
        defer { unwatch(connection, call) }
        return try await withTaskCancellationHandler {
            try await answer.value().get()
        } onCancel: {
            work.cancel()
        }
    }

    private func watch(_ connection: PostgresConnection, end: @escaping @Sendable () -> Void) -> Int {
        let key = ObjectIdentifier(connection)
        let (call, first) = state.withLock { state in
            state.lastCall += 1
            let first = state.calls[key] == nil
            state.calls[key, default: [:]][state.lastCall] = end
            return (state.lastCall, first)
        }
        if first {
            // Runs at once when the connection has closed already.
            connection.closeFuture.whenComplete { _ in
                connection.closeFuture.eventLoop.scheduleTask(in: self.grace) {
                    // The connection is kept until its calls are ended, so that no new connection
                    // takes its address (its key) in between.
                    withExtendedLifetime(connection) { self.endCalls(key) }
                }
            }
        }
        return call
    }

    private func unwatch(_ connection: PostgresConnection, _ call: Int) {
        let key = ObjectIdentifier(connection)
        state.withLock { state in
            state.calls[key]?[call] = nil
        }
    }

    private func endCalls(_ key: ObjectIdentifier) {
        let ends = state.withLock { $0.calls.removeValue(forKey: key) } ?? [:]
        for end in ends.values { end() }
    }
}

extension Array where Element == PostgresRow {
    /// Each row's columns as the given types.
    func decode<Column: PostgresDecodable>(_ column: Column.Type, file: String = #fileID, line: Int = #line) throws -> [Column] {
        try map { try $0.decode(column, file: file, line: line) }
    }

    /// Each row's columns as the given types.
    func decode<each Column: PostgresDecodable>(
        _ columns: (repeat each Column).Type, file: String = #fileID, line: Int = #line
    ) throws -> [(repeat each Column)] {
        try map { try $0.decode(columns, file: file, line: line) }
    }
}
