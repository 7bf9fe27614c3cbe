import Database
import Foundation
import Hummingbird
import ServiceCore
import Shared

/// `/api/ai-image/presets`: saved option presets — a name and the generation options it stands for
/// (shadow, background, upscale, framing, watermark removal, instructions), checked as `generate`
/// checks them. The AI dialog and the batch set-up offer them.
struct PresetController: Sendable {
    static let maxNameLength = 80

    let presets: PresetStore

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.get("/ai-image/presets", use: list)
        group.post("/ai-image/presets", use: create)
        group.put("/ai-image/presets/:presetId", use: update)
        group.delete("/ai-image/presets/:presetId", use: delete)
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> PresetListResponse {
        PresetListResponse(presets: try await presets.all().map(PresetJSON.init))
    }

    /// `{"name": "...", "options": {...generate's options...}}` → 201 with the preset.
    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let object = try await Self.body(request)
        guard let raw = object["name"] else { throw APIError.badRequest("name is required", code: "invalid_field") }
        let name = try Self.name(raw)
        let options = try Self.options(object["options"] ?? .object([:]))
        let id = GenerationIntake.ids(for: request).id("preset")
        switch try await presets.create(id: id, name: name, optionsJSON: options) {
        case nil:
            throw APIError(.conflict, code: "too_many_presets", message: "there are \(PresetStore.maxPresets) presets already; delete one first")
        case .nameTaken?:
            throw Self.nameTaken(name)
        case .idConflict?:
            throw APIError(.conflict, code: "idempotency_conflict", message: "this Idempotency-Key saved another preset; use a new key")
        case .notFound?:
            throw APIError.notFound("the preset is gone")
        case .saved(let preset)?:
            return GenerationController.response(.created, try GenerationController.json(PresetResponse(preset: try PresetJSON(preset))))
        }
    }

    /// `{"name"?: "...", "options"?: {...}}`: renames and/or replaces the options.
    @Sendable func update(_ request: Request, context: ServiceRequestContext) async throws -> PresetResponse {
        let id = try MediaController.uuid(context, "presetId")
        let object = try await Self.body(request)
        let name = try object["name"].map(Self.name)
        let options = try object["options"].map(Self.options)
        guard name != nil || options != nil else { throw APIError.badRequest("give a name, options or both", code: "invalid_body") }
        switch try await presets.update(id, name: name, optionsJSON: options) {
        case .nameTaken, .idConflict: throw Self.nameTaken(name ?? "")
        case .notFound: throw APIError.notFound("no preset \(id.lowercasedString)")
        case .saved(let preset): return PresetResponse(preset: try PresetJSON(preset))
        }
    }

    @Sendable func delete(_ request: Request, context: ServiceRequestContext) async throws -> SuccessResponse {
        let id = try MediaController.uuid(context, "presetId")
        guard try await presets.delete(id) else { throw APIError.notFound("no preset \(id.lowercasedString)") }
        return SuccessResponse(success: true)
    }

    // MARK: Input

    private static func body(_ request: Request) async throws -> [String: JSONValue] {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object {name, options}", code: "invalid_body")
        }
        if let unknown = object.keys.sorted().first(where: { !["name", "options"].contains($0) }) {
            throw APIError.badRequest("\(unknown) is not a preset field; known: name, options", code: "invalid_field")
        }
        return object
    }

    /// 1 to 80 characters without control characters, trimmed.
    static func name(_ raw: JSONValue) throws -> String {
        guard case .string(let text) = raw else { throw APIError.badRequest("name must be a string", code: "invalid_field") }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // Counted as the document (JSON Schema's maxLength) and PostgreSQL count: code points, as sent.
        guard !name.isEmpty, text.unicodeScalars.count <= maxNameLength, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.badRequest("name must be 1 to \(maxNameLength) characters without control characters", code: "invalid_field")
        }
        return name
    }

    /// The options as `generate` takes them, checked the same way; stored as their JSON.
    static func options(_ raw: JSONValue) throws -> String {
        guard case .object(let object) = raw else { throw APIError.badRequest("options must be an object like the body of generate", code: "invalid_field") }
        // A preset says what it sets: null is not a value to keep (generate reads it as "the default").
        if let empty = object.keys.sorted().first(where: { object[$0] == .null }) {
            throw APIError.badRequest("options.\(empty) must not be null; leave it out for the settings' default", code: "invalid_field")
        }
        do {
            return try GenerationController.json(try GenerationRequestBody.parse(object: object))
        } catch let error as APIError {
            throw APIError.badRequest("options.\(error.message)", code: error.code)
        }
    }

    static func nameTaken(_ name: String) -> APIError {
        APIError(.conflict, code: "preset_name_taken", message: "a preset called \"\(name)\" exists already (names are compared without case)")
    }
}

struct PresetJSON: Codable, Equatable {
    var id: String
    var name: String
    /// The options as `generate` takes them (only those the preset sets).
    var options: JSONValue
    var createdAt: String
    var updatedAt: String

    init(_ preset: OptionPreset) throws {
        id = preset.id.lowercasedString
        name = preset.name
        options = try JSONDecoder().decode(JSONValue.self, from: Data(preset.optionsJSON.utf8))
        createdAt = MessageCoding.formatTimestamp(preset.createdAt)
        updatedAt = MessageCoding.formatTimestamp(preset.updatedAt)
    }
}

struct PresetResponse: ResponseCodable, Equatable {
    var success = true
    var preset: PresetJSON
}

struct PresetListResponse: ResponseCodable, Equatable {
    var success = true
    var presets: [PresetJSON]
}
