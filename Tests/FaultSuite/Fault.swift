import Foundation
import TestSupport

/// Which backend a round's jobs run on.
public enum FaultBackend: String, Sendable {
    /// The RunPod stand-in (RunPod's protocol; it fetches the input as a worker does and keeps its
    /// own record of every submission and when each ran).
    case standIn = "runpod stand-in"
    /// The local engine in simulated mode (no image work, a fixed latency; it fetches the input).
    case engine = "local engine"
}

/// One fault the suite injects into a running system, at a random moment of a batch.
public struct Fault: Sendable {
    public var name: String
    /// I5 applies: a transient fault (anything away for up to two minutes, a stall, a storm) fails no job.
    public var transient: Bool
    public var backend: FaultBackend
    /// RunPod webhooks on for the round (`aiImageEnableWebhooks`).
    public var webhooks = false
    /// About how long a round of it takes, to spread rounds over lanes evenly.
    public var expectedSeconds = 30
    /// How long each job runs at the RunPod stand-in. Faults of a dispatcher use jobs that outlive
    /// its ownership and its leases, so that what it leaves at the backend must be accounted for (I3, I4).
    public var jobSeconds: ClosedRange<Int> = 1...5
    /// Does the fault and undoes it; returns once everything is back (the moment drain time counts from).
    public var inject: @Sendable (FaultContext) async throws -> Void

    public init(
        _ name: String, transient: Bool, backend: FaultBackend = .standIn, webhooks: Bool = false, lasts seconds: Int = 0,
        inject: @escaping @Sendable (FaultContext) async throws -> Void
    ) {
        self.name = name
        self.transient = transient
        self.backend = backend
        self.webhooks = webhooks
        self.expectedSeconds = 30 + seconds
        self.inject = inject
    }

    /// The same fault with jobs running `seconds` at the stand-in.
    func withJobs(_ seconds: ClosedRange<Int>) -> Fault {
        var fault = self
        fault.jobSeconds = seconds
        return fault
    }
}

/// What a fault acts on.
public struct FaultContext: Sendable {
    public let system: CycloramaSystem
    public let servers: PrivateServers
    public let standIn: RunPodStandIn?
    /// The process names of the system's dispatchers (two instances).
    public let dispatchers: [String]
    public let log: @Sendable (String) -> Void

    /// `kill -9` a process of the system and start it again at once.
    public func crashAndRestart(_ name: String) async throws {
        log("kill -9 \(name)")
        await system.crash(name)
        try relaunch(name)
        try await system.waitUntilHealthy(name, timeout: .seconds(120))
    }

    /// Starts a process again (after a crash or a stop).
    public func relaunch(_ name: String) throws {
        if CycloramaSystem.serviceNames.contains(name) {
            try system.launch(name)
        } else {
            let service = CycloramaSystem.serviceNames.first { name.hasPrefix($0) } ?? name
            try system.launchInstance(of: service, as: name)
        }
    }
}

