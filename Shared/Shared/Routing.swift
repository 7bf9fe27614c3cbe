/// Every exchange, routing key, queue and header name of Cyclorama's broker topology, in one place.
///
/// Commands and events go through durable topic exchanges. Queues are owned by their consumer and named
/// `<service>.<what>`. docs/messages.md lists the same names; a test keeps the two in step.
public enum Routing {
    /// The durable topic exchanges.
    public enum Exchange {
        /// Commands: generation requests, dispatch requests, settings requests.
        public static let commands = "cyclorama.commands"
        /// Events: generation progress and outcome, media updates, settings changes.
        public static let events = "cyclorama.events"
        /// Where rejected messages go (to `<queue>.dlq`, routed by the queue's name). A direct
        /// exchange, declared by the messaging layer; the other two are topic exchanges.
        public static let deadLetter = "cyclorama.dead-letter"

        /// All exchanges Cyclorama declares.
        public static let all = [commands, events, deadLetter]
    }

    /// Routing keys, by message.
    public enum Key {
        public static let generationRequest = "generation.request"
        public static let dispatchRequest = "dispatch.request"
        public static let settingsRequest = "settings.request"
        public static let generationSubmitted = "generation.submitted"
        public static let generationProgressed = "generation.progressed"
        public static let generationRendered = "generation.rendered"
        public static let generationCompleted = "generation.completed"
        public static let generationFailed = "generation.failed"
        public static let mediaUpdated = "media.updated"
        public static let settingsChanged = "settings.changed"
        /// A backend called a job's webhook (checked by the gateway); every dispatcher instance hears it.
        public static let backendWebhook = "backend.webhook"
        /// Binding pattern for every generation event.
        public static let allGenerationEvents = "generation.*"
    }

    /// Consumer-owned durable queues and the routing keys they bind.
    public enum Queue {
        /// prompt-service: generation requests from the gateway and from other systems.
        public static let generationRequests = "prompt-service.generation-requests"
        /// runpod-dispatcher (every instance shares it): dispatch requests.
        public static let dispatchRequests = "runpod-dispatcher.dispatch-requests"
        /// result-ingestor: the dispatcher's GenerationRendered (a result to download and apply).
        public static let generationRendered = "result-ingestor.generation-rendered"
        /// settings-service: settings RPC requests.
        public static let settingsRequests = "settings-service.requests"
        /// api-gateway: every job event, for the ledger and Server-Sent Events.
        public static let jobEvents = "api-gateway.job-events"

        /// runpod-dispatcher: each instance's own temporary queue for ``Key/backendWebhook`` is named
        /// `runpod-dispatcher.webhooks.<instance>`; they share one dead-letter queue, `runpod-dispatcher.webhooks.dlq`.
        public static let webhookNotices = "runpod-dispatcher.webhooks"

        /// The dead-letter queue of `queue`: bound to ``Exchange/deadLetter`` with the queue's name as key
        /// (the same name as Messaging's `QueueDeclaration.deadLetterQueueName`).
        public static func deadLetter(for queue: String) -> String { "\(queue).dlq" }
    }

    /// A queue, the exchange it binds to, and its binding keys.
    public struct Binding: Sendable, Hashable {
        public var queue: String
        public var exchange: String
        public var keys: [String]
        /// Keys the queue was bound with by earlier releases and no longer is: removed wherever they
        /// are still there, so an upgraded broker stops routing what nobody reads.
        public var retiredKeys: [String]

        public init(queue: String, exchange: String, keys: [String], retiredKeys: [String] = []) {
            self.queue = queue
            self.exchange = exchange
            self.keys = keys
            self.retiredKeys = retiredKeys
        }
    }

    /// The standard bindings of the consumer-owned queues.
    public static let bindings: [Binding] = [
        Binding(queue: Queue.generationRequests, exchange: Exchange.commands, keys: [Key.generationRequest]),
        Binding(queue: Queue.dispatchRequests, exchange: Exchange.commands, keys: [Key.dispatchRequest]),
        Binding(queue: Queue.generationRendered, exchange: Exchange.events, keys: [Key.generationRendered]),
        Binding(queue: Queue.settingsRequests, exchange: Exchange.commands, keys: [Key.settingsRequest]),
        // Not `media.updated`: the gateway has nothing to do with it (GenerationCompleted tells it the
        // job ended), and every job's copy would cost a quorum-queue write. It is for other systems.
        Binding(queue: Queue.jobEvents, exchange: Exchange.events, keys: [Key.allGenerationEvents], retiredKeys: [Key.mediaUpdated]),
    ]

    /// AMQP header names Cyclorama sets.
    public enum Header {
        /// On a dead-lettered message: why it was rejected (e.g. `options.shadowStyle: must be one of ...`).
        public static let reason = "x-cyclorama-reason"
    }

    /// The AMQP `content_type` of every Cyclorama message.
    public static let contentType = "application/json"
}

/// Where a message is published: an exchange and a routing key.
///
/// Also the shape of `replyTo` in ``RequestGeneration``: the extra address the publisher wants the
/// job's terminal event on. An empty `exchange` is AMQP's default exchange, which routes to the
/// queue named by `routingKey`.
public struct ReplyAddress: Codable, Sendable, Hashable {
    public var exchange: String
    public var routingKey: String

    public init(exchange: String, routingKey: String) {
        self.exchange = exchange
        self.routingKey = routingKey
    }

    /// Checks the address can be published to without looping back into Cyclorama's commands.
    public func validate(at path: String) throws(ValidationError) {
        // AMQP short strings carry at most 255 bytes.
        if exchange.utf8.count > 255 {
            throw ValidationError(field: "\(path).exchange", reason: "must be at most 255 bytes")
        }
        if routingKey.utf8.count > 255 {
            throw ValidationError(field: "\(path).routingKey", reason: "must be at most 255 bytes")
        }
        if exchange == Routing.Exchange.commands || exchange == Routing.Exchange.deadLetter {
            throw ValidationError(
                field: "\(path).exchange",
                reason: "must not be \(exchange) (events published there would be read as commands or rejects)")
        }
        if exchange.isEmpty && routingKey.isEmpty {
            throw ValidationError(
                field: "\(path).routingKey", reason: "must name a queue when exchange is \"\" (the default exchange)")
        }
    }
}
