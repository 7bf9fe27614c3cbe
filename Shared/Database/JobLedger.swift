import Foundation
import Logging
import PostgresNIO
import Shared
import Timing

/// Where a generation job stands in the ledger. The order of the non-terminal cases is the order
/// a job moves through; a job never moves backwards and never leaves a terminal state.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued = "QUEUED"
    case prompting = "PROMPTING"
    case submitted = "SUBMITTED"
    case inProgress = "IN_PROGRESS"
    case downloading = "DOWNLOADING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"

    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }

    /// The non-terminal statuses in the order a job moves through them (for SQL).
    static let progression = ["QUEUED", "PROMPTING", "SUBMITTED", "IN_PROGRESS", "DOWNLOADING"]
    static let terminal = ["COMPLETED", "FAILED", "CANCELLED"]
}

/// One row of the generation ledger.
public struct JobRecord: Sendable, Equatable {
    public var id: UUID
    /// `single`, `batch` or `variation` (the ledger's names).
    public var kind: String
    public var batchId: UUID?
    public var mediaId: UUID
    public var status: JobStatus
    public var backend: String
    public var backendJobId: String?
    public var prompt: String?
    public var errorCode: String?
    public var error: String?
    /// USD.
    public var cost: Double
    public var attempt: Int
    public var variationName: String?
    public var correlationId: String?
    public var resultVersionId: UUID?
    public var createdAt: Date
    public var updatedAt: Date
    public var submittedAt: Date?
    public var completedAt: Date?
    /// Where the terminal event is POSTed (docs/notifications.md), nil for nowhere.
    public var notifyURL: String? = nil
    /// The fidelity guard's verdict on a RunPod result (docs/fidelity.md), as JSON; nil when unchecked.
    public var fidelityJSON: String? = nil
}

/// A job the gateway accepts: the ledger row written before the request is published.
public struct NewJob: Sendable {
    public var id: UUID
    public var kind: String
    public var batchId: UUID?
    public var mediaId: UUID
    public var variationName: String?
    /// The options as asked for, as JSON text.
    public var optionsJSON: String
    public var correlationId: String
    /// Where the job's terminal event is POSTed (docs/notifications.md); nil for nowhere.
    public var notifyURL: String?

    public init(
        id: UUID, kind: String = "single", batchId: UUID? = nil, mediaId: UUID, variationName: String? = nil,
        optionsJSON: String = "{}", correlationId: String, notifyURL: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.batchId = batchId
        self.mediaId = mediaId
        self.variationName = variationName
        self.optionsJSON = optionsJSON
        self.correlationId = correlationId
        self.notifyURL = notifyURL
    }
}

/// What became of a cancel request.
public enum CancelOutcome: Sendable, Equatable {
    case cancelled
    /// It was cancelled before: cancelling is idempotent.
    case alreadyCancelled
    /// It had already ended otherwise (COMPLETED or FAILED).
    case finished(JobStatus)
    case notFound
}

/// The `generation_jobs` table: the job ledger. Every write is a single guarded statement, so
/// concurrent writers (the gateway's event consumer, the ingestor, a cancel) can only move a job
/// forward, and the first terminal state wins.
///
/// Every unfinished job has a deadline (`deadline_at`, docs/reliability.md): ``queueDeadline`` after
/// it was accepted until it is submitted to a backend, then the dispatcher's own deadline plus
/// ``finishSlack``. The gateway's reaper ends jobs still open past it (``claimOverdue(limit:)``).
public struct JobLedger: Sendable {
    /// How long an accepted job may wait to be submitted to a backend: 24 hours.
    public static let defaultQueueDeadline: Duration = .seconds(24 * 3600)
    /// How long after the dispatcher's deadline a job may take to be stored and recorded: 10 minutes.
    public static let defaultFinishSlack: Duration = .seconds(600)

    private let client: PostgresClient
    private let logger: Logger
    public var queueDeadline: Duration = JobLedger.defaultQueueDeadline
    public var finishSlack: Duration = JobLedger.defaultFinishSlack

    public init(client: PostgresClient, logger: Logger = Logger(label: "cyclorama.job-ledger")) {
        self.client = client
        self.logger = logger
    }

