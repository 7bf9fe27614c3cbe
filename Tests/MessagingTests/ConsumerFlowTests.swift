import Testing
import TestSupport
@testable import Messaging

/// Prefetch, graceful stop and refused consumers.
@Suite struct ConsumerFlowTests {
    let queue = QueueDeclaration(name: BrokerFixture.uniqueName("q"), deadLetter: false, retryDelays: [])

    var topology: Topology { Topology(queues: [queue]) }

    private func cleanUp(_ running: RunningConnection) async throws {
        try await running.connection.delete(queues: [queue.name])
        try await running.stop()
    }

    private func fill(_ running: RunningConnection, count: Int) async throws {
        for index in 0..<count {
            try await running.connection.publish(BrokerFixture.message("\(index)"), to: "", routingKey: queue.name)
        }
    }

    @Test func noMoreThanPrefetchDeliveriesAreUnsettled() async throws {
        let running = try await RunningConnection(name: "prefetch", topology: topology)
        try await fill(running, count: 10)
        let inbox = Inbox(running.connection.consume(queue: queue.name, prefetch: 3))
        // Wait for the first three (however loaded the machine), then give a fourth time to show up.
        try await eventually("three deliveries", timeout: .seconds(15), every: .milliseconds(20)) { await inbox.count >= 3 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(await inbox.count == 3)

        let first = try #require(try await inbox.next())
        try await first.ack()
        try await eventually("one settled, one more let through", timeout: .seconds(15), every: .milliseconds(20)) { await inbox.count >= 3 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(await inbox.count == 3)

        var acked = 1
        while let delivery = try await inbox.next(timeout: .seconds(15)) {
            try await delivery.ack()
            acked += 1
            if acked == 10 { break }
        }
        #expect(acked == 10)
        try await cleanUp(running)
    }

    @Test func stopEndsTheSequenceAndLeavesTheRestInTheQueue() async throws {
        let running = try await RunningConnection(name: "stop", topology: topology)
        try await fill(running, count: 5)
        let sequence = running.connection.consume(queue: queue.name, prefetch: 1)
        let inbox = Inbox(sequence)
        let inFlight = try #require(try await inbox.next())
        sequence.stop()
        #expect(try await inbox.waitUntilFinished())
        // The delivery taken before the stop can still be settled.
        try await inFlight.ack()

        let next = Inbox(running.connection.consume(queue: queue.name, prefetch: 10))
        var rest: [String] = []
        // A long wait costs nothing when the deliveries come (it stops at the fourth); a loaded machine
        // may take seconds to register a new consumer.
        while let delivery = try await next.next(timeout: .seconds(15)) {
            rest.append(delivery.text)
            try await delivery.ack()
            if rest.count == 4 { break }
        }
        #expect(rest.count == 4)
        #expect(!rest.contains(inFlight.text))
        try await cleanUp(running)
    }

    @Test func shutdownRequeuesUnsettledDeliveries() async throws {
        let first = try await RunningConnection(name: "shutdown-a", topology: topology, shutdownDrainTimeout: .milliseconds(200))
        try await fill(first, count: 1)
        let inbox = Inbox(first.connection.consume(queue: queue.name, prefetch: 1))
        _ = try #require(try await inbox.next())
        try await first.stop()  // the delivery is never acked
        #expect(try await inbox.waitUntilFinished())

        let second = try await RunningConnection(name: "shutdown-b", topology: topology)
        let again = try #require(try await Inbox(second.connection.consume(queue: queue.name)).next())
        #expect(again.redelivered)
        try await again.ack()
        try await cleanUp(second)
    }

    @Test func consumingAMissingQueueEndsWithAnError() async throws {
        let running = try await RunningConnection(name: "missing-queue")
        let inbox = Inbox(running.connection.consume(queue: BrokerFixture.uniqueName("absent")))
        #expect(try await inbox.waitUntilFinished())
        #expect((await inbox.failure as? AMQPError)?.code == .consumerClosed)
        try await running.stop()
    }
}
