import Database
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceCore
import ServiceSupport
import Shared

/// `/api/ai-image/variations/:mediaId`: A/B candidates — the seed's three shadow presets plus custom
/// prompts — kept beside the media until one is chosen. Needs `aiImageAbTestEnabled`.
struct VariationController: Sendable {
    static let maxCustomPrompts = 5

    let media: MediaStore
    let files: MediaFiles
    let variations: VariationStore
    let intake: GenerationIntake
    let queueDeadline: Duration
    let settings: SettingsClient
    let logger: Logger

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.post("/ai-image/variations/:mediaId", use: create)
        group.get("/ai-image/variations/:mediaId", use: list)
        group.post("/ai-image/variations/:mediaId/choose", use: choose)
        group.get("/ai-image/variations/:mediaId/:jobId/file", use: file)
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let mediaId = try MediaController.uuid(context, "mediaId")
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        let (prompts, framing) = try Self.parseBody(body)
        let enabled: Bool
        do { enabled = try await settings.typed().abTestEnabled } catch {
            throw APIError.unavailable("the settings-service did not answer and no settings are known yet; try again")
        }
        guard enabled else {
            throw APIError(.conflict, code: "ab_testing_disabled",
                           message: "A/B variations are off; set aiImageAbTestEnabled to true in the settings")
        }
        guard let item = try await media.media(mediaId) else { throw APIError.notFound("no media \(mediaId.lowercasedString)") }
        guard item.file.mimeType.hasPrefix("image/") else {
            throw APIError.badRequest("media \(mediaId.lowercasedString) is \(item.file.mimeType), not an image", code: "not_an_image")
        }
        try await intake.admit()
        let newIds = GenerationIntake.ids(for: request)
        let setId = newIds.id("set")
        var wanted: [(name: String, options: GenerationOptions, prompt: String?)] = StandardVariations.all.map {
            ($0.name, GenerationOptions(shadowStyle: $0.shadowStyle, framing: framing), nil)
        }
        for (index, prompt) in prompts.enumerated() {
            wanted.append(("Custom \(index + 1)", GenerationOptions(customInstructions: prompt, framing: framing), prompt))
        }
        let requests = try wanted.map { variation -> (RequestGeneration, NewVariation) in
            let request = RequestGeneration(
                correlationId: setId.uuidString, jobId: newIds.id("job:\(variation.name)"), mediaId: mediaId, kind: .variation,
                variationName: variation.name, options: variation.options, requestedBy: "api-gateway")
            let row = NewVariation(
                jobId: request.jobId, name: variation.name, prompt: variation.prompt,
                optionsJSON: try GenerationController.json(variation.options))
            return (request, row)
        }
        // Accepted once the ledger has the set (GenerationIntake); the same request again finds it.
        if try await variations.insertSet(
            setId, mediaId: mediaId, correlationId: setId.uuidString, variations: requests.map(\.1), queueDeadline: queueDeadline) {
            await intake.publish(requests.map(\.0))
        }
        let answer = VariationsCreatedResponse(
            setId: setId.lowercasedString,
            variations: requests.map { .init(name: $0.1.name, jobId: $0.0.jobId.lowercasedString, status: JobStatus.queued.rawValue) },
            message: "Started \(requests.count) A/B test variations")
        return GenerationController.response(.accepted, try GenerationController.json(answer))
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> VariationListResponse {
        let mediaId = try MediaController.uuid(context, "mediaId")
        guard try await media.media(mediaId) != nil else { throw APIError.notFound("no media \(mediaId.lowercasedString)") }
        let all = try await variations.variations(of: mediaId)
        var order: [UUID] = []
        var bySet: [UUID: [VariationRecord]] = [:]
        for record in all {
            if bySet[record.setId] == nil { order.append(record.setId) }
            bySet[record.setId, default: []].append(record)
        }
        return VariationListResponse(mediaId: mediaId.lowercasedString, sets: order.map { setId in
            let records = bySet[setId]!
            return .init(
                setId: setId.lowercasedString, createdAt: MessageCoding.formatTimestamp(records.map(\.createdAt).min()!),
                chosenJobId: records.first { $0.chosenAt != nil }?.jobId.lowercasedString,
                variations: records.map(VariationJSON.init))
        })
    }

