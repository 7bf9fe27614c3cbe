import Database
import Foundation
import PostgresNIO
import ServiceCore
import Shared
import Synchronization
import TestSupport
import Timing

/// One round: a fresh system on private servers, a batch through the gateway, one fault at a random
/// moment, the wait until every job has ended (or the drain limit), and the history checked.
public struct FaultRound: Sendable {
    public var fault: Fault
    public var servers: PrivateServers
    /// Jobs in the round's batch.
    public var jobs = 8
    /// `aiImageMaxConcurrent`.
    public var limit = 3
    /// How long after recovery every job must have ended.
    public var drainLimit: Duration = .seconds(360)
    /// When the fault strikes after the batch was accepted, at random.
    public var strikeWithin: ClosedRange<Double> = 0.5...4
    public var log: @Sendable (String) -> Void = { print($0) }

    public init(fault: Fault, servers: PrivateServers) {
        self.fault = fault
        self.servers = servers
    }

    static let apiKey = "rpa_FAULTSUITE0000000000000000000000000000"

    public func run() async throws -> RoundReport {
        let standIn: RunPodStandIn? = fault.backend == .standIn
            ? try await RunPodStandIn(scenarios: [
                "default": .init(
                    jobs: [[.runBetween(.seconds(fault.jobSeconds.lowerBound), .seconds(fault.jobSeconds.upperBound))]],
                    fetchesInput: true),
            ])
            : nil
        var overrides: [String: [String: String]] = [
            // The shortest lease: a stall or a crash outlives the leases of jobs still running at the
            // backend, so I4 is tested where it can break.
            "runpod-dispatcher": [
                "DISPATCH_POLL_INITIAL_MS": "200", "DISPATCH_POLL_MAX_MS": "1000", "DISPATCH_ORPHAN_SWEEP_SECONDS": "2",
                "DISPATCH_LEASE_SECONDS": "3",
            ],
            "api-gateway": ["JOB_REAPER_INTERVAL_SECONDS": "5", "JOB_OUTBOX_AFTER_SECONDS": "20"],
            "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "1500", "LOCAL_ENGINE_CONCURRENCY": "2"],
        ]
        if let standIn {
            overrides["runpod-dispatcher"]?["RUNPOD_ENDPOINT_URL"] = standIn.endpointURL
            overrides["result-ingestor"] = ["INGEST_ALLOWED_HOSTS": "\(standIn.hostAndPort),$ENGINE"]
        }
        let system = try await CycloramaSystem.start(
            without: fault.backend == .standIn ? ["local-engine"] : [], overrides: overrides, servers: servers.servers)
        let second = "runpod-dispatcher-2"
        do {
            try system.launchInstance(of: "runpod-dispatcher", as: second)
            try await system.waitUntilHealthy(second)
            var settings = ["aiImageMaxConcurrent": String(limit)]
            if fault.backend == .standIn {
                settings["aiImageBackend"] = "runpod"
                settings["runpodApiKey"] = Self.apiKey
                // The stand-in's result is a 64x48 drawing, not a studio shot of the photo: the
                // fidelity guard (docs/fidelity.md) would put the photo back into every one of them.
                settings["aiImageFidelityMode"] = "off"
            }
            if fault.webhooks {
                settings["aiImageEnableWebhooks"] = "true"
                settings["aiImageWebhookUrl"] = system.gatewayURL
            }
            try await system.updateSettings(settings)
            let report = try await drive(system, standIn: standIn, dispatchers: ["runpod-dispatcher", second])
            await system.stop()
            await standIn?.stop()
            return report
        } catch {
            log("round failed: \(error)\n\(system.logs(lines: 40))")
            await system.stop()
            await standIn?.stop()
            throw error
        }
    }

