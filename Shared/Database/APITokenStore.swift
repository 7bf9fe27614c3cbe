import Crypto
import Logging
import PostgresNIO

/// Bearer tokens for the HTTP API, stored as SHA-256 hex digests only.
///
/// Tokens are long random strings, so a plain SHA-256 (no salt, no slow hash) is enough, and it lets
/// a lookup go by the unique hash column: nothing secret is compared in application code.
public struct APITokenStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.api-tokens")) {
        self.client = client
        self.logger = logger
    }

    /// Stores the token's hash with a name and role unless that hash is already stored (then nothing
    /// changes, not even a revoked state: revocation is deliberate). Idempotent, safe to call at every start.
    public func ensure(token: String, name: String, role: String) async throws {
        guard !token.isEmpty else { throw APITokenError(message: "an API token cannot be empty") }
        try await client.rows("""
            INSERT INTO api_tokens (name, role, token_sha256) VALUES (\(name), \(role), \(Self.hash(token)))
            ON CONFLICT (token_sha256) DO NOTHING
            """, logger: logger)
    }

    /// The role of a valid (stored, unrevoked) token, or nil. Records when the token was last used,
    /// at most once a minute so authentication does not write on every request.
    public func role(for token: String) async throws -> String? {
        guard !token.isEmpty else { return nil }
        let hash = Self.hash(token)
        let rows = try await client.rows("""
            SELECT role, last_used_at IS NULL OR last_used_at < now() - interval '1 minute'
            FROM api_tokens WHERE token_sha256 = \(hash) AND revoked_at IS NULL
            """, logger: logger)
        var found: (role: String, stale: Bool)?
        for (role, stale) in try rows.decode((String, Bool).self) { found = (role, stale) }
        guard let found else { return nil }
        if found.stale {
            try await client.rows("UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = \(hash)", logger: logger)
        }
        return found.role
    }

    /// Revokes the token; true when it was stored and not yet revoked.
    @discardableResult
    public func revoke(token: String) async throws -> Bool {
        let rows = try await client.rows("""
            UPDATE api_tokens SET revoked_at = now()
            WHERE token_sha256 = \(Self.hash(token)) AND revoked_at IS NULL RETURNING id
            """, logger: logger)
        return !rows.isEmpty
    }

    /// Lower-case hex SHA-256 of the token's UTF-8 bytes: what the `token_sha256` column holds.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// An API token operation that cannot be carried out.
public struct APITokenError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
