import Crypto
import Foundation

/// Signs and checks the token-free media download URLs a generation backend fetches:
/// `<base>/media/<id>/file?expires=<unix seconds>&signature=<hex HMAC-SHA256("<id>:<expires>")>`.
///
/// The prompt-service signs, the gateway checks; both read the same secret (`MEDIA_URL_SECRET`, or
/// the file named by `MEDIA_URL_SECRET_FILE`, which `make up` creates). A backend — the local engine
/// or RunPod's workers — thus needs no API token, and a leaked URL stops working when it expires.
public struct MediaURLSigner: Sendable {
    private let secret: [UInt8]

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    /// The secret from `MEDIA_URL_SECRET` or the file `MEDIA_URL_SECRET_FILE` (default
    /// `.var/media-url-secret`); at least 32 bytes.
    public static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> MediaURLSigner {
        if let secret = environment["MEDIA_URL_SECRET"], !secret.isEmpty {
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(variable: "MEDIA_URL_SECRET", reason: "must be at least 32 characters")
            }
            return MediaURLSigner(secret: Array(secret.utf8))
        }
        let file = environment["MEDIA_URL_SECRET_FILE"] ?? ".var/media-url-secret"
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError(
                variable: "MEDIA_URL_SECRET_FILE",
                reason: "cannot read \(file); set MEDIA_URL_SECRET or create the file (make up does: head -c 32 /dev/urandom | base64)")
        }
        let secret = Array(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard secret.count >= 32 else {
            throw ConfigurationError(variable: "MEDIA_URL_SECRET_FILE", reason: "\(file) must hold at least 32 characters")
        }
        return MediaURLSigner(secret: secret)
    }

    /// The path and query of the signed download of media `id`, valid until `expires`.
    public func signedPath(mediaId id: UUID, expires: Date) -> String {
        let seconds = Int(expires.timeIntervalSince1970.rounded(.up))
        return "/media/\(id.uuidString.lowercased())/file?expires=\(seconds)&signature=\(signature(id, seconds))"
    }

    /// Whether `signature` is this signer's for media `id` and `expires`, and `expires` is after `now`.
    public func isValid(mediaId id: UUID, expires: String, signature: String, now: Date = Date()) -> Bool {
        guard let seconds = Int(expires), Double(seconds) > now.timeIntervalSince1970 else { return false }
        let expected = Array(self.signature(id, seconds).utf8)
        let given = Array(signature.lowercased().utf8)
        guard expected.count == given.count else { return false }
        // Constant time: no early exit on the first differing byte.
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private func signature(_ id: UUID, _ expires: Int) -> String {
        let message = Array("\(id.uuidString.lowercased()):\(expires)".utf8)
        return HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
    }
}
