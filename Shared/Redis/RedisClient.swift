import Logging
import NIOCore
import NIOPosix

/// A small pooled Redis client over hiredis.
///
/// Each command checks a connection out of a pool of at most `poolSize`, runs the blocking hiredis
/// call on an `NIOThreadPool` thread (never Swift's cooperative pool), and checks it back in. When a
/// connection turns out dead (server restart, reset, timeout) it is dropped together with the idle
/// ones, and the next command connects afresh, so a restart of redis-server never wedges the client.
///
/// Retries: a command is sent again on a fresh connection only when the caller says that is safe
/// (`retryOnConnectionLoss`; the typed helpers document their choice). Before reuse, every idle
/// connection is checked for EOF without blocking, so a connection the server closed while idle is
/// replaced *before* anything is sent: even unsafe commands survive a plain restart.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let threadPool: NIOThreadPool
    private let ownsThreadPool: Bool
    private let pool: RedisConnectionPool
    private let logger: Logger

    /// - Parameters:
    ///   - threadPool: where the blocking hiredis calls run. By default the client starts its own pool
    ///     with one thread per connection, so that other libraries' blocking work (a broker consumer
    ///     waiting for frames) cannot starve Redis commands; it is stopped by ``shutdown()``.
    public init(configuration: RedisConfiguration, threadPool: NIOThreadPool? = nil,
                logger: Logger = Logger(label: "cyclorama.redis")) {
        self.configuration = configuration
        if let threadPool {
            self.threadPool = threadPool
            self.ownsThreadPool = false
        } else {
            let own = NIOThreadPool(numberOfThreads: max(1, configuration.poolSize))
            own.start()
            self.threadPool = own
            self.ownsThreadPool = true
        }
        self.pool = RedisConnectionPool(size: configuration.poolSize)
        self.logger = logger
    }

    /// Runs any command given as text arguments (`["SET", "k", "v"]`).
    ///
    /// - Parameter retryOnConnectionLoss: send it once more on a fresh connection if the connection
    ///   breaks after it was sent. Only pass `true` for commands whose double execution is harmless
    ///   and whose reply would be the same (GET, plain SET, EXPIRE, PING).
    public func command(_ arguments: [String], retryOnConnectionLoss: Bool = false) async throws -> RedisValue {
        try await command(bytes: arguments.map { Array($0.utf8) }, retryOnConnectionLoss: retryOnConnectionLoss)
    }

    /// Runs any command given as binary-safe arguments.
    public func command(bytes arguments: [[UInt8]], retryOnConnectionLoss: Bool = false) async throws -> RedisValue {
        guard let first = arguments.first, !first.isEmpty else {
            throw RedisError(code: .invalidArgument, message: "a command needs at least its name")
        }
        let (pooled, generation) = try await pool.acquire()
        let configuration = self.configuration
        let outcome: CommandOutcome
        do {
            outcome = try await threadPool.runIfActive {
                Self.run(arguments, on: pooled, generation: generation, configuration: configuration,
                         retry: retryOnConnectionLoss)
            }
        } catch {
            await pool.release(nil)
            throw RedisError(code: .shutdown, message: "the Redis thread pool is not running: \(error)")
        }
        if outcome.lostConnection {
            await pool.connectionLost()
            if let failure = outcome.failure {
                logger.warning("Redis command failed on a lost connection; idle connections dropped",
                               metadata: ["command": "\(outcome.commandName)", "error": "\(failure)"])
            } else {
                logger.info("Redis connection was closed by the server; reconnected",
                            metadata: ["command": "\(outcome.commandName)"])
            }
        }
        await pool.release(outcome.connection)
        return try outcome.result.get()
    }

    /// True only if a `PING` round trip succeeds now (for `/healthz`).
    public func ping() async -> Bool {
        (try? await command(["PING"], retryOnConnectionLoss: true)) == .status("PONG")
    }

    /// Refuses further commands, frees the idle contexts (busy ones are freed when their command
    /// ends) and stops the client's own thread pool.
    public func shutdown() async {
        await pool.shutdown()
        if ownsThreadPool {
            try? await threadPool.shutdownGracefully()
        }
    }

    // MARK: - On the thread pool

    private struct CommandOutcome: Sendable {
        var connection: RedisConnection?
        var result: Result<RedisValue, RedisError>
        var lostConnection: Bool
        var commandName: String
        var failure: RedisError? { if case .failure(let error) = result { return error } else { return nil } }
    }

    /// Blocking: validates or opens a connection, runs the command, retries once when allowed.
    private static func run(_ arguments: [[UInt8]], on pooled: RedisConnection?, generation: Int,
                            configuration: RedisConfiguration, retry: Bool) -> CommandOutcome {
        let name = String(decoding: arguments[0], as: UTF8.self).uppercased()
        var lost = false
        var connection = pooled
        if let idle = connection, !idle.isAlive {
            connection = nil  // closed by the server while idle: nothing was sent, so replacing it is safe
            lost = true
        }
        var attempts = 0
        while true {
            attempts += 1
            let reused = connection != nil
            let current: RedisConnection
            do throws(RedisError) {
                if let connection { current = connection } else {
                    current = try RedisConnection.connect(configuration, generation: generation)
                }
            } catch {
                return CommandOutcome(connection: nil, result: .failure(error), lostConnection: lost, commandName: name)
            }
            do throws(RedisError) {
                let value = try current.execute(arguments)
                return CommandOutcome(connection: current, result: .success(value), lostConnection: lost, commandName: name)
            } catch where !error.isConnectionLevel {
                return CommandOutcome(connection: current, result: .failure(error), lostConnection: lost, commandName: name)
            } catch {
                // The context is unusable now (a late reply could arrive after a timeout): drop it.
                lost = true
                connection = nil
                let mayRetry = retry && reused && attempts == 1 && error.code == .connectionFailed
                if !mayRetry {
                    return CommandOutcome(connection: nil, result: .failure(error), lostConnection: lost, commandName: name)
                }
            }
        }
    }
}
