import Foundation
import Logging
import PostgresNIO
import Timing

/// What a request carrying an `Idempotency-Key` should do.
public enum IdempotencyClaim: Sendable, Equatable {
    /// First time: go ahead, then ``IdempotencyStore/finish(scope:key:take:status:body:)`` (or
    /// ``IdempotencyStore/release(scope:key:take:)`` on failure) with `take`. `claim` names this use
    /// of the key: the same when an abandoned or released claim is taken (back) by the same request,
    /// new when the key is used again after its record expired (nil for a claim made before claims
    /// had ids, migration 16). `take` names this take of it alone.
    case proceed(claim: UUID?, take: UUID)
    /// A repeat: answer with the first request's status and body, start nothing.
    case replay(status: Int, body: String)
    /// The same key came with a different request.
    case conflict
    /// The first request with this key is still being handled.
    case inProgress
}

/// Remembered answers for POSTs with an `Idempotency-Key` (`idempotency_records`), kept 24 hours.
///
/// A key is claimed by inserting its row before the work starts, so two concurrent requests with one
/// key cannot both start it: the loser sees ``IdempotencyClaim/inProgress``.
public struct IdempotencyStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    /// How long an answer is replayed; older records are ignored and replaced.
    public var retention: Duration = .seconds(24 * 3600)
    /// How long a claim may stay unfinished before the same request may take it over.
    public var abandonedAfter: Duration = .seconds(60)

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.idempotency")) {
        self.client = client
        self.logger = logger
    }

    /// Claims `key` in `scope` for a request whose fingerprint is `requestSHA256`.
    ///
    /// A claim left unfinished for ``abandonedAfter`` (its request died with its process) is taken
    /// over by the same request: the handlers derive the ids of what they create from the key
    /// (GenerationIntake) and its claim, so the request run again finds what the first run created
    /// instead of doing the work twice. So does the same request after its claim was released
    /// (``release(scope:key:take:)``).
    public func claim(scope: String, key: String, requestSHA256: String) async throws -> IdempotencyClaim {
        let seconds = retention.timeInterval
        // Forget an expired record, or a claim another request under the key gave back; then take
        // over an abandoned or released claim of the same request, or the key.
        try await client.rows("""
            DELETE FROM idempotency_records
            WHERE scope = \(scope) AND key = \(key)
              AND (created_at < now() - make_interval(secs => \(seconds)) OR (released AND request_sha256 <> \(requestSHA256)))
            """, logger: logger)
        let abandoned = abandonedAfter.timeInterval
        let take = UUID()
        let takenOver = try await client.rows("""
            UPDATE idempotency_records SET created_at = now(), released = false, take_id = \(take)
            WHERE scope = \(scope) AND key = \(key) AND status_code IS NULL AND request_sha256 = \(requestSHA256)
              AND (released OR created_at < now() - make_interval(secs => \(abandoned)))
            RETURNING claim_id
            """, logger: logger)
        for claim in try takenOver.decode(UUID?.self) { return .proceed(claim: claim, take: take) }
        let inserted = try await client.rows("""
            INSERT INTO idempotency_records (key, scope, request_sha256, claim_id, take_id)
            VALUES (\(key), \(scope), \(requestSHA256), gen_random_uuid(), \(take))
            ON CONFLICT (scope, key) DO NOTHING RETURNING claim_id
            """, logger: logger)
        for claim in try inserted.decode(UUID?.self) { return .proceed(claim: claim, take: take) }
        let rows = try await client.rows("""
            SELECT request_sha256, status_code, response_body::text, released FROM idempotency_records
            WHERE scope = \(scope) AND key = \(key)
            """, logger: logger)
        for (fingerprint, status, body, released) in try rows.decode((String, Int?, String?, Bool).self) {
            // Given back between the statements: try again (taken back, or replaced).
            if released { return try await claim(scope: scope, key: key, requestSHA256: requestSHA256) }
            guard fingerprint == requestSHA256 else { return .conflict }
            guard let status, let body else { return .inProgress }
            return .replay(status: status, body: body)
        }
        // Removed between the statements (expired, or replaced by another request): try again.
        return try await claim(scope: scope, key: key, requestSHA256: requestSHA256)
    }

    /// Stores the answer (`body` is JSON) of the claim this request holds as `take`; nothing when
    /// another take replaced it (this request stalled past its claim and the same request took it
    /// over: that one answers).
    public func finish(scope: String, key: String, take: UUID, status: Int, body: String) async throws {
        try await client.rows("""
            UPDATE idempotency_records SET status_code = \(status), response_body = \(body)::jsonb
            WHERE scope = \(scope) AND key = \(key) AND take_id = \(take)
            """, logger: logger)
    }

    /// Gives the claim this request holds as `take` back after the request failed, so a retry can
    /// start over: the same request takes the claim back with its id (and so finds whatever the
    /// failed run created: it may have written a job before its connection dropped); another
    /// request replaces it. Nothing when another take holds the claim now.
    public func release(scope: String, key: String, take: UUID) async throws {
        try await client.rows("""
            UPDATE idempotency_records SET released = true
            WHERE scope = \(scope) AND key = \(key) AND status_code IS NULL AND take_id = \(take)
            """, logger: logger)
    }
}
