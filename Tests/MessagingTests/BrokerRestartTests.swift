import Foundation
import Testing
import TestSupport
@testable import Messaging

/// Restarts RabbitMQ itself: `make test` runs suites named *RestartTests alone, serially.
@Suite(.serialized) struct BrokerRestartTests {
    @Test func noConfirmedMessageIsLostAcrossABrokerRestart() async throws {
        let queue = QueueDeclaration(name: BrokerFixture.uniqueName("restart"), deadLetter: false, retryDelays: [])
        let publisher = try await RunningConnection(
            name: "restart-publisher", topology: Topology(queues: [queue]), publishTimeout: .seconds(60))
        let confirmed = Locked<[String]>([])
        let stopPublishing = Locked(false)

        let publishing = Task {
            var failures = 0
            var index = 0
            while !stopPublishing.withLock({ $0 }) {
                let id = "msg-\(index)"
                index += 1
                do {
                    try await publisher.connection.publish(BrokerFixture.message(id, id: id), to: "", routingKey: queue.name)
                    confirmed.withLock { $0.append(id) }
                } catch {
                    failures += 1  // allowed: a failed publish is known to the caller, not lost silently
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            return failures
        }

        // Publishing goes on before and after the restart: waited for, not assumed from a second's
        // sleep (a broker just restarted beside the fault suite's can take longer to confirm).
        try await eventually("confirmed before the restart", timeout: .seconds(60), every: .milliseconds(50)) {
            confirmed.withLock { $0.count } > 0
        }
        let before = confirmed.withLock { $0.count }
        try await restartBroker()
        try await publisher.connection.waitUntilConnected(timeout: .seconds(60))
        let countAtReconnect = confirmed.withLock { $0.count }
        try await eventually("confirmed after the reconnect", timeout: .seconds(60), every: .milliseconds(50)) {
            confirmed.withLock { $0.count } > countAtReconnect + 20
        }
        stopPublishing.withLock { $0 = true }
        _ = try await publishing.value
        let ids = confirmed.withLock { $0 }
        #expect(before > 0)
        #expect(ids.count > countAtReconnect, "publishing resumed after the restart")

        let inbox = Inbox(publisher.connection.consume(queue: queue.name, prefetch: 200))
        var received = Set<String>()
        let wanted = Set(ids)
        while !wanted.isSubset(of: received), let delivery = try await inbox.next(timeout: .seconds(15)) {
            received.insert(delivery.text)
            try await delivery.ack()
        }
        let lost = wanted.subtracting(received)
        #expect(lost.isEmpty, "confirmed but never consumed: \(lost.sorted().prefix(10))")
        try await publisher.connection.delete(queues: [queue.name])
        try await publisher.stop()
    }

    /// Runs `bash scripts/servers.sh restart rabbitmq` from the repository root on a dedicated thread
    /// (waitpid blocks), with output to a log file so the broker's daemons hold no pipe of ours.
    private func restartBroker() async throws {
        let status = await ServerScript.run("restart", "rabbitmq")
        #expect(status == 0, "scripts/servers.sh restart rabbitmq exited with \(status) (see \(ServerScript.logPath))")
    }
}
