import Timing

/// An exchange to declare. Always durable: it outlives broker restarts.
public struct ExchangeDeclaration: Sendable, Hashable {
    /// How the exchange routes.
    public enum Kind: String, Sendable, Hashable {
        case direct, topic, fanout, headers
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind = .topic) {
        self.name = name
        self.kind = kind
    }
}

/// A binding of a queue to an exchange by routing key (a pattern for topic exchanges).
public struct QueueBinding: Sendable, Hashable {
    public var exchange: String
    public var routingKey: String

    public init(exchange: String, routingKey: String) {
        self.exchange = exchange
        self.routingKey = routingKey
    }
}

/// A work queue and the queues around it.
///
/// With `deadLetter`, the queue dead-letters (nack without requeue, reject, delivery limit) through the
/// topology's dead-letter exchange with routing key `name` into `name.dlq`. Each entry of
/// `retryDelays` adds a delay queue `name.delay.<ms>` whose TTL dead-letters back to `name`
/// through the default exchange: `Delivery.retry(reason:)` walks through them in order.
public struct QueueDeclaration: Sendable, Hashable {
    /// What kind of queue the broker keeps.
    public enum Kind: Sendable, Hashable {
        /// Durable, replicated, with a delivery limit: the default for work queues.
        case quorum
        /// Durable classic queue.
        case classic
        /// Non-durable, deleted when its last consumer leaves: per-instance broadcast queues.
        case temporary
    }

    public var name: String
    public var kind: Kind
    public var bindings: [QueueBinding]
    public var deadLetter: Bool
    public var retryDelays: [Duration]
    /// Quorum queues only: after this many redeliveries (e.g. a consumer crashing on the message) the
    /// broker dead-letters the message itself. nil: no limit.
    public var deliveryLimit: Int?
    /// Queues of one group (e.g. every instance's temporary queue of one kind) share the dead-letter
    /// queue `<group>.dlq`, so short-lived queues leave no dead-letter queues behind. nil: the queue's own.
    public var deadLetterGroup: String?
    /// Bindings an earlier declaration made and this one does not want: removed on every declare
    /// (removing one that is not there is no error).
    public var retiredBindings: [QueueBinding]

    /// Exponential backoff: 1 s, 5 s, 25 s.
    public static let defaultRetryDelays: [Duration] = [.seconds(1), .seconds(5), .seconds(25)]

    public init(
        name: String, kind: Kind = .quorum, bindings: [QueueBinding] = [], deadLetter: Bool = true,
        retryDelays: [Duration] = QueueDeclaration.defaultRetryDelays, deliveryLimit: Int? = 20,
        deadLetterGroup: String? = nil, retiredBindings: [QueueBinding] = []
    ) {
        self.name = name
        self.kind = kind
        self.bindings = bindings
        self.deadLetter = deadLetter
        self.retryDelays = retryDelays
        self.deliveryLimit = deliveryLimit
        self.deadLetterGroup = deadLetterGroup
        self.retiredBindings = retiredBindings
    }

    /// The dead-letter queue's name.
    public var deadLetterQueueName: String { deadLetterRoutingKey + ".dlq" }

    /// The routing key its rejects carry on the dead-letter exchange (to ``deadLetterQueueName``).
    public var deadLetterRoutingKey: String { deadLetterGroup ?? name }

    /// The delay queue for a retry delay.
    ///
    /// `.delay.` since the delay queues became quorum queues: the classic `name.retry.<ms>` queues of
    /// an older deployment keep their type (a queue's type cannot change), hand back what they hold
    /// and are then left empty (docs/messaging.md says how to delete them).
    public func retryQueueName(delay: Duration) -> String { "\(name).delay.\(delay.wholeMilliseconds)" }
}

/// Everything to declare (again after each reconnection). Declarations are idempotent on the broker.
public struct Topology: Sendable, Hashable {
    /// The dead-letter exchange used by queues with `deadLetter`.
    public static let defaultDeadLetterExchange = "cyclorama.dlx"

    public var exchanges: [ExchangeDeclaration]
    public var queues: [QueueDeclaration]
    public var deadLetterExchange: String

    public init(
        exchanges: [ExchangeDeclaration] = [], queues: [QueueDeclaration] = [],
        deadLetterExchange: String = Topology.defaultDeadLetterExchange
    ) {
        self.exchanges = exchanges
        self.queues = queues
        self.deadLetterExchange = deadLetterExchange
    }

    /// Adds another topology's declarations (same-named entries are replaced).
    public mutating func merge(_ other: Topology) {
        for exchange in other.exchanges {
            exchanges.removeAll { $0.name == exchange.name }
            exchanges.append(exchange)
        }
        for queue in other.queues {
            queues.removeAll { $0.name == queue.name }
            queues.append(queue)
        }
    }

    func queue(named name: String) -> QueueDeclaration? { queues.first { $0.name == name } }
}

/// Header names this library reads and writes.
public enum MessagingHeader {
    /// Why a message was dead-lettered by `Delivery.deadLetter(reason:)` or given up by `retry`.
    public static let reason = "x-cyclorama-reason"
    /// The queue the message was consumed from when it was dead-lettered.
    public static let originalQueue = "x-cyclorama-original-queue"
    /// 1-based attempt number; `retry` increments it. Absent means 1.
    public static let attempt = "x-cyclorama-attempt"
    /// The reason given to the last `retry`.
    public static let lastRetryReason = "x-cyclorama-retry-reason"
    /// Set by RabbitMQ on quorum queues: how often the message was delivered before.
    public static let deliveryCount = "x-delivery-count"
}
