import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Shared

/// What a handler decided about one message.
public enum HandlingOutcome: Sendable, Equatable {
    /// Side effects are committed: acknowledge.
    case done
    /// A transient failure: try again later through the queue's delay queues (then the DLQ).
    case retry(reason: String)
    /// The message can never succeed: move it to the dead-letter queue with the reason.
    case deadLetter(reason: String)
    /// Not handled here (e.g. this instance is shutting down): give it back to the queue at once for
    /// another consumer, without counting a retry.
    case requeue
}

/// Why a message was refused before it reached its handler.
public struct InvalidMessage: Error, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The consumer loop every service uses: decode → validate → handle → settle.
///
/// Concurrency is bounded by `prefetch` (the broker never has more unacknowledged deliveries out).
/// A message that does not decode or validate goes to the queue's DLQ with the reason; a handler
/// that throws gets a retry with backoff. On graceful shutdown the loop stops taking deliveries and
/// lets the ones it holds finish; anything unsettled when the process dies is redelivered.
public struct MessageConsumer<Message: Sendable>: Service {
    public typealias Decode = @Sendable (Delivery) throws -> Message
    public typealias Handle = @Sendable (Message, Delivery) async throws -> HandlingOutcome

    let connection: AMQPConnection
    let queue: String
    let prefetch: UInt16
    let decode: Decode
    let handle: Handle
    let logger: Logger

    public init(
        connection: AMQPConnection,
        queue: String,
        prefetch: UInt16 = 8,
        logger: Logger,
        decode: @escaping Decode,
        handle: @escaping Handle
    ) {
        self.connection = connection
        self.queue = queue
        self.prefetch = prefetch
        self.logger = logger
        self.decode = decode
        self.handle = handle
    }

    public func run() async throws {
        let deliveries = connection.consume(queue: queue, prefetch: prefetch)
        logger.info("consuming", metadata: ["queue": "\(queue)", "prefetch": "\(prefetch)"])
        await withDiscardingTaskGroup { group in
            do {
                for try await delivery in deliveries.cancelOnGracefulShutdown() {
                    group.addTask { await process(delivery) }
                }
            } catch {
                logger.error("delivery stream failed", metadata: ["queue": "\(queue)", "error": "\(error)"])
            }
        }
        logger.info("stopped consuming", metadata: ["queue": "\(queue)"])
    }

    /// Runs one delivery through decode, handler and settlement. Never throws: every path settles or
    /// leaves the message unsettled for the broker to redeliver.
    func process(_ delivery: Delivery) async {
        var logger = logger
        logger[metadataKey: "queue"] = "\(queue)"
        logger[metadataKey: "messageId"] = "\(delivery.messageID ?? "-")"
        logger[metadataKey: "correlationId"] = "\(delivery.correlationID ?? "-")"
        let outcome: HandlingOutcome
        do {
            let message: Message
            do {
                message = try decode(delivery)
            } catch {
                outcome = .deadLetter(reason: (error as? InvalidMessage)?.reason ?? "\(error)")
                await settle(delivery, outcome, logger: logger)
                return
            }
            outcome = try await handle(message, delivery)
        } catch {
            outcome = .retry(reason: "\(error)")
        }
        await settle(delivery, outcome, logger: logger)
    }

    func settle(_ delivery: Delivery, _ outcome: HandlingOutcome, logger: Logger) async {
        do {
            switch outcome {
            case .done:
                try await delivery.ack()
                Counter(label: "cyclorama_messages_handled_total", dimensions: [("queue", queue), ("outcome", "done")]).increment()
            case .retry(let reason):
                logger.warning("retrying", metadata: ["attempt": "\(delivery.attempt)", "reason": "\(reason)"])
                try await delivery.retry(reason: reason)
                Counter(label: "cyclorama_messages_handled_total", dimensions: [("queue", queue), ("outcome", "retry")]).increment()
            case .requeue:
                try await delivery.nack(requeue: true)
                Counter(label: "cyclorama_messages_handled_total", dimensions: [("queue", queue), ("outcome", "requeue")]).increment()
            case .deadLetter(let reason):
                logger.warning("dead-lettered", metadata: ["reason": "\(reason)"])
                try await delivery.deadLetter(reason: reason)
                Counter(label: "cyclorama_messages_handled_total", dimensions: [("queue", queue), ("outcome", "dead_letter")]).increment()
            }
        } catch {
            // The broker redelivers an unsettled message once our channel closes; nothing is lost.
            logger.error("could not settle; the broker will redeliver", metadata: ["error": "\(error)"])
        }
    }
}

extension MessageConsumer where Message: CycloramaMessage {
    /// A consumer for a queue whose handling is not built yet: valid messages are dead-lettered with
    /// `reason` (so nothing is lost and they can be replayed later), invalid ones with their own reason.
    public static func deadLettering(
        _ type: Message.Type, connection: AMQPConnection, queue: String, logger: Logger, reason: String
    ) -> MessageConsumer<Message> {
        MessageConsumer(
            connection: connection, queue: queue, logger: logger, decode: decodeDelivery(Message.self),
            handle: { _, _ in .deadLetter(reason: reason) })
    }
}
