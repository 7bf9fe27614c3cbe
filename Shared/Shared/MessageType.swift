import Foundation

/// The `type` of every message, and where each one is published.
public enum MessageType: String, Codable, Sendable, CaseIterable {
    case generationRequest = "cyclorama.generation.request"
    case dispatchRequest = "cyclorama.dispatch.request"
    case generationSubmitted = "cyclorama.generation.submitted"
    case generationProgressed = "cyclorama.generation.progressed"
    case generationRendered = "cyclorama.generation.rendered"
    case generationCompleted = "cyclorama.generation.completed"
    case generationFailed = "cyclorama.generation.failed"
    case mediaUpdated = "cyclorama.media.updated"
    case settingsRequest = "cyclorama.settings.request"
    case settingsReply = "cyclorama.settings.reply"
    case settingsChanged = "cyclorama.settings.changed"
    case backendWebhook = "cyclorama.backend.webhook"

    /// The newest `schemaVersion` this build reads and the one it writes.
    public static let currentSchemaVersion = 1

    /// The exchange and routing key the message is published to; `nil` for ``SettingsReply``,
    /// which goes to the AMQP `reply_to` queue of its request through the default exchange.
    public var route: ReplyAddress? {
        switch self {
        case .generationRequest: .init(exchange: Routing.Exchange.commands, routingKey: Routing.Key.generationRequest)
        case .dispatchRequest: .init(exchange: Routing.Exchange.commands, routingKey: Routing.Key.dispatchRequest)
        case .settingsRequest: .init(exchange: Routing.Exchange.commands, routingKey: Routing.Key.settingsRequest)
        case .generationSubmitted: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationSubmitted)
        case .generationProgressed: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationProgressed)
        case .generationRendered: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationRendered)
        case .generationCompleted: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationCompleted)
        case .generationFailed: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationFailed)
        case .mediaUpdated: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.mediaUpdated)
        case .settingsChanged: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.settingsChanged)
        case .backendWebhook: .init(exchange: Routing.Exchange.events, routingKey: Routing.Key.backendWebhook)
        case .settingsReply: nil
        }
    }
}

/// A Cyclorama message: a flat JSON object of envelope fields (`type`, `schemaVersion`,
/// `messageId`, `correlationId`, `occurredAt`) and the message's own fields.
///
/// Encode with ``MessageCoding`` (sorted keys, one date format) and read with ``MessageDecoder``
/// (which checks `type` and `schemaVersion`, turns decoding failures into readable reasons and validates).
public protocol CycloramaMessage: Codable, Sendable, Equatable {
    /// The `type` this message is written with.
    static var messageType: MessageType { get }
    /// Always ``messageType`` once decoded by ``MessageDecoder``.
    var type: MessageType { get }
    var schemaVersion: Int { get }
    /// Unique per message; consumers deduplicate redeliveries by it.
    var messageId: UUID { get }
    /// The request this message belongs to (for generation flows: the jobId).
    var correlationId: String { get }
    /// When the message was created, in UTC.
    var occurredAt: Date { get }
    /// Rejects a message that decodes but makes no sense, naming the field and the reason.
    func validate() throws(ValidationError)
}

extension CycloramaMessage {
    /// Where this message is published by default (see ``MessageType/route``).
    public static var route: ReplyAddress? { messageType.route }

    /// Checks of the envelope every message shares; call first from `validate()`.
    func validateEnvelope() throws(ValidationError) {
        if type != Self.messageType {
            throw ValidationError(field: "type", reason: "expected \(Self.messageType.rawValue); got \(type.rawValue)")
        }
        if schemaVersion < 1 || schemaVersion > MessageType.currentSchemaVersion {
            throw ValidationError(
                field: "schemaVersion",
                reason: "must be between 1 and \(MessageType.currentSchemaVersion); got \(schemaVersion)")
        }
        try Check.nonEmpty(correlationId, "correlationId", max: 255)
    }
}
