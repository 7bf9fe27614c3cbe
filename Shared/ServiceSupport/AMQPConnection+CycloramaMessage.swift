import Logging
import Messaging
import Shared

// Publishing and reading Cyclorama's messages (Shared) over the broker connection (Messaging).

extension AMQPConnection {
    /// Publishes a Cyclorama message with confirm, to `address` or the message's own route.
    ///
    /// The AMQP properties mirror the envelope (`message_id`, `correlation_id`, `type`), so tools can
    /// route and trace without parsing the body.
    /// `mandatory: false` for events nobody may be listening to (a broadcast): unroutable is then fine.
    public func publish<M: CycloramaMessage>(
        _ message: M, to address: ReplyAddress? = nil, replyTo: String? = nil, mandatory: Bool = true
    ) async throws {
        guard let route = address ?? M.route else {
            preconditionFailure("\(M.self) has no default route; pass an address")
        }
        let outgoing = OutgoingMessage(
            body: try MessageCoding.encode(message),
            contentType: Routing.contentType,
            messageID: message.messageId.uuidString.lowercased(),
            correlationID: message.correlationId,
            type: M.messageType.rawValue,
            replyTo: replyTo
        )
        try await publish(outgoing, to: route.exchange, routingKey: route.routingKey, mandatory: mandatory)
    }
}

extension AMQPConnection {
    /// Publishes a job's terminal event on its own route (confirmed: throws when the broker refuses)
    /// and then to the requester's `replyTo`, best effort: an address that does not route is the
    /// requester's problem and must not keep the job from ending, so it is logged, not thrown.
    public func publishTerminal<M: CycloramaMessage>(_ message: M, replyTo: ReplyAddress?, logger: Logger) async throws {
        try await publish(message)
        guard let replyTo else { return }
        do {
            try await publish(message, to: replyTo)
        } catch {
            logger.warning(
                "could not deliver the terminal event to replyTo",
                metadata: ["exchange": "\(replyTo.exchange)", "routingKey": "\(replyTo.routingKey)", "error": "\(error)"])
        }
    }
}

/// Decodes and validates a delivery as `M`; anything else becomes ``InvalidMessage`` with the reason
/// that goes into the dead-letter header.
public func decodeDelivery<M: CycloramaMessage>(_ type: M.Type) -> @Sendable (Delivery) throws -> M {
    { delivery in
        do throws(MessageDecodingError) {
            return try MessageDecoder.decode(M.self, from: delivery.body)
        } catch {
            throw InvalidMessage(reason: error.description)
        }
    }
}
