@testable import Database
import Foundation
import Logging
import PostgresNIO
import _ConnectionPoolModule
import Testing
import TestSupport
import Timing

/// PostgreSQL stopped and killed again and again under a steady stream of calls: every call answers
/// (rows or an error) within a bound, none waits for ever (docs/reliability.md, "No database call
/// waits for ever when its connection closes"). Without `ClosedConnectionWatch` this test fails: PostgresNIO 1.33 drops a
/// statement written to a pooled connection that has just closed (a transaction's ROLLBACK after
/// its statement failed, or a statement on a connection handed out as it closed), and its caller
/// waits for ever; 16 callers saw ~13 such calls in 10 restarts.
@Suite("Database calls across PostgreSQL restarts", .timeLimit(.minutes(5)))
struct DatabaseCallTests {
    @Test func noCallWaitsForEverWhenTheServerStopsOrDies() async throws {
        // Its own PostgreSQL, on ports past the fault lanes'.
        try await PrivateServers.run(name: "fault-tests-database-calls", pastFaultLanes: 1, only: [.postgres]) { servers in
            try await callsAcrossRestarts(servers)
        }
    }

    private func callsAcrossRestarts(_ servers: PrivateServers) async throws {
        let logger = { var logger = Logger(label: "test.database-calls"); logger.logLevel = .error; return logger }()
        let client = PostgresClient(
            configuration: try DatabaseConfiguration(url: servers.servers.databaseURL).postgres, backgroundLogger: logger)
        let callers = 8
        // A call may wait for the server to come back (a few seconds); one that waits this long is stuck.
        let bound: Duration = .seconds(30)
        let stop = LockedValue(false)
        let outcomes = LockedValue((answered: 0, failed: 0, lost: 0, unexpected: [String](), stuck: [String]()))

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            // Whatever ends this closure (a failed restart, the time limit) ends the callers too.
            defer { stop.withLock { $0 = true } }
            async let callersDone: Void = withTaskGroup(of: Void.self) { callersGroup in
              for caller in 0..<callers {
                callersGroup.addTask {
                    var n = 0
                    while !stop.value, !Task.isCancelled {
                        n += 1
                        let inTransaction = (caller + n) % 2 == 0
                        let call = Task {
                            if inTransaction {
                                try await client.transaction(logger: logger) { connection in
                                    try await connection.query("SELECT pg_sleep(0.02)", logger: logger)
                                    try await connection.query("SELECT 1", logger: logger)
                                }
                            } else {
                                try await client.rows("SELECT pg_sleep(0.05)", logger: logger)
                            }
                        }
                        switch await awaitResult(of: call, atMost: bound) {
                        case .success?: outcomes.withLock { $0.answered += 1 }
                        case .failure(let error)?:
                            outcomes.withLock { outcomes in
                                outcomes.failed += 1
                                switch error {
                                case is DatabaseConnectionLost: outcomes.lost += 1  // the watch ended a dropped statement
                                case is PSQLError, is ConnectionPoolError: break  // the server away
                                default: outcomes.unexpected.append("\(String(reflecting: error))")
                                }
                            }
                        case nil:
                            call.cancel()
                            outcomes.withLock { $0.stuck.append("caller \(caller), call \(n) (\(inTransaction ? "transaction" : "statement"))") }
                        }
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 5...40)))
                    }
                }
              }
            }
            // Each restart while the callers are busy: three clean stops (the server ends every
            // session with 57P01) and three crashes (sockets reset).
            for cycle in 1...6 {
                try await Task.sleep(for: .seconds(2))
                if cycle % 2 == 0 {
                    try await servers.kill(.postgres)
                } else {
                    try await servers.stop(.postgres)
                    try await Task.sleep(for: .seconds(2))
                }
                try await servers.start(.postgres)
            }
            try await Task.sleep(for: .seconds(3))
            stop.withLock { $0 = true }
            // The callers finish their last call (each bounded above) before the pool stops.
            await callersDone

            // The pool works again once the server is back.
            let ping = Task { try await client.rows("SELECT 1", logger: logger) }
            let answer = await awaitResult(of: ping, atMost: bound)
            #expect((try? answer?.get())?.count == 1, "a statement after the last restart answers")
            group.cancelAll()
        }
        let result = outcomes.value
        #expect(result.stuck.isEmpty, "calls that never answered: \(result.stuck.joined(separator: "; "))")
        #expect(result.failed > 0, "the restarts failed some calls (or the test did not reach the server)")
        #expect(result.unexpected.isEmpty, "failures other than the server being away: \(result.unexpected)")
        #expect(result.answered > 100, "most calls answered")
        print("database calls across restarts: \(result.answered) answered, \(result.failed) failed (\(result.lost) ended by the watch)")
    }
}
