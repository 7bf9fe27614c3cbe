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
///
/// A batch may hold its results for review (`review`, default `aiImageReviewBeforeReplace`): each
/// result waits as a candidate beside its media, and only those a person approves
/// (`POST /api/ai-image/batch/:batchId/review`) become the media's new version.
struct BatchController: Sendable {
    static let maxItems = 500

    let media: MediaStore
    let ledger: JobLedger
    let reviews: ReviewStore
    let files: MediaFiles
    let thumbnails: Thumbnails
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
        group.post("/ai-image/batch/:batchId/review", use: decide)
        group.get("/ai-image/batch/:batchId/review/:jobId/file", use: candidateFile)
        group.get("/ai-image/batch/:batchId/review/:jobId/thumbnail", use: candidateThumbnail)
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 256 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {mediaIds, options, notifyUrl, review}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { !["mediaIds", "options", "notifyUrl", "review"].contains($0) }) {
            throw APIError.badRequest("\(unknown) is not a batch field; known: mediaIds, options, notifyUrl, review", code: "invalid_field")
        }
        let review: Bool?
        switch object["review"] {
        case nil, .null?: review = nil
        case .bool(let flag)?: review = flag
        case let other?: throw APIError.badRequest("review must be true or false; got \(other.jsonText)", code: "invalid_field")
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
            ids, options: options, review: review, notifyURL: try await intake.notifyURL(object["notifyUrl"]),
            newIds: GenerationIntake.ids(for: request))
    }

    /// Queues a batch of `ids` (checked: every one a media image of the library) with `options`,
    /// held for review when `review` says so (nil: as `aiImageReviewBeforeReplace` says); the
    /// batch's and jobs' ids come from `newIds`.
    private func start(
        _ ids: [UUID], options: GenerationOptions, review: Bool?, notifyURL: String?, newIds: IdempotentIDs
    ) async throws -> Response {
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
        let held: Bool
        if let review {
            held = review
        } else {
            do { held = try await intake.settings.typed().reviewBeforeReplace } catch {
                throw APIError.unavailable("the settings-service did not answer and no settings are known yet; nothing was started, try again")
            }
        }
        let batchId = newIds.id("batch")
        let optionsJSON = try GenerationController.json(options)
        let requests = ids.map { id in
            RequestGeneration(
                correlationId: batchId.uuidString, jobId: newIds.id("job:\(id.lowercasedString)"), mediaId: id, kind: .batchItem,
                batchId: batchId, options: options, requestedBy: "api-gateway")
        }
        // Accepted once the ledger has the batch (GenerationIntake); the same request again finds it.
        if try await ledger.insertBatch(
            id: batchId, optionsJSON: optionsJSON, review: held,
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
            review: held,
            message: held
                ? "Queued \(requests.count) generations; their results wait for your review"
                : "Queued \(requests.count) generations")
        return GenerationController.response(.accepted, try GenerationController.json(answer))
    }

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> BatchStatusResponse {
        let id = try MediaController.uuid(context, "batchId")
        guard let batch = try await ledger.batch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        return try await answer(batch)
    }

    /// The batch with its items' names (one query for all of them) and, under review, each result's
    /// candidate and decision (one query).
    private func answer(_ batch: BatchRecord) async throws -> BatchStatusResponse {
        let names = Dictionary(
            try await media.media(ids: Array(Set(batch.items.map(\.mediaId)))).map { ($0.id, $0.originalFilename) },
            uniquingKeysWith: { first, _ in first })
        let candidates = batch.review
            ? Dictionary(try await reviews.candidates(batch: batch.id).map { ($0.jobId, $0) }, uniquingKeysWith: { first, _ in first })
            : [:]
        var answer = BatchStatusResponse(batch)
        for index in answer.items.indices {
            let item = batch.items[index]
            answer.items[index].originalName = names[item.mediaId] ?? nil
            answer.items[index].review = candidates[item.id].map { ReviewJSON($0) }
        }
        answer.awaitingReview = candidates.values.filter { $0.decision == nil }.count
        return answer
    }

    /// `POST /api/ai-image/batch/:batchId/review` with `{"decision": "approve" | "reject", "jobIds": [...]}`
    /// (`jobIds` left out: every result still waiting). Approved results become their media's new
    /// version; rejected ones leave the media as it is. A decision is final: a result decided the
    /// other way is left as it is and named in `skipped`, the same decision again changes nothing.
    @Sendable func decide(_ request: Request, context: ServiceRequestContext) async throws -> ReviewDecisionResponse {
        let id = try MediaController.uuid(context, "batchId")
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {decision, jobIds}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { !["decision", "jobIds"].contains($0) }) {
            throw APIError.badRequest("\(unknown) is not a review field; known: decision, jobIds", code: "invalid_field")
        }
        let decision: ReviewCandidate.Decision
        switch object["decision"]?.stringValue {
        case "approve"?: decision = .approved
        case "reject"?: decision = .rejected
        default: throw APIError.badRequest("decision must be \"approve\" or \"reject\"", code: "invalid_field")
        }
        var jobIds: [UUID]?
        switch object["jobIds"] {
        case nil, .null?: jobIds = nil
        case .array(let raw)?:
            guard !raw.isEmpty, raw.count <= Self.maxItems else {
                throw APIError.badRequest("jobIds must hold 1 to \(Self.maxItems) job ids (leave it out for every result waiting)", code: "invalid_field")
            }
            var ids: [UUID] = []
            for (index, value) in raw.enumerated() {
                guard let text = value.stringValue, let jobId = UUID(uuidString: text) else {
                    throw APIError.badRequest("jobIds[\(index)] must be a UUID; got \(value.jsonText)", code: "invalid_field")
                }
                if !ids.contains(jobId) { ids.append(jobId) }
            }
            jobIds = ids
        case let other?:
            throw APIError.badRequest("jobIds must be an array of job ids; got \(other.jsonText)", code: "invalid_field")
        }
        guard let batch = try await ledger.batch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        guard batch.review else {
            throw APIError(.conflict, code: "not_under_review",
                           message: "batch \(id.lowercasedString) was not started with review: its results replaced the images as they came")
        }
        if let jobIds {
            let items = Set(batch.items.map(\.id))
            if let stranger = jobIds.first(where: { !items.contains($0) }) {
                throw APIError.badRequest("job \(stranger.lowercasedString) is not an item of batch \(id.lowercasedString)", code: "invalid_field")
            }
        }
        let outcome = try await reviews.decide(batch: id, jobIds: jobIds, decision)
        for jobId in outcome.decided { hub.notify(jobId) }
        guard let updated = try await ledger.batch(id) else { throw APIError.notFound("no batch \(id.lowercasedString)") }
        return ReviewDecisionResponse(
            decided: outcome.decided.count, unchanged: outcome.unchanged.count,
            skipped: outcome.skipped.sorted { $0.key.uuidString < $1.key.uuidString }
                .map { .init(jobId: $0.key.lowercasedString, reason: $0.value) },
            batch: try await answer(updated))
    }

    /// `GET /api/ai-image/batch/:batchId/review/:jobId/file`: a result kept for review, full size.
    @Sendable func candidateFile(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let candidate = try await candidate(context)
        guard let url = files.url(for: candidate.file), let data = FileManager.default.contents(atPath: url.path) else {
            throw APIError.notFound("the result of job \(candidate.jobId.lowercasedString) is no longer stored")
        }
        return Response(
            status: .ok,
            headers: [.contentType: candidate.file.mimeType, .eTag: "\"\(candidate.file.sha256)\"", .cacheControl: "private, max-age=3600"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `GET /api/ai-image/batch/:batchId/review/:jobId/thumbnail?size=`: a result kept for review, small.
    @Sendable func candidateThumbnail(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try await thumbnails.response(of: try await candidate(context).file, request, immutable: true)
    }

    private func candidate(_ context: ServiceRequestContext) async throws -> ReviewCandidate {
        let batchId = try MediaController.uuid(context, "batchId")
        let jobId = try MediaController.uuid(context, "jobId")
        guard let candidate = try await reviews.candidate(batch: batchId, job: jobId) else {
            throw APIError.notFound("batch \(batchId.lowercasedString) holds no result of job \(jobId.lowercasedString) for review")
        }
        return candidate
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
            let other = try await ledger.batch(id)?.retriedBy
            throw APIError(.conflict, code: "already_retried",
                           message: "batch \(id.lowercasedString) was retried already as batch \(other?.lowercasedString ?? "?")")
        }
        do {
            return try await start(ids, options: options, review: batch.review, notifyURL: unsuccessful.first?.notifyURL, newIds: newIds)
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
        /// Its results wait for review.
        var review: Bool
        /// Results waiting for a decision.
        var awaitingReview: Int

        init(_ batch: BatchSummary) {
            batchId = batch.id.lowercasedString
            status = batch.status
            total = batch.total
            counts = batch.counts
            cost = batch.cost
            createdAt = MessageCoding.formatTimestamp(batch.createdAt)
            review = batch.review
            awaitingReview = batch.awaitingReview
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
    /// Its results wait for review.
    var review: Bool
    var message: String
}

/// A batch result kept for review: its decision and where to see it.
struct ReviewJSON: Codable, Equatable {
    /// `waiting`, `approved` or `rejected`.
    var state: String
    var url: String
    var thumbnailUrl: String
    var width: Int
    var height: Int
    var bytes: Int
    var mimeType: String
    /// The media version it became, once approved.
    var versionId: String?
    /// The version the job was made from: the only one an approval replaces (the "before").
    var baseVersionId: String?
    var decidedAt: String?

    init(_ candidate: ReviewCandidate) {
        state = candidate.decision?.rawValue ?? "waiting"
        let base = "/api/ai-image/batch/\(candidate.batchId.lowercasedString)/review/\(candidate.jobId.lowercasedString)"
        url = base + "/file"
        thumbnailUrl = base + "/thumbnail"
        width = candidate.file.width
        height = candidate.file.height
        bytes = candidate.file.bytes
        mimeType = candidate.file.mimeType
        versionId = candidate.versionId?.lowercasedString
        baseVersionId = candidate.baseVersionId?.lowercasedString
        decidedAt = candidate.decidedAt.map(MessageCoding.formatTimestamp)
    }
}

/// What `POST /api/ai-image/batch/:batchId/review` did, and the batch as it is now.
struct ReviewDecisionResponse: ResponseCodable, Equatable {
    struct Skipped: Codable, Equatable {
        var jobId: String
        var reason: String
    }

    var success = true
    /// Results this request approved or rejected.
    var decided: Int
    /// Results that had this decision already.
    var unchanged: Int
    /// Results left as they were, and why.
    var skipped: [Skipped]
    var batch: BatchStatusResponse
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
        /// Under review: the result kept for it, once its job completed.
        var review: ReviewJSON?
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
    /// Its results wait for review before they replace the images.
    var review: Bool
    /// Results waiting for a decision.
    var awaitingReview = 0

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
        retriedBy = batch.retriedBy?.lowercasedString
        review = batch.review
    }
}
