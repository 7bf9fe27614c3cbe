import Database
import Foundation
import Hummingbird
import Logging
import ServiceCore
import ServiceSupport
import Shared
import Synchronization

/// Tells the open event streams of this process that a job changed. A notice carries no state: the
/// stream re-reads the ledger, so what it shows is always what the status endpoint would answer.
final class JobEventHub: Sendable {
    struct Notice: Sendable {
        var detail: String?
    }

    private let subscribers = Mutex<[UUID: [UUID: AsyncStream<Notice>.Continuation]]>([:])

    /// A stream of notices about `jobId`, until the returned stream is dropped.
    func subscribe(_ jobId: UUID) -> AsyncStream<Notice> {
        let (stream, continuation) = AsyncStream<Notice>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let token = UUID()
        subscribers.withLock { $0[jobId, default: [:]][token] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { all in
                all[jobId]?[token] = nil
                if all[jobId]?.isEmpty == true { all[jobId] = nil }
            }
        }
        return stream
    }

    func notify(_ jobId: UUID, detail: String? = nil) {
        let listeners = subscribers.withLock { Array(($0[jobId] ?? [:]).values) }
        for listener in listeners { listener.yield(Notice(detail: detail)) }
    }
}

/// Applies job events to the ledger (the gateway's job-events queue) and wakes the event streams.
struct JobEventRecorder: Sendable {
    let ledger: JobLedger
    let hub: JobEventHub
    let logger: Logger

    func record(_ event: AnyMessage) async throws -> HandlingOutcome {
        switch event {
        case .generationProgressed(let progress):
            try await ledger.advance(
                progress.jobId, to: Self.status(of: progress.stage), replyToJSON: try progress.replyTo.map(Self.json))
            hub.notify(progress.jobId, detail: progress.detail)
        case .generationSubmitted(let submitted):
            try await ledger.advance(
                submitted.jobId, to: .submitted, backend: submitted.backend.rawValue, backendJobId: submitted.backendJobId,
                dispatcherDeadline: submitted.deadline)
            hub.notify(submitted.jobId)
        case .generationFailed(let failed):
            try await ensure(failed.jobId, mediaId: failed.mediaId, correlationId: failed.correlationId)
            try await ledger.fail(failed.jobId, code: failed.code.rawValue, message: failed.reason, backendJobId: failed.backendJobId)
            hub.notify(failed.jobId)
        case .generationRendered(let rendered):
            // The backend has the result; the ingestor downloads it next.
            try await ledger.advance(rendered.jobId, to: .downloading)
            hub.notify(rendered.jobId)
        case .generationCompleted(let completed):
            // The ingestor marked the job COMPLETED in the same transaction as the new version.
            hub.notify(completed.jobId)
        case .mediaUpdated, .requestGeneration, .dispatchGeneration, .settingsRequest, .settingsReply, .settingsChanged,
             .backendWebhookReceived:
            break
        }
        return .done
    }

    /// Every accepted job has its ledger row (written at the gateway's intake, or by the prompt-service
    /// for a job published straight onto the broker); an event never creates one, so a forged event
    /// cannot make a job that a result could then be applied to. A failure is the exception: a job
    /// that failed before the prompt-service wrote its row (its request given up) is still recorded,
    /// as FAILED, which can apply nothing.
    private func ensure(_ jobId: UUID, mediaId: UUID, correlationId: String) async throws {
        try await ledger.ensure(jobId, mediaId: mediaId, kind: "single", batchId: nil, variationName: nil, correlationId: correlationId)
    }

    static func json(_ address: ReplyAddress) throws -> String {
        String(decoding: try JSONEncoder().encode(address), as: UTF8.self)
    }

    static func status(of stage: GenerationStage) -> JobStatus {
        switch stage {
        case .queued: .queued
        case .prompting: .prompting
        case .submitted: .submitted
        case .inProgress: .inProgress
        case .downloading: .downloading
        }
    }
}

/// One job as Server-Sent Events: the current state first, then every change, until a terminal
/// state. Event names are the lower-case statuses (`queued` … `in_progress`, `completed`, `failed`,
/// `cancelled`); each `data:` is a ``JobEventJSON``. A comment line every 15 s keeps proxies from
/// closing an idle stream.
struct JobEventStream: Sendable {
    let jobId: UUID
    let ledger: JobLedger
    let media: MediaStore
    let hub: JobEventHub
    let refresh: Duration

