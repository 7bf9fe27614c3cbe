import Crypto
import Database
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Messaging
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

/// The body of `POST /api/ai-image/generate/:mediaId`, checked field by field so a 400 names the field.
enum GenerationRequestBody {
    static let fields: Set<String> = ["shadowStyle", "backgroundColor", "customInstructions", "removeWatermark", "upscale", "framing"]

    /// The body of `generate`: the options and, apart from them, `notifyUrl` (nil when absent).
    static func parseRequest(_ body: [UInt8]) throws -> (options: GenerationOptions, notifyUrl: JSONValue?) {
        if body.isBlank { return (GenerationOptions(), nil) }
        var object = try object(body)
        let notify = object.removeValue(forKey: "notifyUrl")
        do {
            return (try parse(object: object), notify)
        } catch let error as APIError where error.code == "invalid_field" && error.message.contains("is not a generation option") {
            throw APIError.badRequest("\(error.message), notifyUrl", code: error.code)
        }
    }

    static func parse(_ body: [UInt8]) throws -> GenerationOptions {
        if body.isBlank { return GenerationOptions() }
        return try parse(object: try object(body))
    }

    private static func object(_ body: [UInt8]) throws -> [String: JSONValue] {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object", code: "invalid_body")
        }
        return object
    }

    static func parse(object: [String: JSONValue]) throws -> GenerationOptions {
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw invalid(unknown, "is not a generation option; known: \(fields.sorted().joined(separator: ", "))")
        }
        var options = GenerationOptions()
        if let raw = present(object["shadowStyle"]) {
            guard case .string(let text) = raw, let style = ShadowStyle(rawValue: text.lowercased()) else {
                throw invalid("shadowStyle", "must be one of minimal, soft, dramatic, none; got \(raw.jsonText.prefix(64))")
            }
            options.shadowStyle = style
        }
        if let raw = present(object["backgroundColor"]) {
            guard case .string(let text) = raw, let color = BackgroundColor(text) else {
                throw invalid("backgroundColor", "must be a #RRGGBB colour or \"transparent\"; got \(raw.jsonText.prefix(64))")
            }
            options.backgroundColor = color
        }
        if let raw = present(object["customInstructions"]) {
            guard case .string(let text) = raw else { throw invalid("customInstructions", "must be a string") }
            options.customInstructions = text
        }
        if let raw = present(object["removeWatermark"]) {
            guard case .bool(let flag) = raw else { throw invalid("removeWatermark", "must be true or false") }
            options.removeWatermark = flag
        }
        if let raw = present(object["upscale"]) {
            guard case .int(let factor) = raw, let upscale = UpscaleFactor(rawValue: factor) else {
                throw invalid("upscale", "must be 1, 2 or 4; got \(raw.jsonText.prefix(32))")
            }
            options.upscale = upscale
        }
        if let raw = present(object["framing"]) {
            do {
                options.framing = try Framing(parsing: raw, strict: true)
            } catch {
                throw invalid(error.field, error.reason)
            }
        }
        do {
            try options.validate(at: "")
        } catch {
            throw invalid(error.field.trimmingCharacters(in: CharacterSet(charactersIn: ".")), error.reason)
        }
        return options
    }

    /// nil for an absent field or JSON null (both mean "the default").
    private static func present(_ value: JSONValue?) -> JSONValue? {
        guard let value, value != .null else { return nil }
        return value
    }

    private static func invalid(_ field: String, _ reason: String) -> APIError {
        APIError.badRequest("\(field) \(reason)", code: "invalid_field")
    }
}

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

extension Array where Element == UInt8 {
    /// Empty or only whitespace: a body that says nothing.
    var isBlank: Bool { allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } }
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
