import Foundation
import Logging
import Messaging
import ServiceCore
import ServiceSupport
import Shared
import Synchronization
import Timing

/// Deliveries gathered by a timed wait (kept outside it, so a timeout keeps what arrived).
final class Collected: Sendable {
    private let deliveries = Mutex<[Delivery]>([])
    func append(_ delivery: Delivery) -> Int { deliveries.withLock { $0.append(delivery); return $0.count } }
    var all: [Delivery] { deliveries.withLock { $0 } }
}

/// A test's own connection to the real broker: publish raw or typed messages, watch queues.
public final class BrokerProbe: Sendable {
    public let connection: AMQPConnection
    private let runner: Task<Void, any Error>

    /// Connects (declaring Cyclorama's topology plus `queues`) and waits until the session is open.
    /// `url`: another broker address (e.g. a test system's own virtual host).
    public init(queues: [QueueDeclaration] = [], url: String = TestEnvironment.amqpURL) async throws {
        var topology = CycloramaTopology.make()
        topology.merge(Topology(queues: queues))
        let configuration = try AMQPConfiguration(url: url, connectionName: "test-probe")
        let connection = AMQPConnection(configuration: configuration, topology: topology, logger: Logger(label: "test.probe"))
        self.connection = connection
        runner = Task { try await connection.run() }
        try await connection.waitUntilConnected(timeout: .seconds(30))
    }

    /// A temporary queue bound to `exchange` with `routingKey`, deleted when the probe disconnects.
    public static func listeningQueue(exchange: String, routingKey: String) -> QueueDeclaration {
        QueueDeclaration(
            name: TestEnvironment.uniqueName("test.listen"), kind: .temporary,
            bindings: [QueueBinding(exchange: exchange, routingKey: routingKey)],
            deadLetter: false, retryDelays: [], deliveryLimit: nil)
    }

    /// Publishes raw bytes, as another system would.
    public func publish(_ body: [UInt8], exchange: String, routingKey: String, type: String? = nil, replyTo: String? = nil) async throws {
        try await connection.publish(
            OutgoingMessage(body: body, messageID: UUID().uuidString, type: type, replyTo: replyTo),
            to: exchange, routingKey: routingKey)
    }

    /// The first delivery on `queue` that `matches`, acknowledged; others are put back for their owners.
    /// Nil when none arrives within `timeout`.
    public func first(
        on queue: String, timeout: Duration = .seconds(20), where matches: @escaping @Sendable (Delivery) -> Bool = { _ in true }
    ) async throws -> Delivery? {
        try await collect(1, on: queue, timeout: timeout, where: matches).first
    }

    /// Up to `count` deliveries on `queue` that `matches`, acknowledged, in arrival order; others are put
    /// back for their owners. Fewer when `timeout` passes first. One consumer serves the whole wait, so
    /// this also works on temporary queues that vanish with their last consumer.
    public func collect(
        _ count: Int, on queue: String, timeout: Duration = .seconds(20),
        where matches: @escaping @Sendable (Delivery) -> Bool = { _ in true }
    ) async throws -> [Delivery] {
        // Others are held, not put back at once: a requeued message comes straight back to this
        // consumer, which would then spin on the same few instead of reaching the ones it waits for.
        // So the window is wide, and what was held goes back once, at the end.
        let deliveries = connection.consume(queue: queue, prefetch: UInt16(min(60_000, max(64, count * 2 + 512))))
        let found = Collected()
        let held = Collected()
        _ = await withTimeout(timeout) {
            for try await delivery in deliveries {
                if matches(delivery) {
                    try await delivery.ack()
                    if found.append(delivery) >= count { return true }
                } else {
                    _ = held.append(delivery)
                }
            }
            return false
        }
        for delivery in held.all { try? await delivery.nack(requeue: true) }
        deliveries.stop()
        return found.all
    }

    /// The first message on the dead-letter queue of `queue` whose body contains `marker`.
    public func deadLettered(from queue: String, containing marker: String, timeout: Duration = .seconds(20)) async throws -> Delivery? {
        let dlq = QueueDeclaration(name: queue).deadLetterQueueName
        return try await first(on: dlq, timeout: timeout) { delivery in
            String(decoding: delivery.body, as: UTF8.self).contains(marker)
        }
    }

    public func close() async {
        connection.shutdown()
        _ = await runner.result
    }
}

extension BrokerProbe {
    /// A temporary, unbound queue to receive replies on (the default exchange routes by its name).
    public static func replyQueue() -> QueueDeclaration {
        QueueDeclaration(
            name: TestEnvironment.uniqueName("test.replies"), kind: .temporary,
            deadLetter: false, retryDelays: [], deliveryLimit: nil)
    }
}
