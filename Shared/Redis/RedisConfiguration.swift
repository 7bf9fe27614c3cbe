import Foundation

/// Where and how to reach Redis.
///
/// - `host` (String, default `127.0.0.1`), `port` (Int, default `6379`)
/// - `username` / `password` (String?, default none): sent with `AUTH` on every new connection
/// - `database` (Int, default `0`): selected with `SELECT` on every new connection
/// - `poolSize` (Int, default `4`): the most connections open at once, and the most commands in flight
/// - `connectTimeout` (Duration, default 2 s): for the TCP connect (and AUTH/SELECT)
/// - `commandTimeout` (Duration, default 5 s): for sending a command and for waiting for its reply
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    public var poolSize: Int
    public var connectTimeout: Duration
    public var commandTimeout: Duration

    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, poolSize: Int = 4,
        connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses `redis://[[username]:password@]host[:port][/database]`; everything else keeps its default.
    ///
    /// Throws ``RedisError`` with code ``RedisError/Code/invalidConfiguration`` naming the bad part.
    public init(url: String) throws {
        self.init()
        func invalid(_ why: String) -> RedisError {
            // The URL may hold a password: don't echo it.
            RedisError(code: .invalidConfiguration, message: "invalid Redis URL: \(why)")
        }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        guard components.scheme?.lowercased() == "redis" else {
            throw invalid("the scheme must be redis:// (TLS is not supported)")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        self.host = host
        if let port = components.port {
            guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
            self.port = port
        }
        if let user = components.user, !user.isEmpty { self.username = user }
        if let password = components.password, !password.isEmpty { self.password = password }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let database = Int(path), database >= 0 else {
                throw invalid("the path must be a database number, got '\(path)'")
            }
            self.database = database
        }
    }
}
