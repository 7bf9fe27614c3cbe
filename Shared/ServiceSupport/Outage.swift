import Database
import Messaging
import PostgresNIO
import Redis
import _ConnectionPoolModule

/// Tells a dependency that is away (PostgreSQL, Redis, the broker, the settings-service) apart from
/// everything else that can go wrong with a message.
///
/// The difference decides what a consumer does (docs/reliability.md): an outage is waited out —
/// the message is held and handled again once the dependency answers, for as long as that takes,
/// and none of its retries is used up — while any other error counts against the message's retry
/// budget and, once that is spent, ends the job with a reason.
public enum Outage {
    /// True when `error` says a dependency cannot be reached right now (and the same work is worth
    /// doing again once it can), false for errors about the work or the message itself.
    public static func isOutage(_ error: any Error) -> Bool {
        switch error {
        case let error as DependencyUnavailable:
            _ = error
            return true
        case let error as HandlingTimedOut:
            // A call that never returned is a dependency that stopped answering without a word
            // (PostgreSQL stopped mid-call): waited out like any other outage; the job's own
            // deadline bounds it.
            _ = error
            return true
        case let error as DatabaseConnectionLost:
            // A call whose connection closed under it and that never answered (PostgresClient+Calls).
            _ = error
            return true
        case let error as RedisError:
            switch error.code {
            case .connectionFailed, .timeout: return true
            case .serverError:
                // A restarted server answers LOADING while it reads its append-only file back.
                let message = error.message.uppercased()
                return ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"].contains { message.hasPrefix($0) }
            default: return false
            }
        case let error as PSQLError:
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
                return true
            case .server:
                // Class 08: connection exception; 57P01-57P03: the server is shutting down or starting;
                // 53300: too many connections.
                guard let state = error.serverInfo?[.sqlState] else { return false }
                return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(state)
            default:
                return false
            }
        case let error as ConnectionPoolError:
            // The pool could not connect for a while (its circuit breaker is open).
            return error == .connectionCreationCircuitBreakerTripped
        case let error as PublishError:
            // Not confirmed within the publish timeout: the broker is unreachable or blocked.
            return error.code == .timeout || error.code == .nacked
        case let error as AMQPError:
            return error.code == .notConnected || error.code == .connectionFailed || error.code == .sendFailed
        default:
            return false
        }
    }
}

/// A dependency this service needs is away; thrown where no lower layer's error says so (the
/// settings-service did not answer, the database is still migrating).
public struct DependencyUnavailable: Error, CustomStringConvertible {
    /// Which dependency: `settings-service`, `postgres`, ...
    public var dependency: String
    public var reason: String

    public init(_ dependency: String, _ reason: String) {
        self.dependency = dependency
        self.reason = reason
    }

    public var description: String { "\(dependency) unavailable: \(reason)" }
}
