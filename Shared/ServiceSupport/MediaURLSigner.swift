import Crypto
import Foundation
import ServiceCore

/// Signs and checks the token-free media download URLs a generation backend fetches:
/// `<base>/media/<id>/file?v=<sha256>.<ext>&expires=<unix seconds>&signature=<hex HMAC-SHA256("<id>:<v>:<expires>")>`.
///
/// `v` names the exact file (content-addressed), so the gateway serves it from disk without asking
/// PostgreSQL: a backend fetching its source while the database is away still gets it. Links
/// without `v` (`HMAC("<id>:<expires>")`, the media's current file) are still accepted.
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
        MediaURLSigner(secret: Array(try environment.secret("MEDIA_URL_SECRET", defaultFile: ".var/media-url-secret").utf8))
    }

    /// The path and query of the signed download of media `id`, valid until `expires`; with `file`
    /// (the stored file's path, `ab/cd/<sha256>.<ext>`), of exactly that file.
    public func signedPath(mediaId id: UUID, file: String? = nil, expires: Date) -> String {
        let seconds = Int(expires.timeIntervalSince1970.rounded(.up))
        let version = file.flatMap(Self.version(ofPath:))
        let v = version.map { "v=\($0)&" } ?? ""
        return "/media/\(id.uuidString.lowercased())/file?\(v)expires=\(seconds)&signature=\(signature(id, version, seconds))"
    }

    /// The longest a link may live (`MEDIA_URL_TTL_SECONDS` is at most this): a link that claims to
    /// expire later is refused even when its signature is good, so a leaked secret or a signing bug
    /// cannot mint links that work for ever.
    public static let longestLifetime: TimeInterval = 7 * 86_400

    /// Whether `signature` is this signer's for media `id`, `version` (the `v` parameter, if any) and
    /// `expires`, and `expires` is after `now` and at most ``longestLifetime`` ahead of it.
    public func isValid(mediaId id: UUID, version: String? = nil, expires: String, signature: String, now: Date = Date()) -> Bool {
        guard let seconds = Self.unexpired(expires, now: now) else { return false }
        return Digest.constantTimeEquals(self.signature(id, version, seconds).utf8, signature.lowercased().utf8)
    }

    /// The path and query of the signed download of ZIP export `id`, valid until `expires`:
    /// `/exports/<id>/archive?expires=&signature=<hex HMAC("export:<id>:<expires>")>` (the prefix
    /// keeps an export's signature from ever passing for a media link's).
    public func signedExportPath(exportId id: UUID, expires: Date) -> String {
        let seconds = Int(expires.timeIntervalSince1970.rounded(.up))
        return "/exports/\(id.uuidString.lowercased())/archive?expires=\(seconds)&signature=\(exportSignature(id, seconds))"
    }

    /// Whether `signature` is this signer's for export `id` and `expires`, as ``isValid(mediaId:version:expires:signature:now:)`` judges a media link.
    public func isValidExport(exportId id: UUID, expires: String, signature: String, now: Date = Date()) -> Bool {
        guard let seconds = Self.unexpired(expires, now: now) else { return false }
        return Digest.constantTimeEquals(exportSignature(id, seconds).utf8, signature.lowercased().utf8)
    }

    /// `expires` as seconds when it is after `now` and at most ``longestLifetime`` ahead of it.
    private static func unexpired(_ expires: String, now: Date) -> Int? {
        guard let seconds = Int(expires), Double(seconds) > now.timeIntervalSince1970,
              Double(seconds) <= now.timeIntervalSince1970 + Self.longestLifetime + 60
        else { return nil }
        return seconds
    }

    /// The stored file's path under the media root for a `v` parameter (`<sha256>.<ext>`); nil when
    /// `v` is not of that form.
    public static func path(ofVersion version: String) -> String? {
        let parts = version.split(separator: ".")
        guard parts.count == 2, parts[0].count == 64, parts[0].allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
              (2...5).contains(parts[1].count), parts[1].allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        return "\(parts[0].prefix(2))/\(parts[0].dropFirst(2).prefix(2))/\(version)"
    }

    static func version(ofPath path: String) -> String? {
        guard let last = path.split(separator: "/").last.map(String.init), Self.path(ofVersion: last) == path else { return nil }
        return last
    }

    private func signature(_ id: UUID, _ version: String?, _ expires: Int) -> String {
        hmac(version.map { "\(id.uuidString.lowercased()):\($0):\(expires)" } ?? "\(id.uuidString.lowercased()):\(expires)")
    }

    private func exportSignature(_ id: UUID, _ expires: Int) -> String {
        hmac("export:\(id.uuidString.lowercased()):\(expires)")
    }

    private func hmac(_ subject: String) -> String {
        Digest.hex(HMAC<SHA256>.authenticationCode(for: Array(subject.utf8), using: SymmetricKey(data: secret)))
    }
}
