import Foundation
import Messaging
import Shared
import Synchronization
import TestSupport
import Timing

/// batch-bench: how close a batch comes to the ideal makespan under the global concurrency limit.
///
/// The whole system runs (six processes on the real servers) with the local engine in benchmark mode:
/// every job takes exactly `--engine-ms` there and no image work is done. For each way of following
/// jobs (`polling`, `webhook`) and each `aiImageMaxConcurrent` in `--concurrency`, one batch of
/// `--items` distinct media goes through `POST /api/ai-image/batch`. The makespan runs from the
/// request to the last item's MediaUpdated; the ideal is ceil(N / c) × latency. The peak of jobs at
/// the engine (its `/health`, sampled every 50 ms) shows the limit held.
///
/// Usage: batch-bench [--items 200] [--concurrency 3,5,10] [--engine-ms 2000] [--modes polling,webhook] [--log-level warning]
/// Needs the servers (`scripts/servers.sh start`) and built services (`CYCLORAMA_BIN_DIR`, default .build/debug).
@main
struct BatchBench {
    struct Options: Sendable {
        var items = 200
        var concurrency = [3, 5, 10]
        var engineMs = 2000
        var modes = ["polling", "webhook"]
        /// The services' LOG_LEVEL (their logs are under .var/test/logs).
        var logLevel = "warning"
    }

    static func main() async throws {
        try await bench(BenchTable.options { try parse(Array(CommandLine.arguments.dropFirst())) })
    }

    nonisolated static func bench(_ options: Options) async throws {
        print("batch-bench: binaries \(TestEnvironment.binaryDirectory.path), \(options.items) items, engine latency "
            + "\(options.engineMs) ms, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let quiet = ["LOG_LEVEL": options.logLevel]
        try await CycloramaSystem.run(overrides: [
            "local-engine": quiet.merging([
                "LOCAL_ENGINE_SIMULATE_MS": String(options.engineMs), "LOCAL_ENGINE_QUEUE_LIMIT": "10000",
                "LOCAL_ENGINE_CONCURRENCY": "16",
            ]) { $1 },
            "runpod-dispatcher": quiet.merging(["DISPATCH_PREFETCH": String(options.items)]) { $1 },
            "api-gateway": quiet, "prompt-service": quiet, "result-ingestor": quiet, "settings-service": quiet,
        ]) { system in
            let photo = try Samples.bytes("dev05", "input.jpg")
            var mediaIds: [String] = []
            for _ in 0..<options.items { mediaIds.append(try await system.upload(photo)) }

            let events = BrokerProbe.listeningQueue(exchange: Routing.Exchange.events, routingKey: Routing.Key.mediaUpdated)
            let probe = try await BrokerProbe(queues: [events], url: system.amqpURL)
            let updated = Arrivals()
            let listener = Task {
                for try await delivery in probe.connection.consume(queue: events.name, prefetch: 500) {
                    let now = ContinuousClock.now
                    try? await delivery.ack()
                    if case .mediaUpdated(let event)? = try? MessageDecoder.decode(delivery.body) {
                        updated.times.withLock { $0[event.jobId.uuidString.lowercased()] = now }
                    }
                }
            }

            print("")
            print("| mode | c | items | ideal (s) | makespan (s) | makespan / ideal | peak at engine |")
            print("|------|---|-------|-----------|--------------|------------------|----------------|")
            for mode in options.modes {
                for limit in options.concurrency {
                    try await configure(system, mode: mode, limit: limit)
                    let row = try await runBatch(system, mediaIds: mediaIds, limit: limit, options: options, updated: updated)
                    print("| \(mode) | \(limit) | \(options.items) | \(String(format: "%.1f", row.ideal)) | "
                        + "\(String(format: "%.1f", row.makespan)) | \(String(format: "%.3f", row.makespan / row.ideal)) | \(row.peak) |")
                }
            }
            listener.cancel()
            await probe.close()
        }
    }

    static func configure(_ system: CycloramaSystem, mode: String, limit: Int) async throws {
        let webhooks = mode == "webhook"
        let answer = try await system.call(.PUT, "/api/ai-image/settings", json: """
            {"aiImageMaxConcurrent": \(limit), "aiImageEnableWebhooks": \(webhooks), "aiImageWebhookUrl": "\(system.gatewayURL)"}
            """)
        guard answer.status == 200 else { throw FixtureError(message: "settings: \(answer.status) \(answer.text)") }
        // SettingsChanged reaches every service within milliseconds; leave it a moment.
        try await Task.sleep(for: .seconds(1))
    }

    static func runBatch(
        _ system: CycloramaSystem, mediaIds: [String], limit: Int, options: Options,
        updated: Arrivals
    ) async throws -> (ideal: Double, makespan: Double, peak: Int) {
        let peak = Arrivals()
        let sampler = Task {
            while !Task.isCancelled {
                if let health = try? await system.engineHealth(),
                   let object = try? JSONSerialization.jsonObject(with: Data(health.body)) as? [String: Any],
                   let jobs = object["jobs"] as? [String: Any], let running = jobs["inProgress"] as? Int {
                    peak.peak.withLock { $0 = max($0, running) }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        let ids = mediaIds.map { "\"\($0)\"" }.joined(separator: ",")
        let start = ContinuousClock.now
        let answer = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(ids)]}"#)
        guard answer.status == 202 || answer.status == 200,
              let jobs = try answer.json()["jobs"] as? [[String: Any]] else {
            throw FixtureError(message: "batch: \(answer.status) \(answer.text.prefix(300))")
        }
        let jobIds = jobs.compactMap { $0["jobId"] as? String }
        let ideal = Double((options.items + limit - 1) / limit) * Double(options.engineMs) / 1000
        let deadline = start + .seconds(Int64(ideal * 3) + 120)
        var last: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            let times = updated.times.withLock { all in jobIds.compactMap { all[$0] } }
            if times.count == jobIds.count {
                last = times.max()
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        sampler.cancel()
        guard let last else { throw FixtureError(message: "the batch did not finish in time\n\(system.logs())") }
        return (ideal, Double((last - start).wholeMilliseconds) / 1000, peak.peak.withLock { $0 })
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--items": options.items = Int(iterator.next() ?? "") ?? options.items
            case "--concurrency": options.concurrency = try BenchTable.integers(iterator.next())
            case "--engine-ms": options.engineMs = Int(iterator.next() ?? "") ?? options.engineMs
            case "--modes": options.modes = (iterator.next() ?? "").split(separator: ",").map(String.init)
            case "--log-level": options.logLevel = iterator.next() ?? options.logLevel
            default: throw FixtureError(message: "unknown argument \(argument); see the comment at the top of BatchBench/Main.swift")
            }
        }
        return options
    }
}

/// What the benchmark saw: each job's MediaUpdated, the most jobs at the engine at once.
final class Arrivals: Sendable {
    let times = Mutex<[String: ContinuousClock.Instant]>([:])
    let peak = Mutex(0)
}
