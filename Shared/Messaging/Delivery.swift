/// A message received from a queue. Settle it exactly once: `ack`, `nack`, `deadLetter` or `retry`.
///
/// Unsettled deliveries are requeued by the broker when the consumer's channel closes (shutdown,
/// crash, connection loss), so a handler that dies half-way loses nothing.
public struct Delivery: Sendable {
    public let body: [UInt8]
    /// The queue this delivery was consumed from.
    public let queue: String
    public let exchange: String
    public let routingKey: String
    public let contentType: String?
    public let messageID: String?
    public let correlationID: String?
    public let type: String?
    public let replyTo: String?
    /// Scalar application headers as strings (nested tables such as `x-death` are left out).
    public let headers: [String: String]
    public let timestamp: UInt64?
    /// The broker delivered this message before (to this or another consumer) without an ack.
    public let redelivered: Bool
    let handle: SettlementHandle

    init(
        body: [UInt8], queue: String, exchange: String, routingKey: String, redelivered: Bool,
        properties: ReceivedProperties, handle: SettlementHandle
    ) {
        self.body = body
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.contentType = properties.contentType
        self.messageID = properties.messageID
        self.correlationID = properties.correlationID
        self.type = properties.type
        self.replyTo = properties.replyTo
        self.headers = properties.headers
        self.timestamp = properties.timestamp
        self.handle = handle
    }

    /// The 1-based attempt number from the `x-cyclorama-attempt` header (1 when absent or invalid).
    public var attempt: Int {
        guard let value = headers[MessagingHeader.attempt], let number = Int(value), number >= 1 else { return 1 }
        return number
    }

    /// How often the broker delivered this message before without it being settled (RabbitMQ's
    /// `x-delivery-count` on quorum queues: consumers that died holding it, or requeues). 0 when absent.
    public var deliveryCount: Int {
        headers[MessagingHeader.deliveryCount].flatMap { Int($0) }.map { max(0, $0) } ?? 0
    }

    /// The broker's delivery limit of the queue this came from (nil: none): at that many
    /// deliveries it dead-letters the message itself.
    public var deliveryLimit: Int? { handle.connection.deliveryLimit(forQueue: queue) }

    /// True when ``retry(reason:)`` would not schedule another attempt but dead-letter the message.
    public var isLastAttempt: Bool { attempt > handle.connection.retryDelays(forQueue: queue).count }

    /// Done: the broker forgets the message.
    public func ack() async throws {
        try await handle.settle(.ack)
    }

    /// Hands the message back: `requeue` puts it back in the queue; otherwise the broker
    /// dead-letters it (into the DLQ when the queue has one, with the broker's `x-death` header).
    public func nack(requeue: Bool) async throws {
        try await handle.settle(.nack(requeue: requeue))
    }

    /// Like `nack`, with AMQP's `basic.reject`.
    public func reject(requeue: Bool) async throws {
        try await handle.settle(.reject(requeue: requeue))
    }

    /// Publishes a copy (with confirm) to this queue's dead-letter queue with the reason in
    /// `x-cyclorama-reason` and the queue in `x-cyclorama-original-queue`, then acks the original.
    /// If the copy is not confirmed this throws and the original stays unsettled (redelivered later).
    public func deadLetter(reason: String) async throws {
        try handle.ensureUnsettled()
        var message = copy()
        message.headers[MessagingHeader.reason] = reason
        message.headers[MessagingHeader.originalQueue] = queue
        let route = handle.connection.deadLetterRoute(forQueue: queue)
        try await handle.connection.publish(message, to: route.exchange, routingKey: route.routingKey)
        try await handle.settle(.ack)
    }

    /// Schedules another attempt through the queue's next delay queue, with `x-cyclorama-attempt`
    /// incremented, then acks the original. Past the last delay it dead-letters with
    /// "gave up after N attempts: <reason>".
    public func retry(reason: String) async throws {
        try handle.ensureUnsettled()
        let delays = handle.connection.retryDelays(forQueue: queue)
        guard attempt <= delays.count else {
            try await deadLetter(reason: "gave up after \(attempt) attempts: \(reason)")
            return
        }
        var message = copy()
        message.headers[MessagingHeader.attempt] = String(attempt + 1)
        message.headers[MessagingHeader.lastRetryReason] = reason
        let delayQueue = QueueDeclaration(name: queue).retryQueueName(delay: delays[attempt - 1])
        // The default exchange routes by queue name straight into the delay queue.
        try await handle.connection.publish(message, to: "", routingKey: delayQueue)
        try await handle.settle(.ack)
    }

    private func copy() -> OutgoingMessage {
        // The broker's own count belongs to this copy's life in the queue, not to the next one's.
        var headers = headers
        headers[MessagingHeader.deliveryCount] = nil
        return OutgoingMessage(
            body: body, contentType: contentType ?? "application/octet-stream", messageID: messageID,
            correlationID: correlationID, type: type, replyTo: replyTo, headers: headers,
            timestamp: timestamp)
    }
}
