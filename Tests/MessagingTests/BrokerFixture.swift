import Foundation
import Logging
@testable import Messaging

/// A real connection to the test broker, running for the duration of one test.
final class RunningConnection: Sendable {
    let connection: AMQPConnection
    private let task: Task<Void, any Error>

    init(
        name: String, topology: Topology = Topology(), publishTimeout: Duration = .seconds(30),
        shutdownDrainTimeout: Duration = .seconds(2), heartbeat: Int = 10
    ) async throws {
        var configuration = try AMQPConfiguration(url: BrokerFixture.url, connectionName: name)
        configuration.publishTimeout = publishTimeout
        configuration.shutdownDrainTimeout = shutdownDrainTimeout
        configuration.heartbeat = heartbeat
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = ProcessInfo.processInfo.environment["MESSAGING_TEST_LOG"] == nil ? .critical : .debug
        let connection = AMQPConnection(configuration: configuration, topology: topology, logger: logger)
        self.connection = connection
        task = Task { try await connection.run() }
        try await connection.waitUntilConnected(timeout: .seconds(30))
    }

    /// Graceful shutdown; returns what `run()` threw.
    func stop() async throws {
        connection.shutdown()
        try await task.value
    }
}

/// Collects a consumer's deliveries in the background so a test can wait for them with a timeout.
actor Inbox {
    private var received: [Delivery] = []
    private(set) var finished = false
    private(set) var failure: (any Error)?
    private var task: Task<Void, Never>?

    init(_ sequence: DeliverySequence) {
        task = nil
        Task { await self.start(sequence) }
    }

    private func start(_ sequence: DeliverySequence) {
        task = Task {
            do {
                for try await delivery in sequence { self.append(delivery) }
            } catch {
                self.fail(error)
            }
            self.finish()
        }
    }

    private func append(_ delivery: Delivery) { received.append(delivery) }
    private func fail(_ error: any Error) { failure = error }
    private func finish() { finished = true }

    var count: Int { received.count }

    /// The next delivery, or nil if none arrives within `timeout` (long by default: it returns as
    /// soon as one comes, and a new consumer can take seconds to register on a loaded machine).
    func next(timeout: Duration = .seconds(30)) async throws -> Delivery? {
        let deadline = ContinuousClock.now + timeout
        while received.isEmpty {
            if ContinuousClock.now >= deadline || finished { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        return received.removeFirst()
    }

    /// Waits until the sequence ends (true) or `timeout` passes (false).
    func waitUntilFinished(timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !finished {
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

enum BrokerFixture {
    /// `AMQP_URL`, else the broker's admin as `scripts/servers.sh` wrote it.
    static var url: String {
        let value = ProcessInfo.processInfo.environment["AMQP_URL"] ?? ""
        if !value.isEmpty { return value }
        let file = repositoryRoot.appendingPathComponent(".var/secrets/amqp-cyclorama-admin.url").path
        let stored = FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return stored.isEmpty ? "amqp://guest:guest@127.0.0.1:5672/" : stored.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The repository root (this file is Tests/MessagingTests/BrokerFixture.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func uniqueName(_ prefix: String) -> String {
        "msgtest.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func message(_ text: String, id: String = UUID().uuidString, headers: [String: String] = [:]) -> OutgoingMessage {
        OutgoingMessage(body: Array(text.utf8), messageID: id, headers: headers)
    }

    /// Every queue a declaration creates, for clean-up.
    static func queueNames(_ queue: QueueDeclaration) -> [String] {
        [queue.name, queue.deadLetterQueueName] + queue.retryDelays.map { queue.retryQueueName(delay: $0) }
    }
}

extension Delivery {
    var text: String { String(decoding: body, as: UTF8.self) }
}
