import Crypto
import Foundation
import ServiceCore

/// Encrypts secrets at rest (the RunPod API key in the settings table) with AES-256-GCM.
///
/// The master key is never in the database: it comes from `CYCLORAMA_MASTER_KEY` (base64 of 32
/// bytes) or the file named by `CYCLORAMA_MASTER_KEY_FILE` (default `.var/master-key`, which
/// `make up` creates). A sealed value is `v1:` + base64(nonce ‖ ciphertext ‖ tag); the setting's key
/// is bound in as authenticated data, so a sealed value cannot be moved to another setting.
public struct SecretBox: Sendable {
    private let key: [UInt8]

    public static let prefix = "v1:"

    public init(key: [UInt8]) throws(ConfigurationError) {
        guard key.count == 32 else {
            throw ConfigurationError(variable: "CYCLORAMA_MASTER_KEY", reason: "must be 32 bytes (base64); got \(key.count)")
        }
        self.key = key
    }

    public static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> SecretBox {
        // Read as every secret is (`NAME` or `NAME_FILE`); 32 bytes are 44 characters of base64.
        let encoded = try environment.secret("CYCLORAMA_MASTER_KEY", defaultFile: ".var/master-key", minimumLength: 44)
        guard let bytes = Data(base64Encoded: encoded) else {
            throw ConfigurationError(
                variable: "CYCLORAMA_MASTER_KEY", reason: "must be base64 of 32 random bytes (make up does: head -c 32 /dev/urandom | base64)")
        }
        return try SecretBox(key: Array(bytes))
    }

    /// Whether a stored value is sealed by this scheme (not a plain value).
    public static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(prefix) }

    public func seal(_ plain: String, for setting: String) throws -> String {
        let box = try AES.GCM.seal(Array(plain.utf8), using: SymmetricKey(data: key), authenticating: Array(setting.utf8))
        guard let combined = box.combined else { throw SecretBoxError(message: "AES-GCM gave no combined form") }
        return Self.prefix + combined.base64EncodedString()
    }

    /// The plain value of a sealed one; a plain (legacy, unsealed) value is returned as is.
    public func open(_ stored: String, for setting: String) throws -> String {
        guard Self.isSealed(stored) else { return stored }
        guard let combined = Data(base64Encoded: String(stored.dropFirst(Self.prefix.count))) else {
            throw SecretBoxError(message: "the sealed value of \(setting) is not base64")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            let plain = try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Array(setting.utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw SecretBoxError(message: "the sealed value of \(setting) does not open with this master key")
        }
    }
}

/// A sealed secret that cannot be opened (wrong master key, damaged value). Never carries the secret.
public struct SecretBoxError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
