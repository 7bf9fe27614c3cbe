import Crypto
import Foundation
import ServiceCore
import Shared

/// Who may change settings: whoever holds the settings authority key — the gateway, which checks
/// the admin's token, and the settings-service, which checks the change. Every other service and
/// anyone else on the broker can still read settings, but a change they publish is refused.
///
/// A change is authorized by an HMAC-SHA256 (``SettingsRequest/authorization``, hex) over its
/// message id, its `notAfter` and its updates (``canonical(_:)``). `notAfter` is required and at
/// most ``longestWindow`` away, so a captured change cannot be replayed later to undo a newer one.
public struct SettingsAuthority: Sendable {
    private let secret: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: secret) }

    /// How far in the future a signed change's `notAfter` may lie.
    public static let longestWindow: TimeInterval = 300

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    /// The key from `SETTINGS_AUTHORITY_KEY` or the file `SETTINGS_AUTHORITY_KEY_FILE` (default
    /// `.var/settings-authority-key`, which `make up` creates); at least 32 characters. Give it to
    /// the gateway and the settings-service only.
    public static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> SettingsAuthority {
        SettingsAuthority(secret: Array(try environment.secret("SETTINGS_AUTHORITY_KEY", defaultFile: ".var/settings-authority-key").utf8))
    }

    /// `request` with its ``SettingsRequest/authorization`` set.
    public func signed(_ request: SettingsRequest) -> SettingsRequest {
        var signed = request
        signed.authorization = signature(request)
        return signed
    }

    /// Why `request`'s updates may not be applied, or nil when they may (or it changes nothing).
    public func refusal(of request: SettingsRequest, now: Date = Date()) -> String? {
        guard let updates = request.updates, !updates.isEmpty else { return nil }
        guard let given = request.authorization else {
            return "a settings change must carry the gateway's authorization (SettingsRequest.authorization); this one has none"
        }
        guard let notAfter = request.notAfter else {
            return "an authorized settings change must say notAfter (when its requester stops waiting)"
        }
        guard notAfter.timeIntervalSince(now) <= Self.longestWindow else {
            return "notAfter is more than \(Int(Self.longestWindow)) s away: a change is authorized for a short time only"
        }
        guard Digest.constantTimeEquals(given.lowercased().utf8, signature(request).utf8) else {
            return "the authorization does not match this change: signed with another key, or altered since it was signed"
        }
        return nil
    }

    private func signature(_ request: SettingsRequest) -> String {
        Digest.hex(HMAC<SHA256>.authenticationCode(for: Self.canonical(request), using: key))
    }

    /// What is signed: a version tag, the message id, `notAfter` as the message carries it (to the
    /// millisecond), and every update, sorted by key, each part length-prefixed so no two different
    /// changes read alike.
    static func canonical(_ request: SettingsRequest) -> [UInt8] {
        var text = "cyclorama.settings.request/1\n\(request.messageId.uuidString.lowercased())\n"
        text += (request.notAfter.map(MessageCoding.formatTimestamp) ?? "-") + "\n"
        for (key, value) in (request.updates ?? [:]).sorted(by: { $0.key < $1.key }) {
            text += "\(key.utf8.count):\(key)\(value.utf8.count):\(value)\n"
        }
        return Array(text.utf8)
    }
}