    private func drive(_ system: CycloramaSystem, standIn: RunPodStandIn?, dispatchers: [String]) async throws -> RoundReport {
        let photo = try Samples.bytes("dev02", "input.jpg")
        var media: [String] = []
        for _ in 0..<jobs { media.append(try await system.upload(photo)) }
        let list = media.map { "\"\($0)\"" }.joined(separator: ",")
        let accepted = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(list)]}"#)
        guard accepted.status == 202, let items = try accepted.json()["jobs"] as? [[String: Any]] else {
            throw FixtureError(message: "the batch was not accepted: \(accepted.status) \(accepted.text)")
        }
        let jobIds = items.compactMap { ($0["jobId"] as? String).flatMap(UUID.init(uuidString:)) }
        let started = ContinuousClock.now
        let monitor = LedgerMonitor(databaseURL: system.database.url, jobs: jobIds)
        let watching = Task { await monitor.watch() }
        // The local engine keeps no record a checker could read after a crash: its /health is sampled.
        let engine = EngineSampler(system: system)
        let sampling = fault.backend == .engine ? Task { await engine.sample() } : nil

        try await Task.sleep(for: .milliseconds(Int(Double.random(in: strikeWithin) * 1000)))
        let context = FaultContext(system: system, servers: servers, standIn: standIn, dispatchers: dispatchers, log: log)
        let struck = ContinuousClock.now
        try await fault.inject(context)
        let recovered = ContinuousClock.now
        log("recovered after \(recovered - struck); waiting for every job to end")

        let drainDeadline = recovered + drainLimit
        while ContinuousClock.now < drainDeadline, !monitor.allEnded {
            try await Task.sleep(for: .milliseconds(250))
        }
        // Orphans are cancelled a little later than their jobs end: give the sweep its rounds, as long
        // as a loaded machine needs (bounded: an orphan nobody cancels still fails I3 below).
        if let standIn {
            let settled = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < settled, standIn.backendJobs().contains(where: { $0.endedAt == nil }) {
                try await Task.sleep(for: .milliseconds(250))
            }
        } else {
            try await Task.sleep(for: .seconds(3))
        }
        watching.cancel()
        _ = await watching.result
        sampling?.cancel()
        _ = await sampling?.result
        if sampling != nil, engine.samples == 0 {
            // (Its /v2 API needs the key: without it every sample was a 401 and I4 would pass unseen.)
            throw FixtureError(message: "the local engine's /health never answered with its jobs: I4 went unchecked\n\(system.logs())")
        }
        // An attempt abandoned past its handling limit (docs/reliability.md) is worth knowing about:
        // the round can still pass (the retry applied it), but something was stuck.
        for name in CycloramaSystem.serviceNames {
            let stuck = (system.process(name)?.log() ?? "").split(separator: "\n").filter { $0.contains("did not finish in time") }
            if !stuck.isEmpty { log("\(name): \(stuck.count) attempt(s) abandoned past the handling limit; first: \(stuck[0].prefix(400))") }
        }
        let checker = HistoryChecker(
            fault: fault, limit: limit, jobIds: jobIds, system: system, standIn: standIn,
            enginePeak: sampling == nil ? nil : engine.peak,
            started: started, struck: struck, recovered: recovered, lastEnded: monitor.lastEnded)
        return try await checker.check()
    }
}

/// Watches the ledger of a round's jobs (a PostgreSQL outage is just a gap) and notes when the last one ended.
final class LedgerMonitor: Sendable {
    let databaseURL: String
    let jobs: [UUID]
    private let state = Mutex<(ended: Set<UUID>, last: ContinuousClock.Instant?)>(([], nil))

    init(databaseURL: String, jobs: [UUID]) {
        self.databaseURL = databaseURL
        self.jobs = jobs
    }

    var allEnded: Bool { state.withLock { $0.ended.count == jobs.count } }
    var lastEnded: ContinuousClock.Instant? { state.withLock { $0.last } }

    func watch() async {
        while !Task.isCancelled {
            let ids = jobs
            let url = databaseURL
            // At most 10 s a look: a PostgresNIO call can hang past a server's restart (docs/reliability.md,
            // "No attempt holds its message for ever"), and a stuck look must not hold the round for ever.
            let look = Task {
                try await SystemDatabase.withClient(url) { client -> Set<UUID> in
                    var ended = Set<UUID>()
                    let rows = try await client.query(
                        "SELECT id FROM generation_jobs WHERE id = ANY(\(ids)) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')")
                    for try await id in rows.decode(UUID.self) { ended.insert(id) }
                    return ended
                }
            }
            let answer = await awaitResult(of: look, atMost: .seconds(10))
            if answer == nil { look.cancel() }
            if let ended = try? answer?.get() {
                state.withLock { s in
                    if ended.count > s.ended.count { s.last = .now }
                    s.ended = ended
                }
            }
            if allEnded { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// Samples the local engine's `/health` every 100 ms for the most jobs it held at once (queued or
/// in progress): the engine's own view of I4, sampled.
final class EngineSampler: Sendable {
    let system: CycloramaSystem
    private let highest = Mutex(0)
    /// Samples the engine answered with its job counts: a check that saw none checked nothing.
    private let answered = Mutex(0)

    init(system: CycloramaSystem) { self.system = system }

    var samples: Int { answered.withLock { $0 } }

    var peak: Int { highest.withLock { $0 } }

    func sample() async {
        while !Task.isCancelled {
            if let answer = try? await system.engineHealth(timeout: .seconds(2)),
               let jobs = (try? answer.json())?["jobs"] as? [String: Any] {
                let held = (jobs["inQueue"] as? Int ?? 0) + (jobs["inProgress"] as? Int ?? 0)
                highest.withLock { $0 = max($0, held) }
                answered.withLock { $0 += 1 }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
