import Foundation
import ServiceCore
import Shared

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

extension Array where Element == UInt8 {
    /// Empty or only whitespace: a body that says nothing.
    var isBlank: Bool { allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } }
}
