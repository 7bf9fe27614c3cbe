import Foundation
import Messaging
import Shared
import Synchronization
import TestSupport
import Timing

/// pipeline-bench: what the orchestration costs per job, through all six processes on the real
/// servers, with the local engine in its benchmark mode (no image work, `--engine-ms` latency).
///
/// For each rate it submits jobs open-loop over HTTP (`POST /api/ai-image/generate`) for
/// `--seconds`, and measures per job: gateway accept (the 202) → MediaUpdated on the broker, minus
/// the engine's reported execution time. Then it steps the rate up until completions stop keeping
/// up with submissions (a queue grows) and reports the last sustained rate.
///
/// Between the two it runs `--profile-rate` jobs per second (0: skip) once more and prints the CPU
/// each process spent per job (from /proc: every service, the broker, PostgreSQL, Redis and the
/// benchmark's own HTTP client), from the first submission until the last job is done.
///
/// Usage: pipeline-bench [--rates 10,50] [--seconds 10] [--engine-ms 0] [--profile-rate 40]
///        [--ramp 10,20,40,60,80,100]
/// Needs the servers (`scripts/servers.sh start`) and built services (`CYCLORAMA_BIN_DIR`, default .build/debug).
@main
struct PipelineBench {
    struct Options: Sendable {
        var rates = [10, 50]
        var seconds = 10
        var engineMs = 0
        var ramp = [10, 20, 40, 60, 80, 100]
        var profileRate = 40
        var media = 50
    }

    struct Sample: Sendable {
        var accepted: ContinuousClock.Instant
        var updated: ContinuousClock.Instant?
        var executionMs: Int?
    }

    static func main() async throws {
        try await bench(BenchTable.options { try parse(Array(CommandLine.arguments.dropFirst())) })
    }

