/// A failure talking to Redis.
///
/// The `code` says what kind of failure it was (match on it); `message` is the human-readable detail
/// (hiredis' error string or the server's error reply); `command` names the command, never its
/// arguments, because values may be secrets.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. A struct rather than an enum so new kinds don't break callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The TCP connection could not be made, or it was lost (server restart, reset, EOF).
        public static let connectionFailed = Code("connectionFailed")
        /// Connecting, sending or waiting for a reply took longer than the configured timeout.
        public static let timeout = Code("timeout")
        /// The server answered with an error reply (`-ERR ...`, `-WRONGTYPE ...`, a script error, ...).
        public static let serverError = Code("serverError")
        /// The bytes on the wire were not valid RESP; the connection was dropped.
        public static let protocolError = Code("protocolError")
        /// The reply had a shape the typed helper did not expect (e.g. a string where an integer belongs).
        public static let unexpectedReply = Code("unexpectedReply")
        /// The caller passed something that cannot be sent (no command, a zero expiry, ...).
        public static let invalidArgument = Code("invalidArgument")
        /// The configuration (usually the URL) is invalid.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The client was shut down.
        public static let shutdown = Code("shutdown")
    }

    public var code: Code
    public var message: String
    /// The command's name (e.g. `SET`), without its arguments.
    public var command: String?

    public init(code: Code, message: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// True when the failure lost the connection (not a server error reply): the context is dropped.
    var isConnectionLevel: Bool {
        code == .connectionFailed || code == .timeout || code == .protocolError
    }

    public var description: String {
        if let command { return "RedisError(\(code), \(command)): \(message)" }
        return "RedisError(\(code)): \(message)"
    }
}
