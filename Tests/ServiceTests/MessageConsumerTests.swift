import Foundation
import Logging
import Messaging
import ServiceLifecycle
import ServiceCore
import ServiceSupport
import Shared
import Synchronization
import Testing
import TestSupport
import Timing

/// The shared consumer loop against the real broker, on a queue of the test's own.
@Suite("MessageConsumer", .timeLimit(.minutes(2)))
struct MessageConsumerTests {
    /// A work queue with a DLQ and short retry delays, bound to nothing (published to by name).
    static func workQueue() -> QueueDeclaration {
        QueueDeclaration(
            name: TestEnvironment.uniqueName("test.work"), kind: .quorum, deadLetter: true,
            retryDelays: [.milliseconds(200), .milliseconds(400)], deliveryLimit: nil)
    }

    static func request() -> RequestGeneration { RequestGeneration(jobId: UUID(), mediaId: UUID()) }

    @Test func aThrowingHandlerIsRetriedWithBackoffThenDeadLettered() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let attempts = Mutex<[Int]>([])
        let consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, delivery in
                attempts.withLock { $0.append(delivery.attempt) }
                throw SettingsClientError(message: "backend down")
            })
        let running = Task { try await consumer.run() }

        let message = Self.request()
        try await probe.connection.publish(message, to: ReplyAddress(exchange: "", routingKey: queue.name))
        let dead = try #require(try await probe.deadLettered(from: queue.name, containing: message.jobId.uuidString))
        #expect(attempts.withLock { $0 } == [1, 2, 3], "first try plus one retry per delay")
        #expect(dead.headers[Routing.Header.reason]?.contains("backend down") == true, "\(dead.headers)")
        #expect(dead.headers[Routing.Header.reason]?.contains("gave up after 3 attempts") == true, "\(dead.headers)")

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    @Test func aHandlerCanDeadLetterAndUndecodableBodiesNeverReachIt() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let handled = Mutex(0)
        let consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, _ in
                handled.withLock { $0 += 1 }
                return .deadLetter(reason: "media is not an image")
            })
        let running = Task { try await consumer.run() }

        let marker = UUID().uuidString
        try await probe.publish(Array("{\"broken\": \"\(marker)\"".utf8), exchange: "", routingKey: queue.name)
        let undecodable = try #require(try await probe.deadLettered(from: queue.name, containing: marker))
        #expect(undecodable.headers[Routing.Header.reason]?.isEmpty == false)
        #expect(handled.withLock { $0 } == 0)

        let message = Self.request()
        try await probe.connection.publish(message, to: ReplyAddress(exchange: "", routingKey: queue.name))
        let refused = try #require(try await probe.deadLettered(from: queue.name, containing: message.jobId.uuidString))
        #expect(refused.headers[Routing.Header.reason] == "media is not an image")
        #expect(handled.withLock { $0 } == 1)

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    @Test func gracefulShutdownLetsTheMessageInHandFinish() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let started = Readiness()
        let finished = Mutex(false)
        let consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, _ in
                started.open()
                try await Task.sleep(for: .milliseconds(500))
                finished.withLock { $0 = true }
                return .done
            })
        let group = ServiceGroup(configuration: .init(services: [consumer], logger: Logger(label: "test")))
        let running = Task { try await group.run() }

        try await probe.connection.publish(Self.request(), to: ReplyAddress(exchange: "", routingKey: queue.name))
        try await started.wait()
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(finished.withLock { $0 }, "the handler in flight ran to completion")

        // It was acknowledged: nothing is left to redeliver.
        let leftover = try await probe.first(on: queue.name, timeout: .seconds(2))
        #expect(leftover == nil)
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    @Test func anAttemptStuckPastTheHandlingLimitIsAbandonedAndTheMessageRetried() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let attempts = Mutex<[Int]>([])
        let never = Readiness()
        let done = Readiness()
        let consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, handlingLimit: .milliseconds(500), logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, delivery in
                let count = attempts.withLock { $0.append(delivery.attempt); return $0.count }
                // The first attempt is stuck on a call that ignores cancellation (a database call on a
                // connection that died without a word); the message must not wait for it.
                if count == 1 { try await never.wait() }
                done.open()
                return .done
            })
        let running = Task { try await consumer.run() }

        let started = ContinuousClock.now
        try await probe.connection.publish(Self.request(), to: ReplyAddress(exchange: "", routingKey: queue.name))
        try await done.wait()
        // Handled again after the limit, not after the broker's own timeout (30 minutes): well within
        // half a minute even on a machine busy with the rest of the suite (seen: 11 s).
        #expect(ContinuousClock.now - started < .seconds(30))
        // Handled again in place, as during an outage: no retry used up.
        #expect(attempts.withLock { $0 } == [1, 1])
        #expect(try await probe.first(on: queue.name + ".dlq", timeout: .milliseconds(500)) == nil)

        // The graceful end is not held up by the abandoned attempt either.
        running.cancel()
        _ = await running.result
        never.open()
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    @Test func anOutageIsWaitedOutWithoutUsingUpARetry() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let seen = Mutex<[Int]>([])
        let done = Readiness()
        var consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, delivery in
                let count = seen.withLock { $0.append(delivery.attempt); return $0.count }
                // PostgreSQL, Redis or the settings-service away for longer than every retry delay together.
                if count <= 4 { throw DependencyUnavailable("postgres", "connection refused") }
                done.open()
                return .done
            })
        consumer.outageBackoff = (initial: .milliseconds(100), maximum: .milliseconds(400))
        let running = Task { try await consumer.run() }

        try await probe.connection.publish(Self.request(), to: ReplyAddress(exchange: "", routingKey: queue.name))
        try await done.wait()
        // Held and handled again in place: still the first attempt, nothing dead-lettered.
        #expect(seen.withLock { $0 } == [1, 1, 1, 1, 1])
        #expect(try await probe.first(on: queue.name + ".dlq", timeout: .milliseconds(500)) == nil)

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    @Test func aMessageGivenUpEndsItsJobBeforeItGoesToTheDeadLetterQueue() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let givenUp = Mutex<[(UUID, GiveUp)]>([])
        let consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            giveUp: { request, giveUp in givenUp.withLock { $0.append((request.jobId, giveUp)) } },
            handle: { request, _ in
                if request.options.customInstructions == "refuse" { return .deadLetter(reason: "cannot be done") }
                throw SettingsClientError(message: "a bug, not an outage")
            })
        let running = Task { try await consumer.run() }

        let exhausted = Self.request()
        try await probe.connection.publish(exhausted, to: ReplyAddress(exchange: "", routingKey: queue.name))
        _ = try #require(try await probe.deadLettered(from: queue.name, containing: exhausted.jobId.uuidString))
        var refused = Self.request()
        refused.options.customInstructions = "refuse"
        try await probe.connection.publish(refused, to: ReplyAddress(exchange: "", routingKey: queue.name))
        _ = try #require(try await probe.deadLettered(from: queue.name, containing: refused.jobId.uuidString))
        // Undecodable: no job to end.
        try await probe.publish(Array("not json".utf8), exchange: "", routingKey: queue.name)
        _ = try #require(try await probe.deadLettered(from: queue.name, containing: "not json"))

        let ends = givenUp.withLock { $0 }
        #expect(ends.map(\.0) == [exhausted.jobId, refused.jobId], "each job ended once, before its message was dead-lettered")
        #expect(ends.first?.1.exhausted == true)
        #expect(ends.first?.1.reason.contains("gave up after 3 attempts") == true)
        #expect(ends.last?.1.exhausted == false)
        #expect(ends.last?.1.reason == "cannot be done")

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    /// A dead-letter copy the broker will not take (here: its queue is gone) must not leave the
    /// message held unsettled by this consumer for ever: it goes back to the queue, is handled
    /// again, and reaches the dead-letter queue once there is one.
    @Test func aMessageWhoseDeadLetterCopyIsRefusedIsHandedBackNotHeld() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        try await probe.connection.delete(queues: [queue.deadLetterQueueName])
        let handled = Mutex(0)
        let twice = Readiness()
        var consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            handle: { _, _ in
                if handled.withLock({ $0 += 1; return $0 }) == 2 { twice.open() }
                return .deadLetter(reason: "cannot be done")
            })
        consumer.outageBackoff = (initial: .milliseconds(100), maximum: .milliseconds(200))
        let running = Task { try await consumer.run() }

        let message = Self.request()
        try await probe.connection.publish(message, to: ReplyAddress(exchange: "", routingKey: queue.name))
        let again = await withTimeout(.seconds(20)) { try await twice.wait() }
        #expect(again != nil, "handled again after its dead-letter copy was refused")
        try await probe.connection.declare(Topology(queues: [queue], deadLetterExchange: Routing.Exchange.deadLetter))
        let dead = try #require(try await probe.deadLettered(from: queue.name, containing: message.jobId.uuidString))
        #expect(dead.headers[Routing.Header.reason] == "cannot be done")

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }

    /// A give-up step that fails (not an outage) hands the message back: it is tried again and
    /// its job ended then, rather than the message waiting unsettled for a channel to close.
    @Test func aGiveUpStepThatFailsHandsTheMessageBack() async throws {
        let queue = Self.workQueue()
        let probe = try await BrokerProbe(queues: [queue])
        let steps = Mutex(0)
        var consumer = MessageConsumer(
            connection: probe.connection, queue: queue.name, logger: Logger(label: "test"),
            decode: decodeDelivery(RequestGeneration.self),
            giveUp: { _, _ in
                if steps.withLock({ $0 += 1; return $0 }) == 1 { throw SettingsClientError(message: "ledger write failed") }
            },
            handle: { _, _ in .deadLetter(reason: "cannot be done") })
        consumer.outageBackoff = (initial: .milliseconds(100), maximum: .milliseconds(200))
        let running = Task { try await consumer.run() }

        let message = Self.request()
        try await probe.connection.publish(message, to: ReplyAddress(exchange: "", routingKey: queue.name))
        _ = try #require(try await probe.deadLettered(from: queue.name, containing: message.jobId.uuidString))
        #expect(steps.withLock { $0 } == 2, "the failed step, then the one that ended the job")

        running.cancel()
        _ = await running.result
        try await probe.connection.delete(queues: [queue.name])
        await probe.close()
    }
}
