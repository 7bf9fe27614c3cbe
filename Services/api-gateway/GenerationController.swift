import Database
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Redis
import ServiceCore
import ServiceSupport
import Shared

/// `/api/ai-image`: start a generation, read its status, cancel it, follow it as Server-Sent Events.
struct GenerationController: Sendable {
    let media: MediaStore
    let ledger: JobLedger
    let intake: GenerationIntake
    let notifications: NotificationStore
    let redis: RedisClient
    let hub: JobEventHub
    let logger: Logger
    /// How often an open event stream re-reads the ledger when no event arrives (multi-instance safety net).
    var streamRefresh: Duration = .seconds(2)

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.post("/ai-image/generate/:mediaId", use: generate)
        group.get("/ai-image/status/:jobId", use: status)
        group.post("/ai-image/jobs/:jobId/cancel", use: cancel)
        group.get("/ai-image/jobs/:jobId/notification", use: notification)
        group.get("/ai-image/events", use: events)
    }

    // MARK: Generate

    @Sendable func generate(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let mediaId = try MediaController.uuid(context, "mediaId")
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        let (options, notifyField) = try GenerationRequestBody.parseRequest(body)
        let (status, json): (HTTPResponse.Status, String) = try await {
            guard let item = try await media.media(mediaId) else {
                throw APIError.notFound("no media \(mediaId.lowercasedString)")
            }
            guard item.file.mimeType.hasPrefix("image/") else {
                throw APIError.badRequest(
                    "media \(mediaId.lowercasedString) is \(item.file.mimeType), not an image", code: "not_an_image")
            }
            try await intake.admit()
            let notifyURL = try await intake.notifyURL(notifyField)
            let jobId = GenerationIntake.ids(for: request).id("job")
            let command = RequestGeneration(jobId: jobId, mediaId: mediaId, options: options, requestedBy: "api-gateway")
            // Accepted once the ledger has it (GenerationIntake): no 503 after this line.
            if try await ledger.insert(NewJob(
                id: jobId, mediaId: mediaId, optionsJSON: try Self.json(options), correlationId: command.correlationId,
                notifyURL: notifyURL)) {
                await intake.publish([command])
            } else {
                // The same request again (its Idempotency-Key): the job it created, not a second one.
                guard let existing = try await ledger.job(jobId), existing.mediaId == mediaId else {
                    throw APIError(.conflict, code: "idempotency_conflict",
                                   message: "this Idempotency-Key created a job for other media; use a new key")
                }
            }
            return (.accepted, try Self.json(GenerateResponse(jobId: jobId.lowercasedString)))
        }()
        return Self.response(status, json)
    }

    // MARK: Status

    @Sendable func status(_ request: Request, context: ServiceRequestContext) async throws -> JobStatusResponse {
        let jobId = try MediaController.uuid(context, "jobId")
        guard let job = try await ledger.job(jobId) else { throw APIError.notFound("no generation job \(jobId.lowercasedString)") }
        return try await JobStatusResponse(job, media: job.status == .completed ? media.media(job.mediaId) : nil)
    }

    // MARK: Notification

    /// The job's HTTP notification and every attempt (docs/notifications.md); 404 `no_notification`
    /// for a job asked for without one.
    @Sendable func notification(_ request: Request, context: ServiceRequestContext) async throws -> NotificationResponse {
        let jobId = try MediaController.uuid(context, "jobId")
        guard let job = try await ledger.job(jobId) else { throw APIError.notFound("no generation job \(jobId.lowercasedString)") }
        guard let url = job.notifyURL else {
            throw APIError(.notFound, code: "no_notification", message: "job \(jobId.lowercasedString) was asked for without a notifyUrl")
        }
        guard let (record, attempts) = try await notifications.notification(forJob: jobId) else {
            return NotificationResponse(waitingFor: job, url: url)
        }
        return NotificationResponse(record, attempts: attempts)
    }

    // MARK: Cancel

    @Sendable func cancel(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let jobId = try MediaController.uuid(context, "jobId")
        switch try await ledger.cancel(jobId) {
        case .notFound:
            throw APIError.notFound("no generation job \(jobId.lowercasedString)")
        case .finished(let status):
            throw APIError(.conflict, code: "job_finished", message: "job \(jobId.lowercasedString) already ended as \(status.rawValue)")
        case .cancelled, .alreadyCancelled:
            // The dispatcher sees the flag on its next look at the job and cancels it at the backend;
            // the ingestor never applies a cancelled job's result (the ledger says CANCELLED).
            try await redis.set(JobKeys.cancelled(jobId), "1", expiration: JobKeys.cancelFlagLifetime)
            hub.notify(jobId)
            return Self.response(.ok, try Self.json(CancelResponse(jobId: jobId.lowercasedString)))
        }
    }

    // MARK: Events

    @Sendable func events(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"]
        if let raw = request.uri.queryParameters["batchId"].map(String.init), !raw.isEmpty {
            guard let batchId = UUID(uuidString: raw) else {
                throw APIError.badRequest("batchId must be a UUID; got \"\(raw.prefix(64))\"", code: "invalid_field")
            }
            guard try await ledger.batch(batchId) != nil else { throw APIError.notFound("no batch \(batchId.lowercasedString)") }
            let stream = BatchEventStream(batchId: batchId, ledger: ledger, hub: hub, refresh: streamRefresh)
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await stream.write(to: &writer) })
        }
        guard let raw = request.uri.queryParameters["jobId"].map(String.init), !raw.isEmpty else {
            throw APIError.badRequest("the query parameter jobId (or batchId) is required", code: "invalid_field")
        }
        guard let jobId = UUID(uuidString: raw) else {
            throw APIError.badRequest("jobId must be a UUID; got \"\(raw.prefix(64))\"", code: "invalid_field")
        }
        guard try await ledger.job(jobId) != nil else { throw APIError.notFound("no generation job \(jobId.lowercasedString)") }
        let stream = JobEventStream(jobId: jobId, ledger: ledger, media: media, hub: hub, refresh: streamRefresh)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await stream.write(to: &writer) })
    }

    static func response(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension APIError {
    /// The JSON error body, as the error middleware writes it.
    var jsonBody: String {
        (try? GenerationController.json(["error": ["code": code, "message": message]])) ?? "{}"
    }
}
