import Testing
@testable import Messaging

/// Dead-letter queues and retries through delay queues.
@Suite struct DeadLetterTests {
    let exchange = BrokerFixture.uniqueName("ex")
    let queue: QueueDeclaration

    init() {
        queue = QueueDeclaration(
            name: BrokerFixture.uniqueName("q"), bindings: [QueueBinding(exchange: exchange, routingKey: "work")],
            retryDelays: [.milliseconds(300), .milliseconds(600)])
    }

    var topology: Topology { Topology(exchanges: [ExchangeDeclaration(name: exchange)], queues: [queue]) }

    private func cleanUp(_ running: RunningConnection) async throws {
        try await running.connection.delete(queues: BrokerFixture.queueNames(queue), exchanges: [exchange])
        try await running.stop()
    }

    @Test func deadLetterPutsTheMessageInTheDLQWithTheReason() async throws {
        let running = try await RunningConnection(name: "dead-letter", topology: topology)
        let message = BrokerFixture.message("{bad json", id: "poison-1", headers: ["tenant": "acme"])
        try await running.connection.publish(message, to: exchange, routingKey: "work")
        let work = Inbox(running.connection.consume(queue: queue.name))
        let delivery = try #require(try await work.next())
        try await delivery.deadLetter(reason: "body is not valid JSON")

        let dlq = Inbox(running.connection.consume(queue: queue.deadLetterQueueName))
        let dead = try #require(try await dlq.next())
        #expect(dead.text == "{bad json")
        #expect(dead.messageID == "poison-1")
        #expect(dead.headers[MessagingHeader.reason] == "body is not valid JSON")
        #expect(dead.headers[MessagingHeader.originalQueue] == queue.name)
        #expect(dead.headers["tenant"] == "acme")
        try await dead.ack()
        #expect(try await work.next(timeout: .milliseconds(500)) == nil)
        try await cleanUp(running)
    }

    @Test(arguments: ["nack", "reject"])
    func refusedMessageLandsInTheDLQ(how: String) async throws {
        let running = try await RunningConnection(name: "refuse-\(how)", topology: topology)
        try await running.connection.publish(BrokerFixture.message("refused", id: "r-1"), to: exchange, routingKey: "work")
        let work = Inbox(running.connection.consume(queue: queue.name))
        let delivery = try #require(try await work.next())
        if how == "nack" {
            try await delivery.nack(requeue: false)
        } else {
            try await delivery.reject(requeue: false)
        }
        let dlq = Inbox(running.connection.consume(queue: queue.deadLetterQueueName))
        let dead = try #require(try await dlq.next())
        #expect(dead.text == "refused")
        #expect(dead.messageID == "r-1")
        try await dead.ack()
        try await cleanUp(running)
    }

    @Test func retryRedeliversAfterEachDelayThenGivesUpToTheDLQ() async throws {
        let running = try await RunningConnection(name: "retry", topology: topology)
        try await running.connection.publish(BrokerFixture.message("flaky", id: "f-1"), to: exchange, routingKey: "work")
        let work = Inbox(running.connection.consume(queue: queue.name))

        let first = try #require(try await work.next())
        #expect(first.attempt == 1)
        var retriedAt = ContinuousClock.now
        try await first.retry(reason: "upstream 503")

        for (expectedAttempt, delay) in [(2, Duration.milliseconds(300)), (3, .milliseconds(600))] {
            let again = try #require(try await work.next(timeout: .seconds(10)))
            #expect(again.attempt == expectedAttempt)
            #expect(again.text == "flaky")
            #expect(again.messageID == "f-1")
            #expect(ContinuousClock.now - retriedAt >= delay - .milliseconds(50))
            retriedAt = ContinuousClock.now
            try await again.retry(reason: "upstream 503")
        }

        let dlq = Inbox(running.connection.consume(queue: queue.deadLetterQueueName))
        let dead = try #require(try await dlq.next())
        #expect(dead.headers[MessagingHeader.reason] == "gave up after 3 attempts: upstream 503")
        #expect(dead.headers[MessagingHeader.attempt] == "3")
        try await dead.ack()
        #expect(try await work.next(timeout: .milliseconds(800)) == nil)
        try await cleanUp(running)
    }
}