    @Sendable func choose(_ request: Request, context: ServiceRequestContext) async throws -> MediaResponse {
        let mediaId = try MediaController.uuid(context, "mediaId")
        let body = Array(buffer: try await request.body.collect(upTo: 4096))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)),
              let raw = value["jobId"]?.stringValue, let jobId = UUID(uuidString: raw) else {
            throw APIError.badRequest("jobId must be the UUID of one of this media's variations", code: "invalid_field")
        }
        switch try await variations.choose(mediaId: mediaId, jobId: jobId) {
        case .notFound:
            throw APIError.notFound("media \(mediaId.lowercasedString) has no variation \(jobId.lowercasedString)")
        case .notReady(let status):
            throw APIError(.conflict, code: "variation_not_ready", message: "variation \(jobId.lowercasedString) is \(status.rawValue), not COMPLETED")
        case .otherChosen(let other):
            throw APIError(.conflict, code: "already_chosen",
                           message: "variation \(other.lowercasedString) of the same set was chosen already")
        case .imageChanged:
            throw APIError(.conflict, code: "image_changed",
                           message: "the image changed since this variation was made; choosing it would replace the newer image "
                               + "with a variation of the older one (make variations again)")
        case .chosen:
            guard let updated = try await media.media(mediaId) else { throw APIError.notFound("no media \(mediaId.lowercasedString)") }
            return MediaResponse(media: MediaJSON(updated))
        }
    }

    @Sendable func file(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let mediaId = try MediaController.uuid(context, "mediaId")
        let jobId = try MediaController.uuid(context, "jobId")
        guard let record = try await variations.variation(mediaId: mediaId, jobId: jobId), let stored = record.file,
              let url = files.url(for: stored), let data = FileManager.default.contents(atPath: url.path) else {
            throw APIError.notFound("media \(mediaId.lowercasedString) has no finished variation \(jobId.lowercasedString)")
        }
        return Response(
            status: .ok, headers: [.contentType: stored.mimeType, .eTag: "\"\(stored.sha256)\"", .cacheControl: "private, max-age=3600"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"customPrompts": [...], "framing": ...}`: custom prompts (optional, at most 5, each at most 500
    /// characters) and the frame every candidate takes (optional: the settings' default); an empty body is neither.
    static func parseBody(_ body: [UInt8]) throws -> (prompts: [String], framing: Framing?) {
        if body.isBlank { return ([], nil) }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {customPrompts?, framing?}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "customPrompts" && $0 != "framing" }) {
            throw APIError.badRequest("\(unknown) is not a variations field; known: customPrompts, framing", code: "invalid_field")
        }
        var framing: Framing?
        if let raw = object["framing"], raw != .null {
            do { framing = try Framing(parsing: raw, strict: true) } catch {
                throw APIError.badRequest("\(error.field) \(error.reason)", code: "invalid_field")
            }
        }
        return (try customPrompts(object["customPrompts"]), framing)
    }

    private static func customPrompts(_ raw: JSONValue?) throws -> [String] {
        guard let raw, raw != .null else { return [] }
        guard case .array(let items) = raw else { throw APIError.badRequest("customPrompts must be an array of strings", code: "invalid_field") }
        guard items.count <= maxCustomPrompts else {
            throw APIError.badRequest("customPrompts holds \(items.count) prompts; at most \(maxCustomPrompts)", code: "invalid_field")
        }
        return try items.enumerated().map { index, item in
            guard let text = item.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty,
                  text.count <= GenerationOptions.maxCustomInstructionsLength else {
                throw APIError.badRequest(
                    "customPrompts[\(index)] must be a non-empty string of at most \(GenerationOptions.maxCustomInstructionsLength) characters",
                    code: "invalid_field")
            }
            return text
        }
    }
}

struct VariationsCreatedResponse: Encodable {
    struct Item: Encodable {
        var name: String
        var jobId: String
        var status: String
    }

    var success = true
    var setId: String
    var variations: [Item]
    var message: String
}

struct VariationJSON: Codable, Equatable {
    var name: String
    var jobId: String
    var status: String
    var prompt: String?
    /// The candidate's image, once its job completed.
    var url: String?
    var width: Int?
    var height: Int?
    var chosen: Bool

    init(_ record: VariationRecord) {
        name = record.name
        jobId = record.jobId.lowercasedString
        status = record.jobStatus.rawValue
        prompt = record.prompt
        if let file = record.file {
            url = "/api/ai-image/variations/\(record.mediaId.lowercasedString)/\(jobId)/file"
            width = file.width
            height = file.height
        }
        chosen = record.chosenAt != nil
    }
}

struct VariationListResponse: ResponseCodable, Equatable {
    struct Set: Codable, Equatable {
        var setId: String
        var createdAt: String
        var chosenJobId: String?
        var variations: [VariationJSON]
    }

    var success = true
    var mediaId: String
    var sets: [Set]
}
