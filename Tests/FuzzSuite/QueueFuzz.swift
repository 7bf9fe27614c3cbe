import Foundation
import Messaging
import Shared
import Synchronization
import TestSupport

/// Publishes mutated messages (bodies and AMQP properties) to every consumer-owned queue, beside the
/// services. The rules: a message no consumer can read (``MessageDecoder`` refuses it) lands in the
/// dead-letter queue of each queue it reached, with a reason; every service is still running after.
public struct QueueFuzz: Sendable {
    struct Seed: Sendable {
        var name: String
        var body: [UInt8]
        var route: ReplyAddress
        var queues: [String]
    }

    let system: CycloramaSystem
    let seeds: [Seed]

    /// Seeds are the golden messages of docs/messages.md for the queues Cyclorama consumes, with
    /// every URL in them pointed at the system's own gateway (loopback).
    public init(system: CycloramaSystem) throws {
        self.system = system
        let golden = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/SharedTests/Golden")
        let routed: [(String, [String])] = [
            ("RequestGeneration", [Routing.Queue.generationRequests]),
            ("DispatchGeneration", [Routing.Queue.dispatchRequests]),
            ("SettingsRequest", [Routing.Queue.settingsRequests]),
            ("SettingsRequest.update", [Routing.Queue.settingsRequests]),
            ("GenerationRendered", [Routing.Queue.generationRendered, Routing.Queue.jobEvents]),
            ("GenerationSubmitted", [Routing.Queue.jobEvents]),
            ("GenerationProgressed", [Routing.Queue.jobEvents]),
            ("GenerationCompleted", [Routing.Queue.jobEvents]),
            ("GenerationFailed", [Routing.Queue.jobEvents]),
            // Not MediaUpdated: it is for other systems, and no Cyclorama queue binds it.
        ]
        seeds = try routed.map { name, queues in
            var text = try String(contentsOf: golden.appendingPathComponent("\(name).json"), encoding: .utf8)
            text = text.replacingOccurrences(of: "https://cyclorama.example.com", with: system.gatewayURL)
            let type = try MessageDecoder.decode(Array(text.utf8)).type
            return Seed(name: name, body: Array(text.utf8), route: type.route!, queues: queues)
        }
    }

    public func run(inputs: Int, seed runSeed: UInt64) async throws -> FuzzReport {
        var report = FuzzReport(name: "queues (seed \(runSeed))")
        var random = SeededGenerator(seed: runSeed)
        let mutator = Mutator()
        let probe = try await BrokerProbe(url: system.amqpURL)
        // messageID → the queues whose dead letters must hold it (only for messages nobody can read).
        var expected: [String: [String]] = [:]
        var described: [String: String] = [:]
        for index in 0..<inputs {
            let seed = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            let (kind, body) = mutator.mutate(seed.body, using: &random)
            let id = "fuzz-\(runSeed)-\(index)"
            var message = OutgoingMessage(body: body, messageID: id)
            if Int.random(in: 0..<4, using: &random) == 0 {
                message.type = ["", "cyclorama.generation.request", "nonsense", String(repeating: "t", count: 200)].randomElement(using: &random)
            }
            if Int.random(in: 0..<4, using: &random) == 0 {
                message.headers["x-cyclorama-attempt"] = ["-1", "0", "999999", "x"].randomElement(using: &random)
                message.headers["x-fuzz"] = String(repeating: "h", count: Int.random(in: 0...2000, using: &random))
            }
            try await probe.connection.publish(message, to: seed.route.exchange, routingKey: seed.route.routingKey)
            let readable = (try? MessageDecoder.decode(body)) != nil
            report.record(kind: kind, outcome: readable ? "readable" : "unreadable")
            if !readable {
                expected[id] = seed.queues
                described[id] = "\(seed.name) [\(kind), \(body.count) bytes]: \(String(decoding: body.prefix(100), as: UTF8.self))"
            }
        }
        // Every unreadable message in the dead letters of each queue it reached, with a reason.
        let queues = Set(expected.values.flatMap { $0 })
        let wanted = expected
        for queue in queues.sorted() {
            let ids = Set(wanted.filter { $0.value.contains(queue) }.keys)
            // Each id once: a dead letter may be there twice (a publish re-sent after its channel
            // closed is at-least-once), and a copy must not stand in for another id.
            let counted = Mutex(Set<String>())
            let dead = try await probe.collect(
                ids.count, on: QueueDeclaration(name: queue).deadLetterQueueName, timeout: .seconds(60)
            ) { letter in
                let id = letter.messageID ?? ""
                return ids.contains(id) && counted.withLock { $0.insert(id).inserted }
            }
            var seen = Set<String>()
            for letter in dead {
                let id = letter.messageID ?? ""
                seen.insert(id)
                if (letter.headers[Routing.Header.reason] ?? "").isEmpty { report.fail("\(queue): dead-lettered without a reason: \(described[id] ?? id)") }
            }
            report.outcomes["dead-lettered from \(queue)", default: 0] += seen.count
            for id in ids.subtracting(seen).sorted() { report.fail("\(queue): never dead-lettered: \(described[id] ?? id)") }
        }
        await probe.close()
        for name in CycloramaSystem.serviceNames where system.process(name)?.isRunning == false {
            report.fail("\(name) is no longer running")
        }
        return report
    }
}