    func write(to writer: inout any ResponseBodyWriter) async throws {
        let notices = hub.subscribe(jobId)
        // One merged stream of wake-ups: hub notices, and a tick so a change recorded by another
        // gateway instance is seen too.
        let (wakeups, wake) = AsyncStream<JobEventHub.Notice>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let forward = Task {
            for await notice in notices { wake.yield(notice) }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: refresh)
                wake.yield(JobEventHub.Notice(detail: nil))
            }
        }
        defer {
            forward.cancel()
            ticker.cancel()
            wake.finish()
        }
        var last: (status: JobStatus, detail: String?)?
        var lastWrite = ContinuousClock.now
        var pending: JobEventHub.Notice? = JobEventHub.Notice(detail: nil)
        var iterator = wakeups.makeAsyncIterator()
        while true {
            let detail = pending?.detail
            guard let job = try await ledger.job(jobId) else { break }
            if last?.status != job.status || (detail != nil && detail != last?.detail) {
                let current = job.status == .completed ? try await media.media(job.mediaId) : nil
                let event = JobEventJSON(job, detail: detail, media: current)
                try await writer.write(ByteBuffer(string: "event: \(event.stage)\ndata: \(try GenerationController.json(event))\n\n"))
                last = (job.status, detail ?? last?.detail)
                lastWrite = .now
            } else if ContinuousClock.now - lastWrite > .seconds(15) {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                lastWrite = .now
            }
            if job.status.isTerminal { break }
            pending = await iterator.next()
            if pending == nil { break }
        }
        try await writer.finish(nil)
    }
}

/// One Server-Sent Event about a job.
struct JobEventJSON: Codable, Equatable {
    var jobId: String
    var mediaId: String
    var status: String
    /// The event name: the status in lower case (`in_progress`).
    var stage: String
    /// The backend's progress text, when it gives one.
    var detail: String?
    var error: ErrorJSON?
    var media: MediaJSON?

    init(_ job: JobRecord, detail: String?, media: MediaRecord?) {
        jobId = job.id.lowercasedString
        mediaId = job.mediaId.lowercasedString
        status = job.status.rawValue
        stage = job.status.rawValue.lowercased()
        self.detail = detail
        error = ErrorJSON(job: job)
        self.media = media.map { MediaJSON($0) }
    }
}

/// One batch as Server-Sent Events: `item` (a job's status changed; data: ``JobEventJSON`` without
/// media) and `batch` (the summary: ``BatchStatusResponse`` without items), the current state first,
/// until the batch is COMPLETED or CANCELLED.
struct BatchEventStream: Sendable {
    let batchId: UUID
    let ledger: JobLedger
    let hub: JobEventHub
    let refresh: Duration

    struct Summary: Encodable {
        var batchId: String
        var status: String
        var total: Int
        var counts: [String: Int]
        var remainingInQueue: Int
        var cost: Double
    }

    func write(to writer: inout any ResponseBodyWriter) async throws {
        guard let first = try await ledger.batch(batchId) else { return try await writer.finish(nil) }
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        var listeners: [Task<Void, Never>] = first.items.map { item in
            let notices = hub.subscribe(item.id)
            return Task { for await _ in notices { wake.yield() } }
        }
        listeners.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: refresh)
                wake.yield()
            }
        })
        defer {
            listeners.forEach { $0.cancel() }
            wake.finish()
        }
        var known: [UUID: JobStatus] = [:]
        var lastSummary = ""
        var iterator = wakeups.makeAsyncIterator()
        while true {
            guard let batch = try await ledger.batch(batchId) else { break }
            for item in batch.items where known[item.id] != item.status {
                known[item.id] = item.status
                let event = JobEventJSON(item, detail: nil, media: nil)
                try await writer.write(ByteBuffer(string: "event: item\ndata: \(try GenerationController.json(event))\n\n"))
            }
            let full = BatchStatusResponse(batch)
            let summary = try GenerationController.json(Summary(
                batchId: full.batchId, status: full.status, total: full.total, counts: full.counts,
                remainingInQueue: full.remainingInQueue, cost: full.cost))
            if summary != lastSummary {
                try await writer.write(ByteBuffer(string: "event: batch\ndata: \(summary)\n\n"))
                lastSummary = summary
            }
            if batch.status == "COMPLETED" || batch.status == "CANCELLED" { break }
            guard await iterator.next() != nil else { break }
        }
        try await writer.finish(nil)
    }
}