    /// Records an accepted job as QUEUED, with its queue deadline. False when a job with this id
    /// exists already (the same request again: ids derived from an Idempotency-Key).
    @discardableResult
    public func insert(_ job: NewJob) async throws -> Bool {
        let rows = try await client.rows("""
            INSERT INTO generation_jobs (id, kind, batch_id, media_id, variation_name, options, correlation_id, notify_url, deadline_at)
            VALUES (\(job.id), \(job.kind), \(job.batchId), \(job.mediaId), \(job.variationName),
                    \(job.optionsJSON)::jsonb, \(job.correlationId), \(job.notifyURL), now() + make_interval(secs => \(queueDeadline.timeInterval)))
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// Records the fidelity guard's verdict (JSON) on a job that has not ended; the result-ingestor
    /// writes it before the result is applied or the job failed, so it is there with either.
    public func recordFidelity(_ id: UUID, json: String) async throws {
        try await client.rows("""
            UPDATE generation_jobs SET fidelity = \(json)::jsonb
            WHERE id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
            """, logger: logger)
    }

    /// The job's status alone (one small read), nil when unknown.
    public func status(of id: UUID) async throws -> JobStatus? {
        let rows = try await client.rows("SELECT status FROM generation_jobs WHERE id = \(id)", logger: logger)
        for status in try rows.decode(String.self) { return JobStatus(rawValue: status) }
        return nil
    }

    /// The dispatcher's copy of its record of the job (JSON, see ``saveDispatchRecord(_:json:)``);
    /// nil when the job is unknown or has none.
    public func dispatchRecord(of id: UUID) async throws -> String? {
        let rows = try await client.rows(
            "SELECT dispatch_record::text FROM generation_jobs WHERE id = \(id)", logger: logger)
        for json in try rows.decode(String?.self) { return json }
        return nil
    }

    /// Keeps the dispatcher's record of a job (JSON it alone reads) beside the job, whatever the
    /// job's status: the copy a follower starts from when Redis lost the record. Migration 15.
    /// `saves` is the record's save count (its `saves` field): a copy already as late or later
    /// stays (a follower that stalled between its Redis save and this one cannot put an older
    /// record over its successor's).
    public func saveDispatchRecord(_ id: UUID, json: String, saves: Int) async throws {
        try await client.rows("""
            UPDATE generation_jobs SET dispatch_record = \(json)::jsonb
            WHERE id = \(id) AND coalesce((dispatch_record->>'saves')::int, -1) < \(saves)
            """, logger: logger)
    }

    /// The job, nil when unknown.
    public func job(_ id: UUID) async throws -> JobRecord? {
        try await jobs(query: "\(unescaped: Self.jobColumns) WHERE id = \(id)").first
    }

    static let jobColumns = """
        SELECT id, kind, batch_id, media_id, status, backend, backend_job_id, prompt, error_code, error,
               cost::float8, attempt, variation_name, correlation_id, result_version_id,
               created_at, updated_at, submitted_at, completed_at, notify_url, fidelity::text
        FROM generation_jobs
        """

    func jobs(query: PostgresQuery) async throws -> [JobRecord] {
        var records: [JobRecord] = []
        for row in try await client.rows(query, logger: logger) {
            let c = try row.decode(
                (UUID, String, UUID?, UUID, String, String, String?, String?, String?, String?,
                 Double, Int, String?, String?, UUID?, Date, Date, Date?, Date?, String?, String?).self)
            guard let status = JobStatus(rawValue: c.4) else {
                throw JobLedgerError(message: "job \(c.0) has an unknown status \(c.4)")
            }
            records.append(JobRecord(
                id: c.0, kind: c.1, batchId: c.2, mediaId: c.3, status: status, backend: c.5, backendJobId: c.6,
                prompt: c.7, errorCode: c.8, error: c.9, cost: c.10, attempt: c.11, variationName: c.12,
                correlationId: c.13, resultVersionId: c.14, createdAt: c.15, updatedAt: c.16, submittedAt: c.17,
                completedAt: c.18, notifyURL: c.19, fidelityJSON: c.20))
        }
        return records
    }

    /// Moves a job forward to a non-terminal `status` (never backwards, never out of a terminal
    /// state); with `backend` and `backendJobId` once it was submitted. True when the row changed.
    ///
    /// `dispatcherDeadline` (from GenerationSubmitted) replaces the job's deadline with it plus
    /// ``finishSlack``, and `replyTo` (JSON, from the first event) is kept, even when the status
    /// itself does not move (events may come out of order).
    @discardableResult
    public func advance(
        _ id: UUID, to status: JobStatus, backend: String? = nil, backendJobId: String? = nil, attempt: Int? = nil,
        dispatcherDeadline: Date? = nil, replyToJSON: String? = nil
    ) async throws -> Bool {
        precondition(!status.isTerminal, "terminal states are set by complete/fail/cancel")
        if dispatcherDeadline != nil || replyToJSON != nil {
            try await client.rows("""
                UPDATE generation_jobs SET
                    deadline_at = coalesce(\(dispatcherDeadline)::timestamptz + make_interval(secs => \(finishSlack.timeInterval)), deadline_at),
                    reply_to = coalesce(reply_to, \(replyToJSON)::jsonb)
                WHERE id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
                """, logger: logger)
        }
        let order = JobStatus.progression
        let rows = try await client.rows("""
            UPDATE generation_jobs SET
                status = \(status.rawValue),
                backend = coalesce(\(backend), backend),
                backend_job_id = coalesce(\(backendJobId), backend_job_id),
                attempt = greatest(attempt, coalesce(\(attempt), attempt)),
                submitted_at = CASE WHEN \(status.rawValue) = 'SUBMITTED' THEN coalesce(submitted_at, now()) ELSE submitted_at END,
                updated_at = now()
            WHERE id = \(id)
              AND array_position(\(order)::text[], status) < array_position(\(order)::text[], \(status.rawValue))
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// Ends a job as FAILED unless it already ended. True when this call ended it.
    @discardableResult
    public func fail(_ id: UUID, code: String, message: String, backendJobId: String? = nil) async throws -> Bool {
        let rows = try await client.rows("""
            UPDATE generation_jobs SET status = 'FAILED', error_code = \(code), error = \(message),
                   backend_job_id = coalesce(backend_job_id, \(backendJobId)), completed_at = now(), updated_at = now()
            WHERE id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// Cancels a job that has not ended.
    public func cancel(_ id: UUID) async throws -> CancelOutcome {
        let rows = try await client.rows("""
            UPDATE generation_jobs SET status = 'CANCELLED', error_code = 'cancelled', error = 'cancelled on request',
                   completed_at = now(), updated_at = now()
            WHERE id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return .cancelled }
        guard let job = try await job(id) else { return .notFound }
        return job.status == .cancelled ? .alreadyCancelled : .finished(job.status)
    }

    /// Arms the job's webhook for a new submission: stores the SHA-256 (hex) of its fresh token, which
    /// replaces an earlier attempt's (whose calls are then refused). False when the job is unknown or ended.
    public func armWebhook(_ id: UUID, tokenSHA256: String) async throws -> Bool {
        let rows = try await client.rows("""
            UPDATE generation_jobs SET webhook_token_sha256 = \(tokenSHA256), updated_at = now()
            WHERE id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// What a webhook call for the job is checked against: its status and the SHA-256 (hex) of its
    /// current token (nil when no submission asked for a webhook). nil when the job is unknown.
    public func webhookGuard(_ id: UUID) async throws -> (status: JobStatus, tokenSHA256: String?)? {
        let rows = try await client.rows(
            "SELECT status, webhook_token_sha256 FROM generation_jobs WHERE id = \(id)", logger: logger)
        for (status, token) in try rows.decode((String, String?).self) {
            guard let status = JobStatus(rawValue: status) else {
                throw JobLedgerError(message: "job \(id) has an unknown status \(status)")
            }
            return (status, token)
        }
        return nil
    }

    /// Writes a ledger row for a job that came straight from the broker (no gateway wrote one),
    /// so its progress and result have a place. Does nothing when the row exists or the media does not.
    public func ensure(
        _ id: UUID, mediaId: UUID, kind: String, batchId: UUID?, variationName: String?, correlationId: String
    ) async throws {
        try await client.rows(Self.ensureQuery(
            id, mediaId: mediaId, kind: kind, batchId: batchId, variationName: variationName,
            correlationId: correlationId, queueDeadline: queueDeadline), logger: logger)
    }

    static func ensureQuery(
        _ id: UUID, mediaId: UUID, kind: String, batchId: UUID?, variationName: String?, correlationId: String,
        queueDeadline: Duration = JobLedger.defaultQueueDeadline
    ) -> PostgresQuery {
        // A batch item whose batch row is unknown here keeps its kind only if the batch exists.
        """
        INSERT INTO generation_jobs (id, kind, batch_id, media_id, variation_name, correlation_id, deadline_at)
        SELECT \(id), CASE WHEN \(kind) = 'batch' AND NOT EXISTS (SELECT 1 FROM batches WHERE id = \(batchId)) THEN 'single' ELSE \(kind) END,
               (SELECT id FROM batches WHERE id = \(batchId)), m.id, \(variationName), \(correlationId),
               now() + make_interval(secs => \(queueDeadline.timeInterval))
        FROM media m WHERE m.id = \(mediaId)
        ON CONFLICT (id) DO NOTHING
        """
    }
}

/// A ledger operation that could not be carried out.
public struct JobLedgerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A batch and its jobs, as the ledger knows them.
/// A batch as the list of batches shows it: its state and counts, not its items.
public struct BatchSummary: Sendable, Equatable {
    public var id: UUID
    /// As ``BatchRecord/status``.
    public var status: String
    public var createdAt: Date
    public var total: Int
    /// Items by outcome: `COMPLETED`, `FAILED`, `CANCELLED`, and `RUNNING` for those not ended (zero counts left out).
    public var counts: [String: Int]
    /// USD so far.
    public var cost: Double
    /// Its results wait for review (docs/api.md).
    public var review = false
    /// Results waiting for a decision.
    public var awaitingReview = 0
}

public struct BatchRecord: Sendable, Equatable {
    public var id: UUID
    /// QUEUED, PROCESSING, COMPLETED or CANCELLED, derived from the items (CANCELLED once cancelled).
    public var status: String
    public var createdAt: Date
    public var items: [JobRecord]
    /// Its results wait for review (docs/api.md).
    public var review = false
    /// The batch its failed and cancelled items were retried in.
    public var retriedBy: UUID?

    /// USD so far.
    public var cost: Double { items.reduce(0) { $0 + $1.cost } }
}

extension JobLedger {
    /// Records a batch and all its jobs (QUEUED) in one transaction: once this returns, every item
    /// is durably queued (the outbox sweep publishes any whose request did not reach the broker).
    /// False when the batch exists already (the same request again: nothing is written).
    @discardableResult
    public func insertBatch(id: UUID, optionsJSON: String, review: Bool = false, jobs: [NewJob]) async throws -> Bool {
        let logger = self.logger
        let seconds = queueDeadline.timeInterval
        return try await client.transaction(logger: logger) { connection in
            let created = try await connection.query("""
                INSERT INTO batches (id, options, item_count, review) VALUES (\(id), \(optionsJSON)::jsonb, \(jobs.count), \(review))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """, logger: logger)
            var inserted = false
            for try await _ in created.decode(UUID.self) { inserted = true }
            guard inserted else { return false }
            for job in jobs {
                try await connection.query("""
                    INSERT INTO generation_jobs (id, kind, batch_id, media_id, options, correlation_id, notify_url, deadline_at)
                    VALUES (\(job.id), 'batch', \(id), \(job.mediaId), \(job.optionsJSON)::jsonb, \(job.correlationId),
                            \(job.notifyURL), now() + make_interval(secs => \(seconds)))
                    """, logger: logger)
            }
            return true
        }
    }

    /// The batch with its items in submission order, nil when unknown.
    public func batch(_ id: UUID) async throws -> BatchRecord? {
        let rows = try await client.rows("SELECT status, created_at, review, retried_by FROM batches WHERE id = \(id)", logger: logger)
        var header: (String, Date, Bool, UUID?)?
        for row in try rows.decode((String, Date, Bool, UUID?).self) { header = row }
        guard let (stored, createdAt, review, retriedBy) = header else { return nil }
        let items = try await jobs(query: "\(unescaped: Self.jobColumns) WHERE batch_id = \(id) ORDER BY created_at, id")
        let status: String
        if stored == "CANCELLED" {
            status = "CANCELLED"
        } else if items.allSatisfy({ $0.status.isTerminal }) {
            status = "COMPLETED"
        } else if items.allSatisfy({ $0.status == .queued }) {
            status = "QUEUED"
        } else {
            status = "PROCESSING"
        }
        return BatchRecord(id: id, status: status, createdAt: createdAt, items: items, review: review, retriedBy: retriedBy)
    }

    /// Claims batch `id`'s one retry for batch `retry`: true when it was not retried yet, or its
    /// claimed retry never came to exist (a crash between the claim and the new batch), or the
    /// claim is `retry`'s already (the same request again). False: retried as another batch.
    public func claimRetry(of id: UUID, as retry: UUID) async throws -> Bool {
        let rows = try await client.rows("""
            UPDATE batches SET retried_by = \(retry)
            WHERE id = \(id) AND (retried_by IS NULL OR retried_by = \(retry)
                                   OR NOT EXISTS (SELECT 1 FROM batches r WHERE r.id = batches.retried_by))
            RETURNING id
            """, logger: logger)
        for _ in try rows.decode(UUID.self) { return true }
        return false
    }

    /// Gives a claimed retry back (its new batch could not be started).
    public func releaseRetry(of id: UUID, as retry: UUID) async throws {
        try await client.rows("UPDATE batches SET retried_by = NULL WHERE id = \(id) AND retried_by = \(retry)", logger: logger)
    }

    /// The options a batch was started with (the JSON its jobs carry), nil for an unknown batch.
    public func batchOptionsJSON(_ id: UUID) async throws -> String? {
        let rows = try await client.rows("SELECT options::text FROM batches WHERE id = \(id)", logger: logger)
        for options in try rows.decode(String.self) { return options }
        return nil
    }

    /// One page of batches, newest first, each with its counts (one query), and how many there are.
    public func batches(page: Int, pageSize: Int) async throws -> (items: [BatchSummary], total: Int) {
        let offset = max(0, page - 1) * pageSize
        // The page of batches first (batches_recent), then each one's jobs (generation_jobs_batch).
        let rows = try await client.rows("""
            SELECT b.id, b.status, b.created_at, c.total, c.completed, c.failed, c.cancelled, c.queued, c.cost, b.review,
                   CASE WHEN b.review THEN (SELECT count(*)::int FROM review_candidates r WHERE r.batch_id = b.id AND r.decision IS NULL)
                        ELSE 0 END
            FROM (SELECT id, status, created_at, review FROM batches ORDER BY created_at DESC, id LIMIT \(pageSize) OFFSET \(offset)) b
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS total,
                       (count(*) FILTER (WHERE j.status = 'COMPLETED'))::int AS completed,
                       (count(*) FILTER (WHERE j.status = 'FAILED'))::int AS failed,
                       (count(*) FILTER (WHERE j.status = 'CANCELLED'))::int AS cancelled,
                       (count(*) FILTER (WHERE j.status = 'QUEUED'))::int AS queued,
                       coalesce(sum(j.cost), 0)::float8 AS cost
                FROM generation_jobs j WHERE j.batch_id = b.id) c
            ORDER BY b.created_at DESC, b.id
            """, logger: logger)
        var items: [BatchSummary] = []
        for (id, stored, created, total, completed, failed, cancelled, queued, cost, review, awaiting)
            in try rows.decode((UUID, String, Date, Int, Int, Int, Int, Int, Double, Bool, Int).self) {
            let finished = completed + failed + cancelled
            let status = stored == "CANCELLED" ? "CANCELLED" : finished == total ? "COMPLETED" : queued == total ? "QUEUED" : "PROCESSING"
            items.append(BatchSummary(
                id: id, status: status, createdAt: created, total: total,
                counts: ["COMPLETED": completed, "FAILED": failed, "CANCELLED": cancelled, "RUNNING": total - finished]
                    .filter { $0.value > 0 },
                cost: cost, review: review, awaitingReview: awaiting))
        }
        var total = 0
        for count in try await client.rows("SELECT count(*)::int FROM batches", logger: logger).decode(Int.self) { total = count }
        return (items, total)
    }

    /// Cancels every unfinished job of the batch and then marks the batch CANCELLED (a batch whose
    /// items had all ended keeps its state); the jobs it cancelled, nil for an unknown batch.
    public func cancelBatch(_ id: UUID) async throws -> [UUID]? {
        var exists = false
        for _ in try await client.rows("SELECT id FROM batches WHERE id = \(id)", logger: logger).decode(UUID.self) {
            exists = true
        }
        guard exists else { return nil }
        let rows = try await client.rows("""
            UPDATE generation_jobs SET status = 'CANCELLED', error_code = 'cancelled', error = 'the batch was cancelled',
                   completed_at = now(), updated_at = now()
            WHERE batch_id = \(id) AND status <> ALL(\(JobStatus.terminal)::text[])
            RETURNING id
            """, logger: logger)
        var cancelled: [UUID] = []
        for job in try rows.decode(UUID.self) { cancelled.append(job) }
        if !cancelled.isEmpty {
            try await client.rows(
                "UPDATE batches SET status = 'CANCELLED', finished_at = now(), updated_at = now() WHERE id = \(id) AND status <> 'CANCELLED'",
                logger: logger)
        }
        return cancelled
    }

    /// USD spent on jobs created this calendar month (UTC).
    public func spendThisMonth() async throws -> Double {
        let rows = try await client.rows("""
            SELECT coalesce(sum(cost), 0)::float8 FROM generation_jobs
            WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
            """, logger: logger)
        for spend in try rows.decode(Double.self) { return spend }
        return 0
    }

    /// Claims up to `limit` jobs still QUEUED `olderThan` after they were last touched (their
    /// request may never have reached the broker) and touches them, so that concurrent sweepers
    /// (several gateways) never take the same job and each job is taken again only after another
    /// `olderThan`. Jobs past their deadline are left to ``claimOverdue(limit:)``. Returns them with their options.
    public func claimStaleQueued(olderThan age: Duration, limit: Int = 100) async throws -> [(job: JobRecord, optionsJSON: String)] {
        let seconds = age.timeInterval
        let rows = try await client.rows("""
            UPDATE generation_jobs SET updated_at = now()
            WHERE id IN (
                SELECT id FROM generation_jobs
                WHERE status = 'QUEUED' AND updated_at < now() - make_interval(secs => \(seconds))
                  AND (deadline_at IS NULL OR deadline_at > now())
                ORDER BY updated_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, options::text
            """, logger: logger)
        var found: [(UUID, String)] = []
        for row in try rows.decode((UUID, String).self) { found.append(row) }
        var result: [(job: JobRecord, optionsJSON: String)] = []
        for (id, options) in found {
            if let job = try await job(id) { result.append((job, options)) }
        }
        return result
    }
}

/// An unfinished job past its deadline, as ``JobLedger/claimOverdue(limit:)`` hands it to the reaper.
public struct OverdueJob: Sendable, Equatable {
    public var job: JobRecord
    public var deadline: Date
    /// The requester's extra address for the terminal event (JSON `{exchange, routingKey}`), if known.
    public var replyToJSON: String?
}

extension JobLedger {
    /// Claims up to `limit` unfinished jobs whose deadline has passed and that nobody claimed in the
    /// last 30 s (`reaped_at`, written only here), so that several gateways do not take the same
    /// job at once. The reaper then ends each with GenerationFailed (the ledger follows that
    /// event); a job whose event did not get out is claimed again 30 s later.
    public func claimOverdue(limit: Int = 100) async throws -> [OverdueJob] {
        let rows = try await client.rows("""
            UPDATE generation_jobs SET reaped_at = now()
            WHERE id IN (
                SELECT id FROM generation_jobs
                WHERE status <> ALL(\(JobStatus.terminal)::text[]) AND deadline_at < now()
                  AND (reaped_at IS NULL OR reaped_at < now() - interval '30 seconds')
                ORDER BY deadline_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, deadline_at, reply_to::text
            """, logger: logger)
        var claimed: [(UUID, Date, String?)] = []
        for row in try rows.decode((UUID, Date, String?).self) { claimed.append(row) }
        var result: [OverdueJob] = []
        for (id, deadline, replyTo) in claimed {
            if let job = try await job(id) { result.append(OverdueJob(job: job, deadline: deadline, replyToJSON: replyTo)) }
        }
        return result
    }
}

extension GenerationKind {
    /// The ledger's name for the kind (`generation_jobs.kind`).
    public var ledgerKind: String {
        switch self {
        case .single: "single"
        case .batchItem: "batch"
        case .variation: "variation"
        }
    }
}
