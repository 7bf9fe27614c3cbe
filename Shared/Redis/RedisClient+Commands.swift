import Timing

/// Typed helpers for the commands Cyclorama uses. Each says whether it is retried after a lost
/// connection (see ``RedisClient/command(_:retryOnConnectionLoss:)``).
extension RedisClient {
    /// `SET key value [PX ms] [NX]`. Returns true when the value was stored, false when `onlyIfAbsent`
    /// refused because the key exists.
    ///
    /// Retried after a lost connection only without `onlyIfAbsent`: a repeated `SET NX` whose first
    /// attempt did land would answer "refused" for the caller's own write.
    @discardableResult
    public func set(_ key: String, _ value: String, expiration: Duration? = nil,
                    onlyIfAbsent: Bool = false) async throws -> Bool {
        var arguments = ["SET", key, value]
        if let expiration { arguments += ["PX", String(try Self.milliseconds(expiration, for: "SET"))] }
        if onlyIfAbsent { arguments.append("NX") }
        let reply = try await command(arguments, retryOnConnectionLoss: !onlyIfAbsent)
        switch reply {
        case .status("OK"): return true
        case .null: return false
        default: throw Self.unexpected(reply, for: "SET")
        }
    }

    /// `GET key`: the value as text, nil when the key does not exist. Retried after a lost connection.
    public func get(_ key: String) async throws -> String? {
        let reply = try await command(["GET", key], retryOnConnectionLoss: true)
        switch reply {
        case .null: return nil
        case .bulk(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RedisError(code: .unexpectedReply, message: "the value is not UTF-8 text", command: "GET")
            }
            return text
        default: throw Self.unexpected(reply, for: "GET")
        }
    }

    /// `DEL key...`: how many of the keys existed. Not retried (a repeat would under-count).
    @discardableResult
    public func delete(_ keys: String...) async throws -> Int {
        try await delete(keys: keys)
    }

    /// `DEL key...` for an array of keys.
    @discardableResult
    public func delete(keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await integer(command(["DEL"] + keys), for: "DEL")
    }

    /// `PEXPIRE key ms`: true when the key exists and now expires after `after`. Retried after a lost connection.
    @discardableResult
    public func expire(_ key: String, after: Duration) async throws -> Bool {
        let milliseconds = try Self.milliseconds(after, for: "PEXPIRE")
        return try await integer(command(["PEXPIRE", key, String(milliseconds)], retryOnConnectionLoss: true),
                                 for: "PEXPIRE") == 1
    }

    /// `INCR key`: the new value. Not retried (it would count twice). Throws a server error when the
    /// value is not an integer.
    public func increment(_ key: String) async throws -> Int {
        try await integer(command(["INCR", key]), for: "INCR")
    }

    /// `EVAL script numkeys keys... args...`: the script's reply. Not retried (scripts change state).
    public func eval(_ script: String, keys: [String] = [], arguments: [String] = []) async throws -> RedisValue {
        try await command(["EVAL", script, String(keys.count)] + keys + arguments)
    }

    /// `PUBLISH channel message`: how many subscribers received it. Not retried (no duplicate messages).
    @discardableResult
    public func publish(_ message: String, to channel: String) async throws -> Int {
        try await integer(command(["PUBLISH", channel, message]), for: "PUBLISH")
    }

    // MARK: - Helpers

    private func integer(_ reply: RedisValue, for command: String) throws -> Int {
        guard case .integer(let value) = reply else { throw Self.unexpected(reply, for: command) }
        return value
    }

    private static func unexpected(_ reply: RedisValue, for command: String) -> RedisError {
        RedisError(code: .unexpectedReply, message: "unexpected reply \(reply)", command: command)
    }

    /// Redis expiries are whole milliseconds and must be positive.
    private static func milliseconds(_ duration: Duration, for command: String) throws -> Int64 {
        let milliseconds = Int64(duration.wholeMilliseconds)
        guard milliseconds > 0 else {
            throw RedisError(code: .invalidArgument, message: "an expiry must be at least 1 ms, got \(duration)",
                             command: command)
        }
        return milliseconds
    }
}