    nonisolated static func bench(_ options: Options) async throws {
        print("pipeline-bench: binaries \(TestEnvironment.binaryDirectory.path), engine latency \(options.engineMs) ms, "
            + "\(options.seconds) s per rate, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        try await CycloramaSystem.run(overrides: [
            "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": String(options.engineMs), "LOCAL_ENGINE_QUEUE_LIMIT": "10000",
                             "LOCAL_ENGINE_CONCURRENCY": "16", "LOG_LEVEL": "warning"],
            "runpod-dispatcher": ["DISPATCH_POLL_INITIAL_MS": "50", "DISPATCH_POLL_MAX_MS": "500", "DISPATCH_PREFETCH": "200", "LOG_LEVEL": "warning"],
            "api-gateway": ["LOG_LEVEL": "warning"], "prompt-service": ["LOG_LEVEL": "warning"],
            "result-ingestor": ["LOG_LEVEL": "warning"], "settings-service": ["LOG_LEVEL": "warning"],
        ]) { system in
            try await system.updateSettings(["aiImageMaxConcurrent": "10"])
            var mediaIds: [String] = []
            let photo = try Samples.bytes("dev05", "input.jpg")
            for _ in 0..<options.media { mediaIds.append(try await system.upload(photo)) }

            let events = BrokerProbe.listeningQueue(exchange: Routing.Exchange.events, routingKey: "#")
            let probe = try await BrokerProbe(queues: [events], url: system.amqpURL)
            let samples = Book()
            let listener = Task {
                for try await delivery in probe.connection.consume(queue: events.name, prefetch: 500) {
                    let now = ContinuousClock.now
                    try? await delivery.ack()
                    guard let message = try? MessageDecoder.decode(delivery.body) else { continue }
                    switch message {
                    case .mediaUpdated(let updated):
                        samples.state.withLock { $0[updated.jobId.uuidString.lowercased(), default: Sample(accepted: now)].updated = now }
                    case .generationRendered(let rendered):
                        samples.state.withLock { $0[rendered.jobId.uuidString.lowercased(), default: Sample(accepted: now)].executionMs = rendered.executionTimeMs }
                    default: break
                    }
                }
            }

            print("")
            print("| rate (jobs/s) | jobs | done | overhead p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |")
            print("|---------------|------|------|-------------------|----------|----------|----------|")
            for rate in options.rates {
                let result = try await runRate(rate, seconds: options.seconds, system: system, mediaIds: mediaIds, samples: samples)
                print(result.row)
            }
            if options.profileRate > 0 {
                let before = ProcessCPU.read(), started = ContinuousClock.now
                let result = try await runRate(
                    options.profileRate, seconds: options.seconds, system: system, mediaIds: mediaIds, samples: samples)
                let spent = ProcessCPU.read().since(before)
                print("")
                print("CPU per job at \(options.profileRate) jobs/s (\(result.done) of \(result.jobs) done; p50 \(result.p50) ms, p99 \(result.p99) ms):")
                ProcessCPU.table(spent, jobs: result.jobs, wall: .now - started).forEach { print($0) }
            }
            print("")
            print("Ramp (sustained = every job done within 10 s after the window and p99 below 2 s):")
            print("| rate (jobs/s) | done in window | p50 (ms) | p99 (ms) | sustained |")
            print("|---------------|----------------|----------|----------|-----------|")
            var sustained = 0
            for rate in options.ramp {
                let result = try await runRate(rate, seconds: options.seconds, system: system, mediaIds: mediaIds, samples: samples)
                let keeps = result.done == result.jobs && result.p99 < 2000
                print("| \(BenchTable.pad(rate, 13)) | \(BenchTable.pad("\(result.doneInWindow)/\(result.jobs)", 14)) | \(BenchTable.pad(result.p50, 8)) | \(BenchTable.pad(result.p99, 8)) | \(BenchTable.pad(keeps ? "yes" : "no", 9)) |")
                if keeps { sustained = rate } else { break }
            }
            print("")
            print("sustained: \(sustained) jobs/s")
            listener.cancel()
            await probe.close()
        }
    }

    struct RateResult {
        var rate: Int
        var jobs: Int
        var done: Int
        var doneInWindow: Int
        var p50: Int
        var p90: Int
        var p99: Int
        var max: Int
        var row: String {
            "| \(BenchTable.pad(rate, 13)) | \(BenchTable.pad(jobs, 4)) | \(BenchTable.pad(done, 4)) | \(BenchTable.pad(p50, 17)) | \(BenchTable.pad(p90, 8)) | \(BenchTable.pad(p99, 8)) | \(BenchTable.pad(max, 8)) |"
        }
    }

    /// Submits `rate` jobs per second for `seconds`, waits up to 60 s for them, and summarises the overheads.
    static func runRate(
        _ rate: Int, seconds: Int, system: CycloramaSystem, mediaIds: [String], samples: Book
    ) async throws -> RateResult {
        let total = rate * seconds
        let start = ContinuousClock.now
        let interval = Duration.seconds(1) / rate
        let jobIds = IDs()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                let due = start + interval * index
                try await Task.sleep(until: due, clock: .continuous)
                let media = mediaIds[index % mediaIds.count]
                group.addTask {
                    let answer = try await system.call(.POST, "/api/ai-image/generate/\(media)", json: "{}")
                    let accepted = ContinuousClock.now
                    guard answer.status == 202, let jobId = try answer.json()["jobId"] as? String else {
                        print("  generate answered \(answer.status): \(answer.text.prefix(200))")
                        return
                    }
                    jobIds.state.withLock { $0.append(jobId) }
                    samples.state.withLock { all in
                        var sample = all[jobId] ?? Sample(accepted: accepted)
                        sample.accepted = accepted
                        all[jobId] = sample
                    }
                }
            }
            try await group.waitForAll()
        }
        let windowEnd = ContinuousClock.now
        let submitted = jobIds.state.withLock { $0 }
        let deadline = ContinuousClock.now + .seconds(60)
        var doneInWindow = 0
        var checkedWindow = false
        while true {
            let done = samples.state.withLock { all in submitted.filter { all[$0]?.updated != nil }.count }
            if !checkedWindow, ContinuousClock.now - windowEnd >= .seconds(10) {
                doneInWindow = done
                checkedWindow = true
            }
            if done == submitted.count || ContinuousClock.now > deadline { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let finished = samples.state.withLock { all in submitted.compactMap { all[$0] } }
        if !checkedWindow { doneInWindow = finished.filter { $0.updated != nil }.count }
        let overheads = finished.compactMap { sample -> Int? in
            guard let updated = sample.updated else { return nil }
            let total = (updated - sample.accepted).wholeMilliseconds
            return max(0, total - (sample.executionMs ?? 0))
        }.sorted()
        func percentile(_ p: Double) -> Int {
            overheads.isEmpty ? -1 : overheads[min(overheads.count - 1, Int((Double(overheads.count) * p).rounded(.up)) - 1)]
        }
        return RateResult(
            rate: rate, jobs: total, done: overheads.count, doneInWindow: doneInWindow,
            p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99), max: overheads.last ?? -1)
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--rates": options.rates = try BenchTable.integers(iterator.next())
            case "--ramp": options.ramp = try BenchTable.integers(iterator.next())
            case "--seconds": options.seconds = Int(iterator.next() ?? "") ?? options.seconds
            case "--engine-ms": options.engineMs = Int(iterator.next() ?? "") ?? options.engineMs
            case "--profile-rate": options.profileRate = Int(iterator.next() ?? "") ?? options.profileRate
            case "--media": options.media = Int(iterator.next() ?? "") ?? options.media
            default: throw FixtureError(message: "unknown argument \(argument); see the comment at the top of PipelineBench/Main.swift")
            }
        }
        return options
    }
}

final class IDs: Sendable {
    let state = Mutex<[String]>([])
}

/// What the benchmark learned per job id (from HTTP and from the broker's events).
final class Book: Sendable {
    let state = Mutex<[String: PipelineBench.Sample]>([:])
}
