/// A failure of the messaging layer: connection, topology, consumer or settlement problems.
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; extendable without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The AMQP URL could not be parsed.
        public static let invalidURL = Code(name: "invalidURL")
        /// TCP connect, login or the handshake failed.
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The broker refused a declaration (e.g. a queue exists with other arguments).
        public static let topologyRejected = Code(name: "topologyRejected")
        /// The broker closed a consumer's channel or cancelled it (e.g. its queue is missing).
        public static let consumerClosed = Code(name: "consumerClosed")
        /// The channel a delivery arrived on is gone; the broker redelivers the message.
        public static let deliveryStale = Code(name: "deliveryStale")
        /// A delivery was already acked, nacked, dead-lettered or retried.
        public static let alreadySettled = Code(name: "alreadySettled")
        /// The connection has shut down; nothing more can be sent.
        public static let shutDown = Code(name: "shutDown")
        /// No connection to the broker right now.
        public static let notConnected = Code(name: "notConnected")
        /// A send to the broker failed.
        public static let sendFailed = Code(name: "sendFailed")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "AMQPError.\(code): \(message)" }
}

/// A publish that the broker did not confirm. Never swallowed: the caller decides whether to retry.
public struct PublishError: Error, Sendable, CustomStringConvertible {
    /// Why the message is not known to be safe with the broker.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The broker answered basic.nack: it could not take responsibility for the message.
        public static let nacked = Code(name: "nacked")
        /// No route: the message was returned (mandatory flag) and is not in any queue.
        public static let unroutable = Code(name: "unroutable")
        /// No connection, or no confirm, within the publish timeout.
        public static let timeout = Code(name: "timeout")
        /// The broker closed the publishing channel (e.g. the exchange does not exist).
        public static let channelClosed = Code(name: "channelClosed")
        /// The connection shut down before a confirm arrived.
        public static let shutDown = Code(name: "shutDown")
    }

    public var code: Code
    public var exchange: String
    public var routingKey: String
    public var messageID: String?
    public var reason: String

    public init(_ code: Code, exchange: String, routingKey: String, messageID: String?, reason: String) {
        self.code = code
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageID = messageID
        self.reason = reason
    }

    public var description: String {
        "PublishError.\(code) to exchange '\(exchange)' key '\(routingKey)' "
            + "(messageId \(messageID ?? "-")): \(reason)"
    }
}
