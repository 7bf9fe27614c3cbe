import Foundation
import ServiceCore
import ServiceSupport

/// Where the real servers and the built executables are, for tests.
///
/// Defaults match `scripts/servers.sh`; the same environment variables the services read override them.
public enum TestEnvironment {
    /// The broker as its admin (every right: tests declare, probe and make virtual hosts).
    public static var amqpURL: String { env("AMQP_URL") ?? secret("amqp-cyclorama-admin.url") ?? ServiceConfiguration.defaultAMQPURL }
    public static var redisURL: String { env("REDIS_URL") ?? secret("redis.url") ?? ServiceConfiguration.defaultRedisURL }
    /// PostgreSQL as `cyclorama`, the role the services use (it may create databases).
    public static var databaseURL: String { env("DATABASE_URL") ?? secret("postgres-cyclorama.url") ?? ServiceConfiguration.defaultDatabaseURL }

    /// Where `scripts/servers.sh` keeps the shared servers' credentials.
    public static var secretsDirectory: URL {
        (env("CYCLORAMA_VAR").map { URL(fileURLWithPath: $0) } ?? repositoryRoot.appendingPathComponent(".var"))
            .appendingPathComponent("secrets")
    }

    /// The content of a credentials file `scripts/servers.sh` wrote (in `directory`), trimmed.
    public static func secret(_ name: String, in directory: URL = secretsDirectory) -> String? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else { return nil }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty ? nil : value
    }

    /// The signing secret of media links that test systems share between gateway and prompt-service.
    public static let mediaURLSecret = "test-media-url-secret-" + String(repeating: "x", count: 16)

    /// The master key (base64 of 32 bytes) test systems seal secrets with.
    public static let masterKey = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()

    /// The key that authorizes settings changes in test systems, and the services that hold it.
    public static let settingsAuthorityKey = "test-settings-authority-" + String(repeating: "k", count: 16)
    public static let settingsAuthorityHolders: Set<String> = ["api-gateway", "settings-service"]

    /// The environment of service `name` started by a test, in its own process or in the test's:
    /// `inherited` (a child process's) with the shared servers, with the credentials
    /// `scripts/servers.sh` made, and the secrets the services share, where it does not name them.
    public static func serviceEnvironment(_ name: String, inheriting inherited: [String: String] = [:]) -> [String: String] {
        var env = inherited
        env["AMQP_URL"] = env["AMQP_URL"] ?? amqpURL
        env["REDIS_URL"] = env["REDIS_URL"] ?? redisURL
        env["DATABASE_URL"] = env["DATABASE_URL"] ?? databaseURL
        // The gateway and prompt-service share the secret of signed media links.
        env["MEDIA_URL_SECRET"] = env["MEDIA_URL_SECRET"] ?? mediaURLSecret
        // …and the gateway, settings-service and dispatcher the master key of sealed settings.
        env["CYCLORAMA_MASTER_KEY"] = env["CYCLORAMA_MASTER_KEY"] ?? masterKey
        // Only the gateway and the settings-service hold the key that authorizes settings changes.
        if settingsAuthorityHolders.contains(name) {
            env["SETTINGS_AUTHORITY_KEY"] = env["SETTINGS_AUTHORITY_KEY"] ?? settingsAuthorityKey
        } else {
            env.removeValue(forKey: "SETTINGS_AUTHORITY_KEY")
        }
        return env
    }

    /// The repository's root folder (this file lives in Tests/TestSupport/).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The folder holding the built executables: `CYCLORAMA_BIN_DIR`, else `.build/debug`.
    public static var binaryDirectory: URL {
        if let dir = env("CYCLORAMA_BIN_DIR") { return URL(fileURLWithPath: dir) }
        return repositoryRoot.appendingPathComponent(".build/debug")
    }

    /// A scratch folder under `.var/test/` that the test owns.
    public static func scratchDirectory(_ name: String = UUID().uuidString) throws -> URL {
        let url = repositoryRoot.appendingPathComponent(".var/test/\(name)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A name no other test uses, for queues, keys and databases.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    private static func env(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}
