import Database
import Foundation
import Hummingbird
import Logging
import Messaging
import Redis
import ServiceLifecycle
import ServiceCore
import ServiceSupport
import Shared

/// `/api/ai-image/batch`: many media at once. Unlike the seed (which started a few and dropped the
/// rest), every item is queued durably: the batch and all its jobs are one transaction in the
/// ledger, then each request is published; whatever does not reach the broker (a crash, a broker
/// outage) is published later by the ``OutboxSweeper``. The global concurrency limit decides how
/// many run at once.
struct BatchController: Sendable {
    static let maxItems = 500

    let media: MediaStore
    let ledger: JobLedger
    let intake: GenerationIntake
    let redis: RedisClient
    let hub: JobEventHub
    let logger: Logger

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.post("/ai-image/batch", use: create)
        group.get("/ai-image/batch/:batchId", use: show)
        group.post("/ai-image/batch/:batchId/cancel", use: cancel)
        group.post("/ai-image/batch/:batchId/retry", use: retry)
        group.get("/ai-image/batches", use: list)
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 256 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {mediaIds, options, notifyUrl}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { !["mediaIds", "options", "notifyUrl"].contains($0) }) {
            throw APIError.badRequest("\(unknown) is not a batch field; known: mediaIds, options, notifyUrl", code: "invalid_field")
        }
        guard case .array(let rawIds)? = object["mediaIds"], !rawIds.isEmpty else {
            throw APIError.badRequest("mediaIds must be a non-empty array of media ids", code: "invalid_field")
        }
        // As the OpenAPI document says (maxItems), before duplicates are removed.
        guard rawIds.count <= Self.maxItems else {
            throw APIError.badRequest("mediaIds holds \(rawIds.count) ids; at most \(Self.maxItems) per batch", code: "invalid_field")
        }
        var ids: [UUID] = []
        var seen = Set<UUID>()
        for (index, raw) in rawIds.enumerated() {
            guard let text = raw.stringValue, let id = UUID(uuidString: text) else {
                throw APIError.badRequest("mediaIds[\(index)] must be a UUID; got \(raw.jsonText)", code: "invalid_field")
            }
            if seen.insert(id).inserted { ids.append(id) }
        }
        guard ids.count <= Self.maxItems else {
            throw APIError.badRequest("mediaIds holds \(ids.count) distinct ids; at most \(Self.maxItems) per batch", code: "invalid_field")
        }
        let optionsValue = object["options"] ?? .object([:])
        guard optionsValue == .null || optionsValue.objectValue != nil else {
            throw APIError.badRequest("options must be an object like the body of generate", code: "invalid_field")
        }
        let options: GenerationOptions
        do {
            options = try GenerationRequestBody.parse(object: optionsValue.objectValue ?? [:])
        } catch let error as APIError {
            throw APIError.badRequest("options.\(error.message)", code: error.code)
        }
        return try await start(
            ids, options: options, notifyURL: try await intake.notifyURL(object["notifyUrl"]), newIds: GenerationIntake.ids(for: request))
    }

    /// Queues a batch of `ids` (checked: every one a media image of the library) with `options`;
    /// the batch's and jobs' ids come from `newIds`.
    private func start(_ ids: [UUID], options: GenerationOptions, notifyURL: String?, newIds: IdempotentIDs) async throws -> Response {
        var unknown: [UUID] = []
        var notImages: [UUID] = []
        for id in ids {
            guard let item = try await media.media(id) else { unknown.append(id); continue }
            if !item.file.mimeType.hasPrefix("image/") { notImages.append(id) }
        }
        if !unknown.isEmpty {
            // 404 as for one generation: the body names media that do not exist.
            throw APIError(.notFound, code: "unknown_media", message: "unknown media: \(unknown.map(\.lowercasedString).joined(separator: ", "))")
        }
        if !notImages.isEmpty {
            throw APIError.badRequest(
                "not images: \(notImages.map(\.lowercasedString).joined(separator: ", "))", code: "not_an_image")
        }

        try await intake.admit()
        let batchId = newIds.id("batch")
        let optionsJSON = try GenerationController.json(options)
        let requests = ids.map { id in
            RequestGeneration(
                correlationId: batchId.uuidString, jobId: newIds.id("job:\(id.lowercasedString)"), mediaId: id, kind: .batchItem,
                batchId: batchId, options: options, requestedBy: "api-gateway")
        }
        // Accepted once the ledger has the batch (GenerationIntake); the same request again finds it.
        if try await ledger.insertBatch(
            id: batchId, optionsJSON: optionsJSON,
            jobs: requests.map { NewJob(
                id: $0.jobId, kind: "batch", batchId: batchId, mediaId: $0.mediaId, optionsJSON: optionsJSON,
                correlationId: $0.correlationId, notifyURL: notifyURL)
            }) {
            await intake.publish(requests)
        } else {
            guard let existing = try await ledger.batch(batchId), Set(existing.items.map(\.id)) == Set(requests.map(\.jobId)) else {
                throw APIError(.conflict, code: "idempotency_conflict",
                               message: "this Idempotency-Key created a batch of other media; use a new key")
            }
        }
        let answer = BatchCreatedResponse(
            batchId: batchId.lowercasedString,
            jobs: requests.map { .init(mediaId: $0.mediaId.lowercasedString, jobId: $0.jobId.lowercasedString, status: JobStatus.queued.rawValue) },
            remainingInQueue: requests.count,
            message: "Queued \(requests.count) generations")
        return GenerationController.response(.accepted, try GenerationController.json(answer))
    }

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> BatchStatusResponse {
        let id = try MediaController.uuid(context, "batchId")
        guard let batch = try await ledger.batch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        return try await answer(batch)
    }

    /// The batch with its items' names (one query for all of them) and the batch it was retried as.
    private func answer(_ batch: BatchRecord) async throws -> BatchStatusResponse {
        let names = Dictionary(
            try await media.media(ids: Array(Set(batch.items.map(\.mediaId)))).map { ($0.id, $0.originalFilename) },
            uniquingKeysWith: { first, _ in first })
        var answer = BatchStatusResponse(batch)
        answer.retriedBy = try await ledger.retriedBy(batch.id).map(\.lowercasedString)
        for index in answer.items.indices {
            answer.items[index].originalName = UUID(uuidString: answer.items[index].mediaId).flatMap { names[$0] ?? nil }
        }
        return answer
    }

    /// `GET /api/ai-image/batches?page=&pageSize=`: the batches, newest first, with their counts.
    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> BatchListResponse {
        let query = request.uri.queryParameters
        let page = try MediaController.integer(query["page"].map(String.init), name: "page", default: 1, range: 1...100_000)
        let pageSize = try MediaController.integer(query["pageSize"].map(String.init), name: "pageSize", default: 20, range: 1...100)
        let (items, total) = try await ledger.batches(page: page, pageSize: pageSize)
        return BatchListResponse(items: items.map(BatchListResponse.Item.init), page: page, pageSize: pageSize, total: total)
    }

    /// `POST /api/ai-image/batch/:batchId/retry`: a new batch of the items that did not succeed
    /// (failed or cancelled), with the same options and notification URL. Items deleted since are
    /// left out; 409 `nothing_to_retry` when no item is left (all succeeded, or the batch still
    /// runs them).
    @Sendable func retry(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = try MediaController.uuid(context, "batchId")
        guard let batch = try await ledger.batch(id), let optionsJSON = try await ledger.batchOptionsJSON(id) else {
            throw APIError.notFound("no batch \(id.lowercasedString)")
        }
        let unsuccessful = batch.items.filter { $0.status == .failed || $0.status == .cancelled }
        let present = Set(try await media.media(ids: unsuccessful.map(\.mediaId)).map(\.id))
        var ids: [UUID] = []
        for job in unsuccessful where present.contains(job.mediaId) && !ids.contains(job.mediaId) { ids.append(job.mediaId) }
        guard !ids.isEmpty else {
            throw APIError(.conflict, code: "nothing_to_retry", message: unsuccessful.isEmpty
                ? "no item of batch \(id.lowercasedString) failed or was cancelled"
                : "the items of batch \(id.lowercasedString) that did not succeed are no longer in the library")
        }
        let options = try JSONDecoder().decode(GenerationOptions.self, from: Data(optionsJSON.utf8))
        // A batch is retried once: a second retry (another tab, the batch opened again) would pay twice.
        // One set of ids for the claim and the batch (random ones too, without an Idempotency-Key).
        let newIds = GenerationIntake.ids(for: request).key == nil
            ? IdempotentIDs(key: "retry\n\(UUID().uuidString)") : GenerationIntake.ids(for: request)
        let retryId = newIds.id("batch")
        guard try await ledger.claimRetry(of: id, as: retryId) else {
            let other = try await ledger.retriedBy(id)
            throw APIError(.conflict, code: "already_retried",
                           message: "batch \(id.lowercasedString) was retried already as batch \(other?.lowercasedString ?? "?")")
        }
        do {
            return try await start(ids, options: options, notifyURL: unsuccessful.first?.notifyURL, newIds: newIds)
        } catch {
            try? await ledger.releaseRetry(of: id, as: retryId)
            throw error
        }
    }

    @Sendable func cancel(_ request: Request, context: ServiceRequestContext) async throws -> BatchStatusResponse {
        let id = try MediaController.uuid(context, "batchId")
        guard let cancelled = try await ledger.cancelBatch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        for jobId in cancelled {
            // The dispatcher cancels the ones at the backend; queued ones never start.
            try await redis.set(JobKeys.cancelled(jobId), "1", expiration: JobKeys.cancelFlagLifetime)
            hub.notify(jobId)
        }
        guard let batch = try await ledger.batch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        return try await answer(batch)
    }
}

