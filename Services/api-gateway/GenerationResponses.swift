import Database
import Foundation
import Hummingbird
import Shared

// The JSON answers of the generation routes (generate, cancel, status) and the error object they share.

struct GenerateResponse: Encodable {
    var success = true
    var jobId: String
    var status = JobStatus.queued.rawValue
    var message = "Generation started"
}

struct CancelResponse: Encodable {
    var success = true
    var jobId: String
    var status = JobStatus.cancelled.rawValue
}

struct ErrorJSON: Codable, Equatable {
    var code: String
    var message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// Why a job ended, for a FAILED or CANCELLED job; nil otherwise.
    init?(job: JobRecord) {
        guard job.status == .failed || job.status == .cancelled else { return nil }
        let status = job.status.rawValue.lowercased()
        self.init(code: job.errorCode ?? status, message: job.error ?? "the job \(status)")
    }
}

/// `GET /api/ai-image/status/:jobId`: the seed's `{success, status}`, with `media` and `generationTime`
/// once COMPLETED and `error` once FAILED or CANCELLED.
struct JobStatusResponse: ResponseCodable, Equatable {
    var success = true
    var jobId: String
    var mediaId: String
    /// The batch the job belongs to, if any.
    var batchId: String?
    /// Where the job's terminal event is POSTed (user information hidden), if anywhere.
    var notifyUrl: String?
    var status: String
    var backend: String
    var createdAt: String
    var updatedAt: String
    var media: MediaJSON?
    /// Seconds from acceptance to completion.
    var generationTime: Double?
    /// USD.
    var cost: Double?
    var error: ErrorJSON?
    /// The fidelity guard's verdict on a RunPod result (docs/fidelity.md), once it was checked.
    var fidelity: FidelityJSON?

    /// `{score, threshold, decision}`: the share of the photo's product the result kept, the
    /// threshold below which it counts as changed, and what was done (kept, restored, rejected, unchecked).
    struct FidelityJSON: Codable, Equatable {
        var score: Double
        var threshold: Double
        var decision: String
    }

    init(_ job: JobRecord, media: MediaRecord?) {
        jobId = job.id.lowercasedString
        mediaId = job.mediaId.lowercasedString
        batchId = job.batchId?.lowercasedString
        notifyUrl = job.notifyURL.map(NotifyURL.redacted)
        status = job.status.rawValue
        backend = job.backend
        createdAt = MessageCoding.formatTimestamp(job.createdAt)
        updatedAt = MessageCoding.formatTimestamp(job.updatedAt)
        if job.status == .completed {
            self.media = media.map { MediaJSON($0) }
            generationTime = job.completedAt.map { (($0.timeIntervalSince(job.createdAt)) * 1000).rounded() / 1000 }
            cost = job.cost
        }
        error = ErrorJSON(job: job)
        fidelity = job.fidelityJSON.flatMap { try? JSONDecoder().decode(FidelityJSON.self, from: Data($0.utf8)) }
    }
}

/// `GET /api/ai-image/jobs/:jobId/notification`: where the job's terminal event goes and every
/// attempt so far. `status` is WAITING until the job ends, then PENDING, DELIVERED or ABANDONED.
struct NotificationResponse: ResponseCodable, Equatable {
    struct Attempt: Codable, Equatable {
        var number: Int
        var startedAt: String
        /// nil while under way (or when its sender stopped during it).
        var durationMs: Int?
        var statusCode: Int?
        var error: String?
    }

    var success = true
    var jobId: String
    /// The notification's id: the `id` of the body and the `Cyclorama-Notification-Id` header.
    var id: String?
    /// User information hidden.
    var url: String
    var event: String?
    var status: String
    var attemptCount: Int
    var attempts: [Attempt]
    var nextAttemptAt: String?
    var lastError: String?
    var createdAt: String?
    var finishedAt: String?

    init(waitingFor job: JobRecord, url: String) {
        jobId = job.id.lowercasedString
        self.url = NotifyURL.redacted(url)
        status = "WAITING"
        attemptCount = 0
        attempts = []
    }

    init(_ record: NotificationRecord, attempts: [NotificationAttempt]) {
        jobId = record.jobId.lowercasedString
        id = record.id.lowercasedString
        url = NotifyURL.redacted(record.url)
        event = record.event
        status = record.status.rawValue
        attemptCount = record.attempts
        self.attempts = attempts.map {
            Attempt(
                number: $0.number, startedAt: MessageCoding.formatTimestamp($0.startedAt), durationMs: $0.durationMilliseconds,
                statusCode: $0.statusCode, error: $0.error)
        }
        nextAttemptAt = record.status == .pending ? MessageCoding.formatTimestamp(record.nextAttemptAt) : nil
        lastError = record.lastError
        createdAt = MessageCoding.formatTimestamp(record.createdAt)
        finishedAt = record.finishedAt.map(MessageCoding.formatTimestamp)
    }
}
