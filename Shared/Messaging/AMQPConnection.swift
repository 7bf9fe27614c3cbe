import Logging
import ServiceLifecycle

/// A connection to RabbitMQ that keeps itself alive: a `Service` to run in a `ServiceGroup`.
///
/// `run()` connects, declares the topology, and reconnects with exponential backoff and jitter until
/// graceful shutdown; after each reconnection it declares the topology again, re-sends unconfirmed
/// messages and re-subscribes consumers. All rabbitmq-c calls run on one dedicated thread per
/// connection (see docs/messaging.md).
public final class AMQPConnection: Service, Sendable {
    let core: ConnectionCore
    private let nextConsumerID = Locked(0)

    public init(configuration: AMQPConfiguration, topology: Topology = Topology(), logger: Logger) {
        core = ConnectionCore(configuration: configuration, topology: topology, logger: logger)
    }

    public var configuration: AMQPConfiguration { core.configuration }

    /// Runs the connection until graceful shutdown, task cancellation or `shutdown()`.
    /// Throws only for fatal errors (the broker rejected the topology) — the process should not go on.
    public func run() async throws {
        try core.start()
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await core.waitUntilExited()
            } onCancel: {
                core.requestStop()
            }
        } onGracefulShutdown: {
            self.core.requestStop()
        }
    }

    /// Starts a graceful shutdown without a `ServiceGroup`: consumers stop, outstanding confirms get
    /// `shutdownDrainTimeout`, then the connection closes and `run()` returns.
    public func shutdown() {
        core.requestStop()
    }

    /// Whether a session with the broker is open right now (for /healthz).
    public var isConnected: Bool { core.shared.withLock { $0.connected } }

    /// Waits until connected; throws `AMQPError.notConnected` after `timeout`.
    public func waitUntilConnected(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !isConnected {
            if core.shared.withLock({ $0.exited }) { throw AMQPError(.shutDown, "the connection shut down") }
            guard ContinuousClock.now < deadline else {
                throw AMQPError(.notConnected, "no connection to \(configuration.addresses.map(\.description).joined(separator: ", ")) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Publishes a persistent message and returns once the broker confirmed it.
    ///
    /// Waits up to `publishTimeout` in total (including for a reconnection). A message that was sent but
    /// not confirmed when the connection dropped is sent again after reconnecting, so a consumer can see
    /// it twice (deduplicate by `messageID`). With `mandatory`, a message that no queue takes fails.
    /// - Throws: `PublishError` (nacked, unroutable, timeout, channelClosed, shutDown). Never drops silently.
    public func publish(
        _ message: OutgoingMessage, to exchange: String, routingKey: String, mandatory: Bool = true
    ) async throws {
        try await core.publish(message, to: exchange, routingKey: routingKey, mandatory: mandatory)
    }

    /// Consumes a queue with manual acks and at most `prefetch` unsettled deliveries in flight.
    ///
    /// The sequence survives reconnections (it re-subscribes; deliveries from the old channel can no
    /// longer be settled and are redelivered by the broker). It ends on `DeliverySequence.stop()`, on
    /// graceful shutdown, or with an `AMQPError.consumerClosed` if the broker refuses the consumer.
    public func consume(queue: String, prefetch: UInt16 = 10) -> DeliverySequence {
        let id = nextConsumerID.withLock { next in
            next += 1
            return next
        }
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let core = self.core
        continuation.onTermination = { termination in
            // The iterating task was cancelled or dropped the sequence (e.g. `cancelOnGracefulShutdown`):
            // in-flight deliveries may still be settled for a while, buffered ones never will.
            if case .cancelled = termination { _ = core.enqueue(.stopConsumer(id: id, closeChannel: true)) }
        }
        let consumer = ConsumerState(id: id, queue: queue, prefetch: max(1, prefetch), continuation: continuation)
        if !core.enqueue(.startConsumer(consumer)) {
            continuation.finish(throwing: AMQPError(.shutDown, "the connection shut down"))
        }
        return DeliverySequence(stream: stream, core: core, consumerID: id)
    }

    /// Declares more exchanges and queues now (and again after each reconnection).
    public func declare(_ topology: Topology) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if !core.enqueue(.declare(topology, continuation)) {
                continuation.resume(throwing: AMQPError(.shutDown, "the connection shut down"))
            }
        }
    }

    /// Deletes queues and exchanges (tests clean up with it). Missing ones are not an error.
    public func delete(queues: [String] = [], exchanges: [String] = []) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if !core.enqueue(.delete(queues: queues, exchanges: exchanges, continuation)) {
                continuation.resume(throwing: AMQPError(.shutDown, "the connection shut down"))
            }
        }
    }
}

extension ConnectionCore {
    func settle(_ handle: SettlementHandle, _ settlement: Settlement) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if !enqueue(.settle(handle, settlement, continuation)) {
                continuation.resume(throwing: AMQPError(.deliveryStale, "the connection shut down; the broker redelivers it"))
            }
        }
    }

    func publish(_ message: OutgoingMessage, to exchange: String, routingKey: String, mandatory: Bool = true) async throws {
        let deadline = ContinuousClock.now + configuration.publishTimeout
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let pending = PendingPublish(
                message: message, exchange: exchange, routingKey: routingKey, mandatory: mandatory,
                deadline: deadline, continuation: continuation)
            if !enqueue(.publish(pending)) {
                pending.fail(.shutDown, "the connection shut down", core: self)
            }
        }
    }

    /// Where `Delivery.deadLetter` sends a message consumed from `queue`.
    func deadLetterRoute(forQueue queue: String) -> (exchange: String, routingKey: String) {
        shared.withLock { ($0.topology.deadLetterExchange, $0.topology.queue(named: queue)?.deadLetterRoutingKey ?? queue) }
    }

    func retryDelays(forQueue queue: String) -> [Duration] {
        shared.withLock { $0.topology.queue(named: queue)?.retryDelays ?? [] }
    }

    func deliveryLimit(forQueue queue: String) -> Int? {
        shared.withLock { $0.topology.queue(named: queue).flatMap { $0.kind == .quorum ? $0.deliveryLimit : nil } }
    }
}

extension AMQPConnection {
    /// Cuts the TCP connection abruptly, as a crash or network failure would (for tests).
    func breakConnectionForTesting() {
        _ = core.enqueue(.breakConnection)
    }
}
