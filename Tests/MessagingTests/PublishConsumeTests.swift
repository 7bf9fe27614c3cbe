import Foundation
import Logging
import Testing
@testable import Messaging

/// Publish with confirm, consume, ack — against the real broker.
@Suite struct PublishConsumeTests {
    let exchange = BrokerFixture.uniqueName("ex")
    let queueName = BrokerFixture.uniqueName("q")

    var topology: Topology {
        Topology(
            exchanges: [ExchangeDeclaration(name: exchange)],
            queues: [QueueDeclaration(name: queueName, bindings: [QueueBinding(exchange: exchange, routingKey: "job.#")])])
    }

    private func cleanUp(_ running: RunningConnection) async throws {
        try await running.connection.delete(
            queues: topology.queues.flatMap(BrokerFixture.queueNames), exchanges: [exchange])
        try await running.stop()
    }

    @Test func publishedMessageIsConsumedWithItsPropertiesAndAcked() async throws {
        let running = try await RunningConnection(name: "publish-consume", topology: topology)
        let message = OutgoingMessage(
            body: Array("{\"hello\":1}".utf8), messageID: "m-1", correlationID: "c-1", type: "test.hello",
            replyTo: "replies", headers: ["tenant": "acme"], timestamp: 1_700_000_000)
        try await running.connection.publish(message, to: exchange, routingKey: "job.created")

        let inbox = Inbox(running.connection.consume(queue: queueName, prefetch: 5))
        let delivery = try #require(try await inbox.next())
        #expect(delivery.text == "{\"hello\":1}")
        #expect(delivery.messageID == "m-1")
        #expect(delivery.correlationID == "c-1")
        #expect(delivery.type == "test.hello")
        #expect(delivery.replyTo == "replies")
        #expect(delivery.contentType == "application/json")
        #expect(delivery.headers["tenant"] == "acme")
        #expect(delivery.timestamp == 1_700_000_000)
        #expect(delivery.exchange == exchange)
        #expect(delivery.routingKey == "job.created")
        #expect(delivery.queue == queueName)
        #expect(delivery.attempt == 1)
        #expect(!delivery.redelivered)
        try await delivery.ack()
        await #expect(throws: AMQPError.self) { try await delivery.ack() }
        // Acked: the broker does not deliver it again.
        #expect(try await inbox.next(timeout: .milliseconds(500)) == nil)
        try await cleanUp(running)
    }

