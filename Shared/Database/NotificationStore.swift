import Foundation
import Logging
import PostgresNIO
import Timing

/// Where a notification stands: waiting for (another) attempt, taken by the receiver, or given up.
public enum NotificationStatus: String, Sendable, Codable {
    case pending = "PENDING"
    case delivered = "DELIVERED"
    case abandoned = "ABANDONED"
}

/// One POST of a notification to its receiver.
public struct NotificationAttempt: Sendable, Equatable {
    public var number: Int
    public var startedAt: Date
    /// nil while it is under way (or when the sender stopped during it).
    public var durationMilliseconds: Int?
    /// The receiver's HTTP status, nil when it gave none.
    public var statusCode: Int?
    /// Why it did not count as delivered, nil when it did (or is under way).
    public var error: String?
}

/// A job's notification (`notifications`): made by the database when the job ends (migration 6).
public struct NotificationRecord: Sendable, Equatable {
    public var id: UUID
    public var jobId: UUID
    public var url: String
    /// `job.completed`, `job.failed` or `job.cancelled`.
    public var event: String
    public var status: NotificationStatus
    public var attempts: Int
    public var nextAttemptAt: Date
    /// The exact bytes POSTed, fixed at the first attempt (nil before it).
    public var body: String?
    public var lastError: String?
    public var createdAt: Date
    public var finishedAt: Date?
}

/// A notification the sender took for one attempt (``NotificationStore/claimDue(limit:lease:)``).
public struct ClaimedNotification: Sendable, Equatable {
    public var record: NotificationRecord
    /// The number of the attempt this claim is (1 for the first).
    public var attempt: Int
}

/// The `notifications` and `notification_attempts` tables: the outbox of HTTP notifications.
///
/// Claims are leases: a claimed notification is not due again until `lease` passed, so several
/// gateways never send the same attempt, and one whose sender died is taken again after the lease.
public struct NotificationStore: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.notification-store")) {
        self.client = client
        self.logger = logger
    }

    static let columns = """
        id, job_id, url, event, status, attempts, next_attempt_at, body, last_error, created_at, finished_at
        """

    /// Takes up to `limit` due notifications for one attempt each: counts the attempt, records it as
    /// started, and leases the row for `lease`.
    public func claimDue(limit: Int, lease: Duration) async throws -> [ClaimedNotification] {
        let logger = self.logger
        return try await client.transaction(logger: logger) { connection in
            let rows = try await connection.query("""
                UPDATE notifications SET attempts = attempts + 1,
                       next_attempt_at = now() + make_interval(secs => \(lease.timeInterval))
                WHERE id IN (
                    SELECT id FROM notifications WHERE status = 'PENDING' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            var claimed: [ClaimedNotification] = []
            for try await row in rows {
                let record = try Self.record(row)
                claimed.append(ClaimedNotification(record: record, attempt: record.attempts))
            }
            for claim in claimed {
                try await connection.query("""
                    INSERT INTO notification_attempts (notification_id, number) VALUES (\(claim.record.id), \(claim.attempt))
                    ON CONFLICT (notification_id, number) DO NOTHING
                    """, logger: logger)
            }
            return claimed
        }
    }

    /// Fixes the body every attempt sends (the first writer wins); returns the body to send.
    public func fixBody(_ id: UUID, _ body: String) async throws -> String {
        let rows = try await client.rows("""
            UPDATE notifications SET body = coalesce(body, \(body)) WHERE id = \(id) RETURNING body
            """, logger: logger)
        for stored in try rows.decode(String.self) { return stored }
        throw NotificationStoreError(message: "notification \(id) does not exist")
    }

    /// What became of one attempt.
    public enum Outcome: Sendable, Equatable {
        case delivered
        /// Try again at `at`.
        case retry(at: Date, error: String)
        /// No more attempts.
        case abandoned(error: String)
    }

    /// Records the attempt's answer and what follows from it. Only the attempt that holds the
    /// notification's current claim may settle it (a late answer after the lease expired and another
    /// sender took it only records itself).
    public func finish(
        _ claim: ClaimedNotification, duration: Duration, statusCode: Int?, outcome: Outcome
    ) async throws {
        let logger = self.logger
        let error: String? = switch outcome {
        case .delivered: nil
        case .retry(_, let error), .abandoned(let error): error
        }
        let milliseconds = Int(duration.timeInterval * 1000)
        try await client.transaction(logger: logger) { connection in
            try await connection.query("""
                UPDATE notification_attempts SET duration_ms = \(milliseconds), status_code = \(statusCode), error = \(error)
                WHERE notification_id = \(claim.record.id) AND number = \(claim.attempt)
                """, logger: logger)
            switch outcome {
            case .delivered:
                try await connection.query("""
                    UPDATE notifications SET status = 'DELIVERED', finished_at = now(), last_error = NULL
                    WHERE id = \(claim.record.id) AND status = 'PENDING' AND attempts = \(claim.attempt)
                    """, logger: logger)
            case .retry(let at, let error):
                try await connection.query("""
                    UPDATE notifications SET next_attempt_at = \(at), last_error = \(error)
                    WHERE id = \(claim.record.id) AND status = 'PENDING' AND attempts = \(claim.attempt)
                    """, logger: logger)
            case .abandoned(let error):
                try await connection.query("""
                    UPDATE notifications SET status = 'ABANDONED', finished_at = now(), last_error = \(error)
                    WHERE id = \(claim.record.id) AND status = 'PENDING' AND attempts = \(claim.attempt)
                    """, logger: logger)
            }
        }
    }

    /// The job's notification and its attempts (newest last, at most the last `limit`); nil when the
    /// job has none (yet).
    public func notification(forJob jobId: UUID, limit: Int = 100) async throws -> (NotificationRecord, [NotificationAttempt])? {
        var found: NotificationRecord?
        for row in try await client.rows(
            "SELECT \(unescaped: Self.columns) FROM notifications WHERE job_id = \(jobId)", logger: logger) {
            found = try Self.record(row)
        }
        guard let record = found else { return nil }
        let rows = try await client.rows("""
            SELECT number, started_at, duration_ms, status_code, error FROM (
                SELECT * FROM notification_attempts WHERE notification_id = \(record.id) ORDER BY number DESC LIMIT \(limit)
            ) recent ORDER BY number
            """, logger: logger)
        var attempts: [NotificationAttempt] = []
        for (number, startedAt, duration, status, error) in try rows.decode((Int, Date, Int?, Int?, String?).self) {
            attempts.append(NotificationAttempt(
                number: number, startedAt: startedAt, durationMilliseconds: duration, statusCode: status, error: error))
        }
        return (record, attempts)
    }

    static func record(_ row: PostgresRow) throws -> NotificationRecord {
        let c = try row.decode((UUID, UUID, String, String, String, Int, Date, String?, String?, Date, Date?).self)
        guard let status = NotificationStatus(rawValue: c.4) else {
            throw NotificationStoreError(message: "notification \(c.0) has an unknown status \(c.4)")
        }
        return NotificationRecord(
            id: c.0, jobId: c.1, url: c.2, event: c.3, status: status, attempts: c.5, nextAttemptAt: c.6, body: c.7,
            lastError: c.8, createdAt: c.9, finishedAt: c.10)
    }
}

/// A notification operation that could not be carried out.
public struct NotificationStoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(message: String) { self.message = message }
}