/// Every fault of the list (docs/reliability.md), each on the backend that shows it best.
public enum FaultCatalog {
    /// The faults of a short round (`make test-faults`) or of `make chaos` (the same list).
    public static func all() -> [Fault] {
        var faults: [Fault] = []
        // kill -9 of each of the six processes, then started again at once.
        for service in ["api-gateway", "prompt-service", "runpod-dispatcher", "result-ingestor", "settings-service"] {
            let fault = Fault("kill -9 \(service)", transient: true) { context in
                let name = service == "runpod-dispatcher" ? context.dispatchers[0] : service
                try await context.crashAndRestart(name)
            }
            faults.append(service == "runpod-dispatcher" ? fault.withJobs(5...12) : fault)
        }
        faults.append(Fault("kill -9 local-engine", transient: true, backend: .engine) { context in
            try await context.crashAndRestart("local-engine")
        })
        // A dispatcher stalls (SIGSTOP) past its ownership (10 s) and past its leases (30 s).
        for seconds in [15, 45] {
            faults.append(Fault("SIGSTOP runpod-dispatcher \(seconds) s", transient: true, lasts: seconds) { context in
                let name = context.dispatchers[0]
                guard let process = context.system.process(name) else { return }
                context.log("SIGSTOP \(name) for \(seconds) s")
                process.send(SIGSTOP)
                try await Task.sleep(for: .seconds(seconds))
                process.send(SIGCONT)
            }.withJobs(5...12))
        }
        // Each server stopped for 30 s and for 120 s, and killed -9.
        for server in PrivateServers.Server.allCases {
            for seconds in [30, 120] {
                faults.append(Fault("\(server.rawValue) stopped \(seconds) s", transient: true, backend: server == .postgres ? .engine : .standIn, lasts: seconds) { context in
                    context.log("stop \(server.rawValue) for \(seconds) s")
                    try await context.servers.stop(server)
                    try await Task.sleep(for: .seconds(seconds))
                    try await context.servers.start(server)
                })
            }
            faults.append(Fault("\(server.rawValue) kill -9", transient: true) { context in
                context.log("kill -9 \(server.rawValue)")
                try await context.servers.kill(server)
                try await context.servers.start(server)
            })
        }
        // PostgreSQL stopped again and again while results are being applied: a call stuck on a
        // connection that died mid-query must not hold its message, or its job, for ever.
        faults.append(Fault("postgres stopped 3 s, eight times", transient: true, backend: .engine, lasts: 40) { context in
            for time in 1...8 {
                context.log("stop postgres for 3 s (\(time) of 8)")
                try await context.servers.stop(.postgres)
                try await Task.sleep(for: .seconds(3))
                try await context.servers.start(.postgres)
                try await Task.sleep(for: .seconds(2))
            }
        })
        faults.append(Fault("settings-service away 180 s", transient: true, lasts: 180) { context in
            context.log("stop settings-service for 180 s")
            _ = await context.system.process("settings-service")?.stop()
            try await Task.sleep(for: .seconds(180))
            try context.relaunch("settings-service")
            try await context.system.waitUntilHealthy("settings-service")
        })
        // The RunPod stand-in misbehaves. A lost /run answer can only be found again by the job's
        // webhook (RunPod has no idempotency key), so that round runs with webhooks on; without them
        // such a job ends submission_unconfirmed (RunPodBackendTests shows it; docs/reliability.md).
        faults.append(Fault("runpod: /run answers lost", transient: true, webhooks: true) { context in
            context.log("lose the next 3 /run answers")
            context.standIn?.inject { $0.loseRunAnswers = 3 }
            try await Task.sleep(for: .seconds(10))
            context.standIn?.inject { $0.loseRunAnswers = 0 }
        })
        for status in [429, 503] {
            faults.append(Fault("runpod: \(status) storm 30 s", transient: true, lasts: 30) { context in
                context.log("\(status) on /run and /status for 30 s")
                let until = ContinuousClock.now + .seconds(30)
                context.standIn?.inject {
                    $0.runStorm = status
                    $0.runStormUntil = until
                    $0.statusStorm = status
                    $0.statusStormUntil = until
                }
                try await Task.sleep(until: until)
            })
        }
        faults.append(Fault("runpod: slow answers 30 s", transient: true, lasts: 30) { context in
            context.log("every call 2-8 s slower for 30 s")
            let until = ContinuousClock.now + .seconds(30)
            context.standIn?.inject {
                $0.slow = 2...8
                $0.slowUntil = until
            }
            try await Task.sleep(until: until)
        })
        faults.append(Fault("runpod: results expired", transient: false) { context in
            context.log("results finished in the next 8 s are gone before download")
            let until = ContinuousClock.now + .seconds(8)
            context.standIn?.inject { $0.expireResultsUntil = until }
            try await Task.sleep(until: until)
        })
        faults.append(Fault("poison message on every queue", transient: true) { context in
            context.log("poison on every queue")
            try await Poison.publish(to: context.system)
        })
        return faults
    }

    /// The faults whose names contain any of `names` (all when empty).
    public static func named(_ names: [String]) -> [Fault] {
        let all = all()
        guard !names.isEmpty else { return all }
        return all.filter { fault in names.contains { fault.name.localizedCaseInsensitiveContains($0) } }
    }
}