    @Test func manyConfirmedPublishesAllArrive() async throws {
        let running = try await RunningConnection(name: "publish-many", topology: topology)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await running.connection.publish(BrokerFixture.message("\(index)"), to: exchange, routingKey: "job.x")
                }
            }
            try await group.waitForAll()
        }
        let inbox = Inbox(running.connection.consume(queue: queueName, prefetch: 50))
        var seen = Set<String>()
        while let delivery = try await inbox.next(timeout: .seconds(15)) {
            seen.insert(delivery.text)
            try await delivery.ack()
            if seen.count == 200 { break }
        }
        #expect(seen == Set((0..<200).map(String.init)))
        try await cleanUp(running)
    }

    @Test func unroutableAndMissingExchangeFailLoudly() async throws {
        let running = try await RunningConnection(name: "publish-fail", topology: topology)
        await #expect {
            try await running.connection.publish(BrokerFixture.message("x"), to: exchange, routingKey: "nobody.listens")
        } throws: { ($0 as? PublishError)?.code == .unroutable }
        await #expect {
            try await running.connection.publish(BrokerFixture.message("x"), to: exchange + ".missing", routingKey: "job.x")
        } throws: { ($0 as? PublishError)?.code == .channelClosed }
        // The publisher recovers its channel: the next publish is confirmed.
        try await running.connection.publish(BrokerFixture.message("after"), to: exchange, routingKey: "job.x")
        let inbox = Inbox(running.connection.consume(queue: queueName))
        let after = try #require(try await inbox.next())
        #expect(after.text == "after")
        try await after.ack()
        try await cleanUp(running)
    }

    /// A binding an earlier release made and this one retired is removed when the queue is declared
    /// again (an upgraded broker stops routing it), and removing one that is not there is no error.
    @Test func aRetiredBindingIsRemovedOnTheNextDeclaration() async throws {
        let old = Topology(
            exchanges: [ExchangeDeclaration(name: exchange)],
            queues: [QueueDeclaration(name: queueName, bindings: [
                QueueBinding(exchange: exchange, routingKey: "job.#"), QueueBinding(exchange: exchange, routingKey: "media.updated"),
            ])])
        let running = try await RunningConnection(name: "retired-binding", topology: old)
        try await running.connection.publish(BrokerFixture.message("routed"), to: exchange, routingKey: "media.updated")
        var upgraded = topology
        upgraded.queues[0].retiredBindings = [QueueBinding(exchange: exchange, routingKey: "media.updated")]
        try await running.connection.declare(upgraded)
        try await running.connection.declare(upgraded)
        await #expect {
            try await running.connection.publish(BrokerFixture.message("x"), to: exchange, routingKey: "media.updated")
        } throws: { ($0 as? PublishError)?.code == .unroutable }
        try await running.connection.publish(BrokerFixture.message("kept"), to: exchange, routingKey: "job.x")
        let inbox = Inbox(running.connection.consume(queue: queueName))
        for expected in ["routed", "kept"] {
            let delivery = try #require(try await inbox.next())
            #expect(delivery.text == expected)
            try await delivery.ack()
        }
        try await cleanUp(running)
    }

    /// A requester's `replyTo` may name an exchange that does not exist, in any spelling: the broker
    /// then closes the publishing channel, and only that publish may fail. Every other publish in
    /// flight at that moment is sent again and confirmed.
    @Test(arguments: ["erp.events.missing", "ünknown-\u{1F4A5}-'quoted'", String(repeating: "é", count: 120)])
    func aMissingExchangeFailsOnlyItsOwnPublish(_ missing: String) async throws {
        let running = try await RunningConnection(name: "publish-missing", topology: topology)
        let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for index in 0..<60 {
                group.addTask {
                    do {
                        if index == 20 {
                            try await running.connection.publish(BrokerFixture.message("bad"), to: missing, routingKey: "job.x")
                        } else {
                            try await running.connection.publish(BrokerFixture.message(String(index)), to: exchange, routingKey: "job.x")
                        }
                        return (String(index), true)
                    } catch let error as PublishError where error.code == .channelClosed {
                        return (String(index), false)
                    }
                }
            }
            return try await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.filter { !$0.value }.keys.sorted() == ["20"], "only the publish to the missing exchange failed")
        let inbox = Inbox(running.connection.consume(queue: queueName, prefetch: 100))
        var seen = Set<String>()
        while seen.count < 59, let delivery = try await inbox.next(timeout: .seconds(15)) {
            seen.insert(delivery.text)
            try await delivery.ack()
        }
        #expect(seen == Set((0..<60).filter { $0 != 20 }.map(String.init)))
        try await cleanUp(running)
    }

    @Test func unackedMessageIsRedeliveredAfterTheConsumersConnectionDies() async throws {
        let running = try await RunningConnection(name: "redeliver", topology: topology)
        try await running.connection.publish(BrokerFixture.message("precious"), to: exchange, routingKey: "job.x")
        let inbox = Inbox(running.connection.consume(queue: queueName, prefetch: 1))
        let first = try #require(try await inbox.next())
        #expect(!first.redelivered)

        running.connection.breakConnectionForTesting()  // as if the process or network died: no ack sent
        let again = try #require(try await inbox.next(timeout: .seconds(20)))
        #expect(again.text == "precious")
        #expect(again.redelivered)
        await #expect {
            try await first.ack()
        } throws: { ($0 as? AMQPError)?.code == .deliveryStale }
        try await again.ack()
        #expect(running.connection.isConnected)
        try await cleanUp(running)
    }

    @Test func publisherRecoversFromABrokenConnection() async throws {
        let running = try await RunningConnection(name: "publish-recover", topology: topology)
        running.connection.breakConnectionForTesting()
        try await running.connection.publish(BrokerFixture.message("through"), to: exchange, routingKey: "job.x")
        let inbox = Inbox(running.connection.consume(queue: queueName))
        let through = try #require(try await inbox.next())
        #expect(through.text == "through")
        try await through.ack()
        try await cleanUp(running)
    }

    @Test func idleConnectionKeepsItselfAliveWithHeartbeats() async throws {
        // With a 3 s heartbeat the broker drops a silent client after about 6 s; watched for 10 s.
        // (At 1 s, a stall of a second on a loaded machine could drop a client that does beat.)
        let running = try await RunningConnection(name: "heartbeat", topology: topology, heartbeat: 3)
        let until = ContinuousClock.now + .seconds(10)
        var stayedConnected = true
        while ContinuousClock.now < until {
            stayedConnected = stayedConnected && running.connection.isConnected
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(stayedConnected)
        try await running.connection.publish(BrokerFixture.message("alive"), to: exchange, routingKey: "job.x")
        try await cleanUp(running)
    }

    /// A node that does not answer is passed over for the next one listed (a cluster with a node down).
    @Test func aDeadNodeIsPassedOverForTheNextOne() async throws {
        var configuration = try AMQPConfiguration(url: BrokerFixture.url, connectionName: "failover")
        configuration.addresses.insert(BrokerAddress(host: "127.0.0.1", port: 1), at: 0)
        configuration.reconnectDelay = .milliseconds(20)
        var logger = Logger(label: "test.failover")
        logger.logLevel = .critical
        let queue = "failover-\(UUID().uuidString.prefix(8))"
        let connection = AMQPConnection(
            configuration: configuration, topology: Topology(queues: [QueueDeclaration(name: queue, kind: .classic, deadLetter: false, retryDelays: [])]),
            logger: logger)
        let task = Task { try await connection.run() }
        try await connection.waitUntilConnected(timeout: .seconds(10))
        let inbox = Inbox(try connection.consume(queue: queue, prefetch: 1))
        try await connection.publish(BrokerFixture.message("via-the-second-node"), to: "", routingKey: queue)
        let got = try await inbox.next(timeout: .seconds(10))
        #expect(got.map { String(decoding: $0.body, as: UTF8.self) }?.contains("via-the-second-node") == true)
        try await connection.delete(queues: [queue])
        connection.shutdown()
        try await task.value
    }

    @Test func publishTimesOutWithoutABroker() async throws {
        var configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/", connectionName: "nowhere")
        configuration.publishTimeout = .milliseconds(300)
        var logger = Logger(label: "test.nowhere")
        logger.logLevel = .critical
        let connection = AMQPConnection(configuration: configuration, logger: logger)
        let task = Task { try await connection.run() }
        #expect(!connection.isConnected)
        await #expect {
            try await connection.publish(BrokerFixture.message("x"), to: "amq.topic", routingKey: "x")
        } throws: { ($0 as? PublishError)?.code == .timeout }
        connection.shutdown()
        try await task.value
    }
}
