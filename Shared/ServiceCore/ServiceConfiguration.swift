import Foundation
import Logging

/// Configuration every Cyclorama executable shares, read from environment variables.
///
/// | variable       | type   | default                                        |
/// |----------------|--------|------------------------------------------------|
/// | `HTTP_HOST`    | string | `127.0.0.1`                                    |
/// | `HTTP_PORT`    | int    | the service's own port (gateway 8080, …)       |
/// | `AMQP_URL`     | url    | `amqp://guest:guest@127.0.0.1:5672/`           |
/// | `REDIS_URL`    | url    | `redis://127.0.0.1:6379/0`                     |
/// | `DATABASE_URL` | url    | `postgres://postgres@127.0.0.1:5433/cyclorama` |
/// | `AMQP_URL_FILE`, `REDIS_URL_FILE`, `DATABASE_URL_FILE` | path | a file holding the URL (it holds a password); the variable itself wins |
/// | `LOG_LEVEL`    | level  | `info` (trace, debug, info, notice, warning, error, critical) |
/// | `SHUTDOWN_GRACE_SECONDS` | double | `8` — how long in-flight work may take after SIGTERM |
///
/// The defaults are a broker, Redis and PostgreSQL without credentials; `make up` gives every
/// service its own through the `*_FILE` variables (docs/running.md, docs/security.md).
public struct ServiceConfiguration: Sendable {
    public var serviceName: String
    public var httpHost: String
    public var httpPort: Int
    public var amqpURL: String
    public var redisURL: String
    public var databaseURL: String
    public var logLevel: Logger.Level
    public var shutdownGrace: Duration

    public init(
        serviceName: String,
        httpHost: String = "127.0.0.1",
        httpPort: Int,
        amqpURL: String = ServiceConfiguration.defaultAMQPURL,
        redisURL: String = ServiceConfiguration.defaultRedisURL,
        databaseURL: String = ServiceConfiguration.defaultDatabaseURL,
        logLevel: Logger.Level = .info,
        shutdownGrace: Duration = .seconds(8)
    ) {
        self.serviceName = serviceName
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.amqpURL = amqpURL
        self.redisURL = redisURL
        self.databaseURL = databaseURL
        self.logLevel = logLevel
        self.shutdownGrace = shutdownGrace
    }

    public static let defaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"
    public static let defaultRedisURL = "redis://127.0.0.1:6379/0"
    public static let defaultDatabaseURL = "postgres://postgres@127.0.0.1:5433/cyclorama"

    /// Reads the configuration from `environment`; a malformed value is an error, never silently replaced.
    public static func fromEnvironment(
        serviceName: String,
        defaultPort: Int,
        environment: EnvironmentVariables = .process
    ) throws(ConfigurationError) -> ServiceConfiguration {
        var configuration = ServiceConfiguration(serviceName: serviceName, httpPort: defaultPort)
        configuration.httpHost = environment["HTTP_HOST"] ?? configuration.httpHost
        configuration.httpPort = try environment.integer("HTTP_PORT", in: 0...65535) ?? defaultPort
        // A URL holds a password: it may come from a file (`make up` writes one per service).
        configuration.amqpURL = try environment.optionalSecret("AMQP_URL", minimumLength: 1) ?? configuration.amqpURL
        configuration.redisURL = try environment.optionalSecret("REDIS_URL", minimumLength: 1) ?? configuration.redisURL
        configuration.databaseURL = try environment.optionalSecret("DATABASE_URL", minimumLength: 1) ?? configuration.databaseURL
        if let level = environment["LOG_LEVEL"] {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError(variable: "LOG_LEVEL", reason: "unknown level \"\(level)\"")
            }
            configuration.logLevel = parsed
        }
        if let grace = try environment.double("SHUTDOWN_GRACE_SECONDS", in: 0...60) {
            configuration.shutdownGrace = .milliseconds(Int(grace * 1000))
        }
        return configuration
    }
}

/// A configuration value that cannot be used, with the variable it came from.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var variable: String
    public var reason: String
    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }
    public var description: String { "configuration \(variable): \(reason)" }
}

/// Environment variables, injectable so tests do not depend on the process environment.
public struct EnvironmentVariables: Sendable {
    public var values: [String: String]
    public init(_ values: [String: String]) { self.values = values }
    public static var process: EnvironmentVariables { .init(ProcessInfo.processInfo.environment) }

    /// The value, or nil when unset or empty.
    public subscript(name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    public func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let raw = self[name] else { return nil }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(variable: name, reason: "expected an integer in \(range), got \"\(raw)\"")
        }
        return value
    }

    public func double(_ name: String, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
        guard let raw = self[name] else { return nil }
        guard let value = Double(raw), range.contains(value) else {
            throw ConfigurationError(variable: name, reason: "expected a number in \(range), got \"\(raw)\"")
        }
        return value
    }

    /// The value read by `parse`; a value it cannot read is refused as "must be `expected`".
    public func parsed<Value>(
        _ name: String, expected: String, _ parse: (String) -> Value?
    ) throws(ConfigurationError) -> Value? {
        guard let raw = self[name] else { return nil }
        guard let value = parse(raw) else {
            throw ConfigurationError(variable: name, reason: "must be \(expected), got \"\(raw)\"")
        }
        return value
    }

    /// A secret given as `name` itself or, more safely, in the file `name_FILE` (by default
    /// `defaultFile`, which `make up` creates), whitespace trimmed, at least `minimumLength`
    /// characters. The value never appears in an error.
    public func secret(_ name: String, defaultFile: String, minimumLength: Int = 32) throws(ConfigurationError) -> String {
        var withDefault = self
        if self[name] == nil, self[name + "_FILE"] == nil { withDefault.values[name + "_FILE"] = defaultFile }
        // Never nil: a file is named, so it is read or this throws.
        return try withDefault.optionalSecret(name, minimumLength: minimumLength)!
    }

    /// A secret that may be absent: `name` itself, or the content of the file `name_FILE` (trimmed);
    /// nil when neither is set. A file that cannot be read, or a value shorter than `minimumLength`,
    /// is an error.
    public func optionalSecret(_ name: String, minimumLength: Int = 32) throws(ConfigurationError) -> String? {
        if let value = self[name] {
            guard value.utf8.count >= minimumLength else {
                throw ConfigurationError(variable: name, reason: "must be at least \(minimumLength) characters")
            }
            return value
        }
        guard let file = self[name + "_FILE"] else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError(
                variable: name + "_FILE",
                reason: "cannot read \(file); set \(name) or create the file (make up creates it)")
        }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard value.utf8.count >= minimumLength else {
            throw ConfigurationError(variable: name + "_FILE", reason: "\(file) must hold at least \(minimumLength) characters")
        }
        return value
    }

    public func bool(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let raw = self[name]?.lowercased() else { return nil }
        switch raw {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(variable: name, reason: "expected true or false, got \"\(raw)\"")
        }
    }
}
