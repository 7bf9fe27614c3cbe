import Logging
import Messaging
import Shared

/// Cyclorama's broker topology built from the names in `Shared.Routing`.
///
/// Each service declares the exchanges and the queues it owns (named `<service>.…`) on each
/// (re)connection; declarations are idempotent. It may not declare another's: its broker user has
/// configure and read rights only on Cyclorama's exchanges and its own queues (docs/security.md).
/// The queues are durable, so once each consumer has started they exist whatever starts first;
/// `make up` starts every service before it takes requests, and tools with the admin's rights
/// (tests, operators) declare everything with `make()`.
public enum CycloramaTopology {
    /// The exchanges and the queues of `owner` (a service name), or every queue when nil.
    public static func make(owner: String? = nil) -> Topology {
        Topology(
            exchanges: Routing.Exchange.all
                .filter { $0 != Routing.Exchange.deadLetter }
                .map { ExchangeDeclaration(name: $0, kind: .topic) },
            queues: Routing.bindings.filter { binding in owner.map { binding.queue.hasPrefix($0 + ".") } ?? true }.map { binding in
                QueueDeclaration(
                    name: binding.queue,
                    bindings: binding.keys.map { QueueBinding(exchange: binding.exchange, routingKey: $0) },
                    retiredBindings: binding.retiredKeys.map { QueueBinding(exchange: binding.exchange, routingKey: $0) })
            },
            deadLetterExchange: Routing.Exchange.deadLetter
        )
    }
}

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