struct BatchListResponse: ResponseCodable, Equatable {
    struct Item: Codable, Equatable {
        var batchId: String
        var status: String
        var total: Int
        var counts: [String: Int]
        var cost: Double
        var createdAt: String

        init(_ batch: BatchSummary) {
            batchId = batch.id.lowercasedString
            status = batch.status
            total = batch.total
            counts = batch.counts
            cost = batch.cost
            createdAt = MessageCoding.formatTimestamp(batch.createdAt)
        }
    }

    var success = true
    var items: [Item]
    var page: Int
    var pageSize: Int
    var total: Int
}

struct BatchCreatedResponse: Encodable {
    struct Item: Encodable {
        var mediaId: String
        var jobId: String
        var status: String
    }

    var success = true
    var batchId: String
    var jobs: [Item]
    /// Jobs not started yet (all of them, when the answer is given).
    var remainingInQueue: Int
    var message: String
}

/// `GET /api/ai-image/batch/:batchId`: each item's state, counts by status, cost so far.
struct BatchStatusResponse: ResponseCodable, Equatable {
    struct Item: Codable, Equatable {
        var mediaId: String
        var jobId: String
        var status: String
        var error: ErrorJSON?
        /// The media's name, when it has one and is still in the library.
        var originalName: String?
    }

    var success = true
    var batchId: String
    var status: String
    var total: Int
    var counts: [String: Int]
    /// Jobs not finished yet.
    var remainingInQueue: Int
    /// USD so far.
    var cost: Double
    var createdAt: String
    var items: [Item]
    /// The batch its failed and cancelled items were retried in, once retried.
    var retriedBy: String?

    init(_ batch: BatchRecord) {
        batchId = batch.id.lowercasedString
        status = batch.status
        total = batch.items.count
        counts = Dictionary(grouping: batch.items, by: { $0.status.rawValue }).mapValues(\.count)
        remainingInQueue = batch.items.filter { !$0.status.isTerminal }.count
        cost = batch.cost
        createdAt = MessageCoding.formatTimestamp(batch.createdAt)
        items = batch.items.map { job in
            Item(
                mediaId: job.mediaId.lowercasedString, jobId: job.id.lowercasedString, status: job.status.rawValue,
                error: ErrorJSON(job: job), originalName: nil)
        }
    }
}
