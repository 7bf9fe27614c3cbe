import Crypto
import Foundation
import ServiceCore

/// The per-submission secret in a job's webhook URL (RunPod signs nothing, so the URL is the only
/// proof a call came from the backend we gave it to).
///
/// The dispatcher makes a fresh token for every submission and stores only its SHA-256 in the job's
/// ledger row (`webhook_token_sha256`); the gateway hashes what a call presents and compares the two
/// digests in constant time. A new submission replaces the digest, so an earlier attempt's URL stops working.
public enum WebhookToken {
    /// The route's path up to the job id: `<base>/api/ai-image/webhook/<jobId>/<token>`.
    public static let path = "/api/ai-image/webhook"

    /// 32 random bytes as 64 lowercase hex characters.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return Digest.hex((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The SHA-256 of `token`, 64 lowercase hex characters: what the ledger keeps.
    public static func digest(_ token: String) -> String {
        Digest.sha256Hex(Data(token.utf8))
    }

    /// Whether `token` hashes to `digest`, comparing every byte whatever differs (constant time).
    public static func matches(_ token: String, digest expected: String) -> Bool {
        Digest.constantTimeEquals(digest(token).utf8, expected.utf8)
    }

    /// The webhook URL of `jobId` under `base`, the public base URL of the api-gateway (the
    /// `aiImageWebhookUrl` setting; a base that already ends with the route's path is taken as it is).
    public static func url(base: String, jobId: UUID, token: String) -> String {
        var base = base.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix(path) { base.removeLast(path.count) }
        return "\(base)\(path)/\(jobId.uuidString.lowercased())/\(token)"
    }
}
