import Logging
import Messaging
import Metrics
import ServiceCore
import ServiceLifecycle
import Shared
import Timing

/// What a handler decided about one message.
public enum HandlingOutcome: Sendable, Equatable {
    /// Side effects are committed: acknowledge.
    case done
    /// A transient failure: try again later through the queue's delay queues (then the DLQ).
    case retry(reason: String)
    /// The message can never succeed: move it to the dead-letter queue with the reason (its job is
    /// ended first, by the consumer's give-up step).
    case deadLetter(reason: String)
    /// The message is not to be trusted (it names a job that is not its own, or one nobody accepted),
    /// or must not speak for the job it names: move it to the dead-letter queue with the reason and
    /// leave that job alone.
    case refuse(reason: String)
    /// Not handled here (e.g. this instance is shutting down): give it back to the queue at once for
    /// another consumer, without counting a retry.
    case requeue
}

/// An attempt at a message took longer than its consumer's ``MessageConsumer/handlingLimit``.
public struct HandlingTimedOut: Error, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "handling did not finish within \(limit)" }
}

/// Why a message was refused before it reached its handler.
public struct InvalidMessage: Error, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Why a consumer is about to dead-letter a message it could read: what a ``MessageConsumer``'s
/// give-up step gets, to end the message's job before the message goes to the dead-letter queue.
public struct GiveUp: Sendable {
    /// For people: why the message is given up.
    public var reason: String
    /// True when retries were used up (or the broker kept redelivering it); false when the handler
    /// refused the message outright.
    public var exhausted: Bool

    public init(reason: String, exhausted: Bool) {
        self.reason = reason
        self.exhausted = exhausted
    }
}

/// The consumer loop every service uses: decode → validate → handle → settle.
///
/// Concurrency is bounded by `prefetch` (the broker never has more unacknowledged deliveries out).
/// A message that does not decode or validate goes to the queue's DLQ with the reason. What the
/// handler throws decides the rest (docs/reliability.md):
///
/// - a dependency outage (``Outage/isOutage(_:)``: PostgreSQL, Redis, the broker or the
///   settings-service away) is **waited out**: the message is held and handled again after a
///   backoff with jitter (1 s doubling to 15 s), for as long as the outage lasts, without using up
///   a retry; on graceful shutdown it is handed back instead;
/// - anything else is retried through the queue's delay queues, and once those are used up the
///   message is given up.
///
/// Before a message it could read is dead-lettered (retries used up, the handler answered
/// ``HandlingOutcome/deadLetter(reason:)``, or the broker redelivered it so often that it is about
/// to dead-letter it itself), `giveUp` runs — for job messages it ends the job with
/// GenerationFailed — so that no message sits in a dead-letter queue while its job stays open.
/// On graceful shutdown the loop stops taking deliveries and lets the ones it holds finish;
/// anything unsettled when the process dies is redelivered.
///
/// One attempt at a message may take at most ``handlingLimit``: a handler stuck on a call that
/// never returns (a database call on a connection that died mid-query) must not hold its message,
/// and so its job, for ever.
public struct MessageConsumer<Message: Sendable>: Service {
    public typealias Decode = @Sendable (Delivery) throws -> Message
    public typealias Handle = @Sendable (Message, Delivery) async throws -> HandlingOutcome
    public typealias GiveUpStep = @Sendable (Message, GiveUp) async throws -> Void

    let connection: AMQPConnection
    let queue: String
    let prefetch: UInt16
    let decode: Decode
    let handle: Handle
    let giveUp: GiveUpStep?
    let logger: Logger
    /// The first and the longest wait while a dependency is away.
    public var outageBackoff = (initial: Duration.seconds(1), maximum: Duration.seconds(15))
    /// The longest one attempt at a message may take; nil for no limit (handlers that follow a job
    /// for its whole life, like the dispatcher's). An attempt still running then is cancelled and
    /// abandoned — not awaited, since what is stuck may ignore cancellation — and the message is
    /// handled again after a backoff, as during an outage (a call that never returns is a dependency
    /// that stopped answering), without using up a retry; the job's deadline bounds how long. The
    /// abandoned attempt may still finish later, while the next one runs: a handler with a limit
    /// must be safe to run twice at once (the ingestor's apply locks the job's row and is idempotent
    /// by job) and should not publish once cancelled.
    public var handlingLimit: Duration?

