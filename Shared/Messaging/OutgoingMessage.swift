/// A message to publish. Always sent persistent (delivery mode 2).
public struct OutgoingMessage: Sendable {
    public var body: [UInt8]
    public var contentType: String
    /// Unique per message; consumers deduplicate by it.
    public var messageID: String?
    public var correlationID: String?
    /// The message type, e.g. `cyclorama.generation.request`.
    public var type: String?
    public var replyTo: String?
    /// Application headers, sent as AMQP long strings.
    public var headers: [String: String]
    /// Per-message TTL in milliseconds (the AMQP `expiration` property); nil: no expiry.
    public var expiration: Duration?
    /// Seconds since 1970; nil: not set.
    public var timestamp: UInt64?

    public init(
        body: [UInt8], contentType: String = "application/json", messageID: String? = nil,
        correlationID: String? = nil, type: String? = nil, replyTo: String? = nil,
        headers: [String: String] = [:], expiration: Duration? = nil, timestamp: UInt64? = nil
    ) {
        self.body = body
        self.contentType = contentType
        self.messageID = messageID
        self.correlationID = correlationID
        self.type = type
        self.replyTo = replyTo
        self.headers = headers
        self.expiration = expiration
        self.timestamp = timestamp
    }
}

/// The properties of a received message, copied out of rabbitmq-c's buffers.
struct ReceivedProperties: Sendable {
    var contentType: String?
    var messageID: String?
    var correlationID: String?
    var type: String?
    var replyTo: String?
    var headers: [String: String] = [:]
    var timestamp: UInt64?
}
