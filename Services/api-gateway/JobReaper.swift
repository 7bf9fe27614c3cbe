import Database
import Foundation
import Logging
import Messaging
import Redis
import ServiceCore
import ServiceSupport
import Shared

/// Keeps every accepted job moving until it ends (docs/reliability.md), from the ledger, every
/// ``interval``:
///
/// - **the outbox**: a job still QUEUED ``outboxAfter`` after it was last touched has its request
///   published again (its publish failed after the ledger row was written, or the gateway died in
///   between). A request that was only slow is then seen twice, which every consumer tolerates.
/// - **deadlines**: an unfinished job past its `deadline_at` is ended `timed_out`: its cancel flag
///   is set (a dispatcher still following it cancels it at the backend) and GenerationFailed goes
///   to `cyclorama.events` and to the requester's `replyTo`; the ledger follows that event.
///
/// Each sweep claims its jobs in the ledger (`FOR UPDATE SKIP LOCKED` and a touch), so several
/// gateways never take the same job at once; a job whose event did not get out is taken again.
/// Run it with ``PeriodicWork`` (every `JOB_REAPER_INTERVAL_SECONDS`).
struct JobReaper: Sendable {
    let ledger: JobLedger
    let broker: AMQPConnection
    let redis: RedisClient
    let logger: Logger
    var outboxAfter: Duration = .seconds(60)

    func sweep() async throws {
        try await republishQueued()
        try await endOverdue()
    }

    func republishQueued() async throws {
        for (job, optionsJSON) in try await ledger.claimStaleQueued(olderThan: outboxAfter) {
            let options = (try? JSONDecoder().decode(GenerationOptions.self, from: Data(optionsJSON.utf8))) ?? GenerationOptions()
            let kind = Self.kind(of: job)
            try await broker.publish(RequestGeneration(
                correlationId: job.correlationId, jobId: job.id, mediaId: job.mediaId, kind: kind,
                batchId: kind == .batchItem ? job.batchId : nil, variationName: kind == .variation ? job.variationName : nil,
                options: options, requestedBy: "api-gateway (outbox)"))
            logger.info("outbox: published a queued job's request again", metadata: ["jobId": "\(job.id)"])
        }
    }

    func endOverdue() async throws {
        for overdue in try await ledger.claimOverdue() {
            let job = overdue.job
            // First the flag, so that a dispatcher still following the job cancels it at the backend.
            try await redis.set(JobKeys.cancelled(job.id), "1", expiration: JobKeys.cancelFlagLifetime)
            let kind = Self.kind(of: job)
            let failed = GenerationFailed(
                correlationId: job.correlationId ?? job.id.uuidString, jobId: job.id, mediaId: job.mediaId, kind: kind,
                batchId: kind == .batchItem ? job.batchId : nil, variationName: kind == .variation ? job.variationName : nil,
                backendJobId: job.backendJobId, reason: Self.reason(job, deadline: overdue.deadline), code: .timedOut,
                retryable: true)
            let replyTo = overdue.replyToJSON.flatMap { try? JSONDecoder().decode(ReplyAddress.self, from: Data($0.utf8)) }
            try await broker.publishTerminal(failed, replyTo: replyTo, logger: logger)
            logger.warning(
                "ended a job past its deadline",
                metadata: ["jobId": "\(job.id)", "status": "\(job.status.rawValue)", "deadline": "\(overdue.deadline)"])
        }
    }

    static func reason(_ job: JobRecord, deadline: Date) -> String {
        let when = MessageCoding.formatTimestamp(deadline)
        switch job.status {
        case .queued, .prompting:
            return "the job was still \(job.status.rawValue) at its deadline (\(when)): it was not submitted to a backend within JOB_QUEUE_DEADLINE_SECONDS of being accepted"
        default:
            return "the job was still \(job.status.rawValue) at its deadline (\(when)): no result within the dispatcher's deadline plus JOB_FINISH_SLACK_SECONDS"
        }
    }

    static func kind(of job: JobRecord) -> GenerationKind {
        if job.kind == "batch", job.batchId != nil { return .batchItem }
        if job.kind == "variation", job.variationName != nil { return .variation }
        return .single
    }
}
