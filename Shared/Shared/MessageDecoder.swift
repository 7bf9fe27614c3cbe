import Foundation

/// Any Cyclorama message, for consumers that take several types from one queue.
public enum AnyMessage: Sendable, Equatable {
    case requestGeneration(RequestGeneration)
    case dispatchGeneration(DispatchGeneration)
    case generationSubmitted(GenerationSubmitted)
    case generationProgressed(GenerationProgressed)
    case generationRendered(GenerationRendered)
    case generationCompleted(GenerationCompleted)
    case generationFailed(GenerationFailed)
    case mediaUpdated(MediaUpdated)
    case settingsRequest(SettingsRequest)
    case settingsReply(SettingsReply)
    case settingsChanged(SettingsChanged)
    case backendWebhookReceived(BackendWebhookReceived)

    /// The wrapped message.
    public var message: any CycloramaMessage {
        switch self {
        case .requestGeneration(let m): m
        case .dispatchGeneration(let m): m
        case .generationSubmitted(let m): m
        case .generationProgressed(let m): m
        case .generationRendered(let m): m
        case .generationCompleted(let m): m
        case .generationFailed(let m): m
        case .mediaUpdated(let m): m
        case .settingsRequest(let m): m
        case .settingsReply(let m): m
        case .settingsChanged(let m): m
        case .backendWebhookReceived(let m): m
        }
    }

    public var type: MessageType { message.type }
    public var messageId: UUID { message.messageId }
    public var correlationId: String { message.correlationId }
}

/// Reads bytes from the broker into checked, validated messages. Every failure is a
/// ``MessageDecodingError`` whose `description` is fit for the dead-letter header.
public enum MessageDecoder {
    /// The envelope fields read before the body, so unknown types and versions get clear reasons.
    private struct Header: Decodable {
        var type: String?
        var schemaVersion: Int?
    }

    /// Decodes, checks `type` and `schemaVersion`, and validates a message of any type.
    public static func decode(_ bytes: [UInt8]) throws(MessageDecodingError) -> AnyMessage {
        let data = Data(bytes)
        let type = try header(of: data)
        switch type {
        case .generationRequest: return .requestGeneration(try body(RequestGeneration.self, data))
        case .dispatchRequest: return .dispatchGeneration(try body(DispatchGeneration.self, data))
        case .generationSubmitted: return .generationSubmitted(try body(GenerationSubmitted.self, data))
        case .generationProgressed: return .generationProgressed(try body(GenerationProgressed.self, data))
        case .generationRendered: return .generationRendered(try body(GenerationRendered.self, data))
        case .generationCompleted: return .generationCompleted(try body(GenerationCompleted.self, data))
        case .generationFailed: return .generationFailed(try body(GenerationFailed.self, data))
        case .mediaUpdated: return .mediaUpdated(try body(MediaUpdated.self, data))
        case .settingsRequest: return .settingsRequest(try body(SettingsRequest.self, data))
        case .settingsReply: return .settingsReply(try body(SettingsReply.self, data))
        case .settingsChanged: return .settingsChanged(try body(SettingsChanged.self, data))
        case .backendWebhook: return .backendWebhookReceived(try body(BackendWebhookReceived.self, data))
        }
    }

    /// Decodes a message that must be of type `M` (anything else is ``MessageDecodingError/Code/unexpectedType``),
    /// then validates it.
    public static func decode<M: CycloramaMessage>(_: M.Type, from bytes: [UInt8]) throws(MessageDecodingError) -> M {
        let data = Data(bytes)
        try expect(M.self, in: data)
        return try body(M.self, data)
    }

    /// Decodes a message that must be of type `M` without validating its fields: for a request/reply
    /// consumer that answers a request which failed ``decode(_:from:)``'s validation with the refusal,
    /// instead of dead-lettering a message it can answer. Never handle what this returns as valid.
    public static func decodeUnvalidated<M: CycloramaMessage>(_: M.Type, from bytes: [UInt8]) throws(MessageDecodingError) -> M {
        let data = Data(bytes)
        try expect(M.self, in: data)
        return try unvalidatedBody(M.self, data)
    }

    /// Throws unless the envelope reads and names `M`'s type.
    private static func expect<M: CycloramaMessage>(_: M.Type, in data: Data) throws(MessageDecodingError) {
        let type = try header(of: data)
        guard type == M.messageType else {
            throw MessageDecodingError(
                .unexpectedType, field: "type",
                reason: "expected \(M.messageType.rawValue); got \(type.rawValue)", messageType: type.rawValue)
        }
    }

    /// Data convenience for ``decode(_:from:)``.
    public static func decode<M: CycloramaMessage>(_ type: M.Type, from data: Data) throws(MessageDecodingError) -> M {
        try decode(type, from: [UInt8](data))
    }

    private static func header(of data: Data) throws(MessageDecodingError) -> MessageType {
        let header: Header
        do {
            header = try MessageCoding.makeDecoder().decode(Header.self, from: data)
        } catch let error as DecodingError {
            if case .typeMismatch(_, let context) = error, context.codingPath.isEmpty {
                throw MessageDecodingError(.malformedJSON, field: "", reason: "message body must be a JSON object")
            }
            throw MessageDecodingError(error, messageType: nil)
        } catch {
            throw MessageDecodingError(.malformedJSON, field: "", reason: "message body is not valid JSON")
        }
        guard let rawType = header.type else {
            throw MessageDecodingError(.missingField, field: "type", reason: "required field is missing")
        }
        guard let type = MessageType(rawValue: rawType) else {
            throw MessageDecodingError(
                .unknownType, field: "type",
                reason: "unknown message type \(Check.quoted(rawType)); known: "
                    + MessageType.allCases.map(\.rawValue).joined(separator: ", "),
                messageType: rawType)
        }
        guard let version = header.schemaVersion else {
            throw MessageDecodingError(.missingField, field: "schemaVersion", reason: "required field is missing",
                                       messageType: rawType)
        }
        if version > MessageType.currentSchemaVersion {
            throw MessageDecodingError(
                .unsupportedSchemaVersion, field: "schemaVersion",
                reason: "version \(version) is newer than this consumer supports (\(MessageType.currentSchemaVersion))",
                messageType: rawType)
        }
        if version < 1 {
            throw MessageDecodingError(.invalidValue, field: "schemaVersion", reason: "must be at least 1; got \(version)",
                                       messageType: rawType)
        }
        return type
    }

    private static func unvalidatedBody<M: CycloramaMessage>(_: M.Type, _ data: Data) throws(MessageDecodingError) -> M {
        do {
            return try MessageCoding.makeDecoder().decode(M.self, from: data)
        } catch let error as DecodingError {
            throw MessageDecodingError(error, messageType: M.messageType.rawValue)
        } catch {
            throw MessageDecodingError(.malformedJSON, field: "", reason: "\(error)", messageType: M.messageType.rawValue)
        }
    }

    private static func body<M: CycloramaMessage>(_: M.Type, _ data: Data) throws(MessageDecodingError) -> M {
        let message = try unvalidatedBody(M.self, data)
        do {
            try message.validate()
        } catch {
            throw MessageDecodingError(error, messageType: M.messageType.rawValue)
        }
        return message
    }
}