    public init(
        connection: AMQPConnection,
        queue: String,
        prefetch: UInt16 = 8,
        handlingLimit: Duration? = .seconds(120),
        logger: Logger,
        decode: @escaping Decode,
        giveUp: GiveUpStep? = nil,
        handle: @escaping Handle
    ) {
        self.connection = connection
        self.queue = queue
        self.prefetch = prefetch
        self.handlingLimit = handlingLimit
        self.logger = logger
        self.decode = decode
        self.giveUp = giveUp
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

    /// Runs one delivery through decode, handler and settlement. Never throws: every path settles the
    /// message or hands it back to the queue.
    func process(_ delivery: Delivery) async {
        var logger = logger
        logger[metadataKey: "queue"] = "\(queue)"
        logger[metadataKey: "messageId"] = "\(delivery.messageID ?? "-")"
        logger[metadataKey: "correlationId"] = "\(delivery.correlationID ?? "-")"
        let message: Message
        do {
            message = try decode(delivery)
        } catch {
            await settle(delivery, .deadLetter(reason: (error as? InvalidMessage)?.reason ?? "\(error)"), logger: logger)
            return
        }
        // One delivery short of the broker's limit: give it up here, with a reason and its job
        // ended, rather than let the broker dead-letter it silently next time.
        if let limit = delivery.deliveryLimit, delivery.deliveryCount >= limit - 1 {
            let reason = "delivered \(delivery.deliveryCount + 1) times without being settled (a consumer kept stopping while handling it, or could not settle it)"
            await giveUpAndSettle(delivery, message, GiveUp(reason: reason, exhausted: true), logger: logger)
            return
        }
        let outcome = await handleWaitingOutOutages(message, delivery, logger: logger)
        switch outcome {
        case .retry(let reason) where delivery.isLastAttempt:
            await giveUpAndSettle(
                delivery, message, GiveUp(reason: "gave up after \(delivery.attempt) attempts: \(reason)", exhausted: true),
                logger: logger)
        case .deadLetter(let reason):
            await giveUpAndSettle(delivery, message, GiveUp(reason: reason, exhausted: false), logger: logger)
        case .refuse(let reason):
            logger.warning("refused a message; its job, if any, is left alone", metadata: ["reason": "\(reason)"])
            await settle(delivery, .deadLetter(reason: reason), logger: logger)
        default:
            await settle(delivery, outcome, logger: logger)
        }
    }

    /// Runs the handler; while it fails because a dependency is away, waits and runs it again.
    func handleWaitingOutOutages(_ message: Message, _ delivery: Delivery, logger: Logger) async -> HandlingOutcome {
        do {
            return try await waitingOutOutages("handling the message", logger: logger) {
                try await attempt(message, delivery, logger: logger)
            }
        } catch is CancellationError {
            // Shutting down while waiting: hand it back without counting a retry.
            return .requeue
        } catch {
            return .retry(reason: "\(error)")
        }
    }

    /// One run of the handler, within ``handlingLimit``.
    func attempt(_ message: Message, _ delivery: Delivery, logger: Logger) async throws -> HandlingOutcome {
        guard let limit = handlingLimit else { return try await handle(message, delivery) }
        let handle = self.handle
        let work = Task { try await handle(message, delivery) }
        guard let result = await awaitResult(of: work, atMost: limit) else {
            work.cancel()
            try Task.checkCancellation()
            Counter(label: "cyclorama_handling_abandoned_total", dimensions: [("queue", queue)]).increment()
            logger.error(
                "the handler did not finish in time; abandoned it (it may still finish) and handling the message again",
                metadata: ["limit": "\(limit)", "attempt": "\(delivery.attempt)"])
            throw HandlingTimedOut(limit: limit)
        }
        return try result.get()
    }

    /// Runs `body`; an outage is waited out (backoff with jitter, no limit) and `body` run again.
    /// Other errors are rethrown; graceful shutdown while waiting throws `CancellationError`.
    func waitingOutOutages<T: Sendable>(_ what: String, logger: Logger, _ body: () async throws -> T) async throws -> T {
        var backoff = Backoff(initial: outageBackoff.initial, maximum: outageBackoff.maximum)
        let clock = ContinuousClock()
        var since: ContinuousClock.Instant?
        var lastReport = clock.now
        while true {
            do {
                let result = try await body()
                if let since {
                    logger.notice("dependency back; carried on", metadata: ["what": "\(what)", "waited": "\(clock.now - since)"])
                }
                return result
            } catch where Outage.isOutage(error) {
                if since == nil {
                    since = clock.now
                    logger.warning(
                        "a dependency is away; holding the message until it is back",
                        metadata: ["what": "\(what)", "error": "\(error)"])
                } else if clock.now - lastReport > .seconds(60) {
                    lastReport = clock.now
                    logger.warning("still waiting for a dependency", metadata: ["what": "\(what)", "error": "\(error)"])
                }
                Counter(label: "cyclorama_outage_waits_total", dimensions: [("queue", queue)]).increment()
                let delay = backoff.next()
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
    }

    /// Ends the message's job (the give-up step, waiting out outages) and then dead-letters it.
    /// If the job cannot be ended the message is handed back to the queue (``handBack(_:logger:)``).
    func giveUpAndSettle(_ delivery: Delivery, _ message: Message, _ giveUp: GiveUp, logger: Logger) async {
        if let step = self.giveUp {
            do {
                try await waitingOutOutages("ending the job of a given-up message", logger: logger) { try await step(message, giveUp) }
            } catch is CancellationError {
                await settle(delivery, .requeue, logger: logger)
                return
            } catch {
                logger.error(
                    "could not end the job of a given-up message; handing it back to the queue",
                    metadata: ["reason": "\(giveUp.reason)", "error": "\(error)"])
                await handBack(delivery, logger: logger)
                return
            }
        }
        await settle(delivery, .deadLetter(reason: giveUp.reason), logger: logger)
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
            case .deadLetter(let reason), .refuse(let reason):
                logger.warning("dead-lettered", metadata: ["reason": "\(reason)"])
                try await delivery.deadLetter(reason: reason)
                Counter(label: "cyclorama_messages_handled_total", dimensions: [("queue", queue), ("outcome", "dead_letter")]).increment()
            }
        } catch let error as AMQPError where error.code == .deliveryStale || error.code == .shutDown {
            // Its channel is gone: the broker redelivers it to whoever consumes next.
            logger.warning("could not settle; the broker redelivers it", metadata: ["error": "\(error)"])
        } catch let error as PublishError where error.code == .shutDown {
            // Shutting down: the connection closes and the broker redelivers it.
            logger.warning("could not settle while shutting down; the broker redelivers it", metadata: ["error": "\(error)"])
        } catch {
            // The copy to the dead-letter or delay queue was not confirmed (or the ack was not sent):
            // the message is still ours, and the broker would hold it until this channel closes. A
            // copy that timed out may have landed all the same, so the message may be handled twice
            // (at-least-once, as after any redelivery: handlers are idempotent by job).
            logger.error("could not settle; handing it back to the queue", metadata: ["error": "\(error)"])
            await handBack(delivery, logger: logger)
        }
    }

    /// Gives an unsettled delivery back to its queue after a pause that grows with its deliveries,
    /// so that it is handled again soon but a route that stays broken does not spin. Left unsettled,
    /// it would wait (holding a prefetch slot) until the channel closes, which may be never.
    func handBack(_ delivery: Delivery, logger: Logger) async {
        var backoff = Backoff(initial: outageBackoff.initial, maximum: outageBackoff.maximum)
        var pause = backoff.next()
        for _ in 0..<min(delivery.deliveryCount, 16) { pause = backoff.next() }
        // Cancelled, or graceful shutdown: hand it back at once.
        try? await cancelWhenGracefulShutdown { [pause] in try await Task.sleep(for: pause) }
        do {
            try await delivery.nack(requeue: true)
        } catch {
            logger.warning("could not hand the message back; the broker redelivers it once the channel closes", metadata: ["error": "\(error)"])
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
