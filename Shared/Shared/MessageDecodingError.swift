import Foundation

/// Why bytes from the broker are not an acceptable Cyclorama message.
///
/// `description` is the readable reason that goes into the dead-letter header
/// (``Routing/Header/reason``), e.g. `mediaId: required field is missing`.
public struct MessageDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong; extendable without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The body is not JSON, or not a JSON object.
        public static let malformedJSON = Code(name: "malformedJSON")
        /// A required field is absent.
        public static let missingField = Code(name: "missingField")
        /// A field has the wrong JSON type (a number where a string belongs, `null`, ...).
        public static let wrongType = Code(name: "wrongType")
        /// A field has the right type but a value that is not allowed (unknown shadow style, bad colour).
        public static let invalidValue = Code(name: "invalidValue")
        /// `type` names no message Cyclorama knows.
        public static let unknownType = Code(name: "unknownType")
        /// `schemaVersion` is newer than this build understands.
        public static let unsupportedSchemaVersion = Code(name: "unsupportedSchemaVersion")
        /// `type` is a known message, but not the one this consumer expects.
        public static let unexpectedType = Code(name: "unexpectedType")
    }

    public var code: Code
    /// The dotted path of the offending field; empty for the body as a whole.
    public var field: String
    /// What is wrong, in words.
    public var reason: String
    /// The message's `type` when it could be read.
    public var messageType: String?

    public init(_ code: Code, field: String, reason: String, messageType: String? = nil) {
        self.code = code
        self.field = field
        self.reason = reason
        self.messageType = messageType
    }

    public var description: String { field.isEmpty ? reason : "\(field): \(reason)" }

    /// A failed ``ValidationError`` check, as a decoding rejection.
    init(_ error: ValidationError, messageType: String?) {
        self.init(.invalidValue, field: error.field, reason: error.reason, messageType: messageType)
    }

    /// Turns Foundation's `DecodingError` into a reason a publisher can act on.
    init(_ error: DecodingError, messageType: String?) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init(.missingField, field: Self.path(context.codingPath + [key]),
                      reason: "required field is missing", messageType: messageType)
        case .valueNotFound(let type, let context):
            self.init(.wrongType, field: Self.path(context.codingPath),
                      reason: "expected \(Self.jsonKind(type)), got null", messageType: messageType)
        case .typeMismatch(let type, let context):
            let field = Self.path(context.codingPath)
            self.init(.wrongType, field: field,
                      reason: "expected \(Self.jsonKind(type))\(Self.found(context.debugDescription))",
                      messageType: messageType)
            if field.isEmpty { self.reason = "message body: " + reason }
        case .dataCorrupted(let context):
            let field = Self.path(context.codingPath)
            if let validation = context.underlyingError as? ValidationError {
                // A value checked as a whole may name a field inside it (`options.framing` + `fill`).
                let inner = validation.field.isEmpty ? field : field.isEmpty ? validation.field : "\(field).\(validation.field)"
                self.init(.invalidValue, field: inner, reason: validation.reason, messageType: messageType)
            } else if field.isEmpty {
                self.init(.malformedJSON, field: "", reason: "message body is not valid JSON", messageType: messageType)
            } else if context.debugDescription.contains("UUID") {
                self.init(.invalidValue, field: field, reason: "must be a UUID string", messageType: messageType)
            } else if context.debugDescription.contains("date") || context.debugDescription.contains("Date") {
                self.init(.invalidValue, field: field,
                          reason: "must be an ISO-8601 UTC timestamp like 2026-11-29T10:15:30.123Z",
                          messageType: messageType)
            } else {
                self.init(.invalidValue, field: field, reason: context.debugDescription, messageType: messageType)
            }
        @unknown default:
            self.init(.malformedJSON, field: "", reason: "\(error)", messageType: messageType)
        }
    }

    /// `options.shadowStyle`, `keys[2]`.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") || key.stringValue == "\(index)" {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text
    }

    private static func jsonKind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is UUID.Type, is Date.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Double.Type, is Float.Type, is Int64.Type, is UInt.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            if name.hasPrefix("Dictionary") || name.contains("KeyedDecodingContainer") { return "an object" }
            if name.contains("UnkeyedDecodingContainer") { return "an array" }
            return "a value of type \(name)"
        }
    }

    /// Foundation says "Expected to decode String but found number instead."; keep the "found" part.
    private static func found(_ debugDescription: String) -> String {
        guard let start = debugDescription.range(of: "but found "),
              let end = debugDescription.range(of: " instead", range: start.upperBound..<debugDescription.endIndex)
        else { return "" }
        let found = String(debugDescription[start.upperBound..<end.lowerBound])
        let article = found.hasPrefix("a ") || found.hasPrefix("an ") ? "" : "a "
        return ", got " + article + found
    }
}
