import Foundation
import ServiceCore
import NIOHTTP1
import Synchronization

/// The whole system as real processes — api-gateway, settings-service, prompt-service,
/// runpod-dispatcher, result-ingestor and the local engine — isolated from every other test: its
/// own RabbitMQ virtual host, database, media folder, admin token and concurrency-lease key.
public final class CycloramaSystem: GatewayCalls {
    public static let serviceNames = ["settings-service", "prompt-service", "runpod-dispatcher", "result-ingestor", "api-gateway", "local-engine"]

    public let vhost: String
    /// The servers it runs on (the shared test servers unless a test gave private ones).
    public let servers: TestServers
    public let database: TemporaryDatabase
    public let token: String
    public let scratch: URL
    public let ports: [String: Int]
    public let environments: [String: [String: String]]
    private let processes: Mutex<[String: ServiceProcess]>

    public var gatewayURL: String { "http://127.0.0.1:\(ports["api-gateway"]!)" }
    public var engineURL: String { "http://127.0.0.1:\(ports["local-engine"]!)" }
    /// The local engine's API key in this system (its `/v2` API needs it; the dispatcher sends it).
    public var engineAPIKey: String { environments["local-engine"]?["LOCAL_ENGINE_API_KEY"] ?? "" }

    /// The local engine's `/v2/{endpoint}/health`, asked with its key.
    public func engineHealth(timeout: Duration = .seconds(30)) async throws -> HTTPAnswer {
        try await HTTPProbe.send(
            .GET, engineURL + "/v2/cyclorama-studio/health", headers: [("Authorization", "Bearer \(engineAPIKey)")], timeout: timeout)
    }
    public var amqpURL: String { servers.amqpBase + vhost }
    public var mediaRoot: URL { scratch.appendingPathComponent("media") }
    /// The simulated engine's hold (`LOCAL_ENGINE_SIMULATE_HOLD`, given whenever a test runs the engine
    /// simulated): while this file exists, its jobs stay at the backend. ``holdEngineJobs()``,
    /// ``releaseEngineJobs()``.
    public var engineHold: URL { Self.engineHold(in: scratch) }
    private static func engineHold(in scratch: URL) -> URL { scratch.appendingPathComponent("engine-hold") }

    /// Starts everything (or all but `without`) and waits until each is healthy.
    /// `overrides` adds environment variables per service (e.g. a short deadline for the dispatcher);
    /// `$ENGINE` in a value is replaced by the local engine's `127.0.0.1:<port>`. `servers` are the
    /// servers it runs on (a private set for tests that stop them).
    public static func start(
        without: Set<String> = [], overrides: [String: [String: String]] = [:], servers: TestServers = .shared
    ) async throws -> CycloramaSystem {
        var phases = PhaseClock()
        let vhost = TestEnvironment.uniqueName("cy")
        // The broker's side and the database's are independent: made at once (each takes ~0.5–1 s
        // on a loaded machine, the vhost's quorum queues most).
        async let made: Void = makeVirtualHost(vhost, on: servers)
        let database: TemporaryDatabase
        do {
            database = try await TemporaryDatabase.create(on: servers.databaseURL)
        } catch {
            if (try? await made) != nil { _ = await servers.script("vhost", "delete", vhost) }
            throw error
        }
        do {
            try await made
        } catch {
            await database.drop()
            throw error
        }
        phases.mark("vhost and database")
        let scratch = try TestEnvironment.scratchDirectory()
        let token = (0..<4).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "") }.joined()
        let tokenFile = scratch.appendingPathComponent("admin-token")
        try token.write(to: tokenFile, atomically: true, encoding: .utf8)
        var ports: [String: Int] = [:]
        for name in serviceNames { ports[name] = try freePort() }
        let gateway = "http://127.0.0.1:\(ports["api-gateway"]!)"
        let engine = "127.0.0.1:\(ports["local-engine"]!)"
        // The engine is locked as `make up` locks it: a key the dispatcher sends, webhooks to the gateway only.
        let engineKey = UUID().uuidString
        let common = [
            "DATABASE_URL": database.url,
            "REDIS_URL": servers.redisURL,
            "SHUTDOWN_GRACE_SECONDS": "3",
        ]
        // One RunPod endpoint for the deployment, as `make up` and compose give it to the gateway (which
        // checks a switch to RunPod) and the dispatcher; never RunPod's cloud from a test: without
        // an override it is a loopback port nothing listens on.
        let runpodEndpoint = overrides["runpod-dispatcher"]?["RUNPOD_ENDPOINT_URL"] ?? overrides["api-gateway"]?["RUNPOD_ENDPOINT_URL"]
            ?? "http://127.0.0.1:9/v2/no-runpod-in-tests"
        var environments: [String: [String: String]] = [
            "settings-service": [:],
            "prompt-service": ["MEDIA_BASE_URL": gateway],
            "runpod-dispatcher": [
                "MEDIA_BASE_URL": gateway,
                "RUNPOD_ENDPOINT_URL": runpodEndpoint,
                "LOCAL_ENGINE_URL": "http://\(engine)/v2/cyclorama-studio",
                "LOCAL_ENGINE_API_KEY": engineKey,
                "DISPATCH_LEASES_KEY": "cyclorama:test:\(vhost):leases",
                "DISPATCH_POLL_INITIAL_MS": "100", "DISPATCH_POLL_MAX_MS": "500",
            ],
            "result-ingestor": [
                "MEDIA_ROOT": scratch.appendingPathComponent("media").path, "INGEST_ALLOWED_HOSTS": engine,
                "RUNPOD_ENDPOINT_URL": runpodEndpoint,
            ],
            "api-gateway": [
                "CYCLORAMA_ADMIN_TOKEN_FILE": tokenFile.path, "MEDIA_ROOT": scratch.appendingPathComponent("media").path,
                "RUNPOD_ENDPOINT_URL": runpodEndpoint,
                // Notifications go nowhere unless a test names its loopback receiver: a fuzzed
                // notifyUrl or setting is refused before anything resolves or connects.
                "NOTIFY_ALLOWED_HOSTS": "",
            ],
            "local-engine": [
                "LOCAL_ENGINE_ALLOWED_HOSTS": "127.0.0.1:\(ports["api-gateway"]!)",
                "LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:\(ports["api-gateway"]!)",
                "LOCAL_ENGINE_API_KEY": engineKey,
                "LOCAL_ENGINE_RESULTS_DIR": scratch.appendingPathComponent("engine-results").path,
            ],
        ]
        if overrides["local-engine"]?["LOCAL_ENGINE_SIMULATE_MS"] != nil {
            environments["local-engine"]?["LOCAL_ENGINE_SIMULATE_HOLD"] = engineHold(in: scratch).path
        }
        for name in serviceNames {
            // `$ENGINE` in an override stands for the local engine's host:port (chosen here).
            let resolved = (overrides[name] ?? [:]).mapValues { $0.replacingOccurrences(of: "$ENGINE", with: engine) }
            // Each service on the broker as its own user, with only its role's rights (as `make up`).
            let broker = ["AMQP_URL": servers.amqpBase(for: name) + vhost]
            environments[name] = common.merging(broker) { $1 }.merging(environments[name] ?? [:]) { $1 }.merging(resolved) { $1 }
        }
        let system = CycloramaSystem(
            vhost: vhost, servers: servers, database: database, token: token, scratch: scratch, ports: ports, environments: environments)
        do {
            for name in serviceNames where !without.contains(name) { try system.launch(name) }
            for name in serviceNames where !without.contains(name) { try await system.waitUntilHealthy(name) }
            phases.mark("healthy")
            phases.report("system start")
        } catch {
            await system.stop()
            throw error
        }
        return system
    }

    /// Makes `vhost` with every queue in it, as on a broker where each service has run once: a
    /// system started without one service still queues that service's work. (A service declares
    /// only its own queues: its user may touch no other.) Deletes it again when that fails.
    private static func makeVirtualHost(_ vhost: String, on servers: TestServers) async throws {
        guard await servers.script("vhost", "add", vhost) == 0 else {
            throw FixtureError(message: "could not create RabbitMQ vhost \(vhost); see \(ServerScript.logPath)")
        }
        do {
            let probe = try await BrokerProbe(url: servers.amqpBase + vhost)
            await probe.close()
        } catch {
            _ = await servers.script("vhost", "delete", vhost)
            throw error
        }
    }

    /// Starts a system, runs `body` with it, and always stops it (processes, database, vhost, files).
    public static func run<T>(
        without: Set<String> = [], overrides: [String: [String: String]] = [:], servers: TestServers = .shared,
        _ body: (CycloramaSystem) async throws -> T
    ) async throws -> T {
        let system = try await start(without: without, overrides: overrides, servers: servers)
        return try await withAsyncCleanup({ try await body(system) }, cleanup: { await system.stop() })
    }

    private init(
        vhost: String, servers: TestServers, database: TemporaryDatabase, token: String, scratch: URL, ports: [String: Int],
        environments: [String: [String: String]]
    ) {
        self.vhost = vhost
        self.servers = servers
        self.database = database
        self.token = token
        self.scratch = scratch
        self.ports = ports
        self.environments = environments
        processes = Mutex([:])
    }

    /// From now on the simulated engine's jobs stay at the backend once their time is up, until
    /// ``releaseEngineJobs()``: a test keeps a job running for as long as a step needs it to, however
    /// slow the machine, and then lets it finish at once. Only with `LOCAL_ENGINE_SIMULATE_MS`.
    public func holdEngineJobs() throws {
        guard environments["local-engine"]?["LOCAL_ENGINE_SIMULATE_HOLD"] != nil else {
            throw FixtureError(message: "the engine's jobs can be held only when it runs simulated (LOCAL_ENGINE_SIMULATE_MS)")
        }
        try Data().write(to: engineHold)
    }

    /// Lets the held jobs (and those to come) finish.
    public func releaseEngineJobs() throws {
        if FileManager.default.fileExists(atPath: engineHold.path) { try FileManager.default.removeItem(at: engineHold) }
    }

    /// Starts (or starts again) one service with its environment.
    public func launch(_ name: String) throws {
        let process = try ServiceProcess(name, port: ports[name]!, environment: environments[name] ?? [:])
        processes.withLock { $0[name] = process }
    }

    /// Starts another instance of `name` (same environment, another port), known as `key` — e.g.
    /// a second dispatcher. ``stop()`` stops it with the rest. Started again under the same key, it
    /// keeps its port.
    public func launchInstance(of name: String, as key: String) throws {
        let port = processes.withLock { $0[key]?.port } ?? freePort()
        let process = try ServiceProcess(name, port: port, environment: environments[name] ?? [:])
        processes.withLock { $0[key] = process }
    }

    /// Every process started, by name or instance key.
    public var processNames: [String] { processes.withLock { Array($0.keys).sorted() } }

    public func process(_ name: String) -> ServiceProcess? { processes.withLock { $0[name] } }

    public func waitUntilHealthy(_ name: String, timeout: Duration = .seconds(90)) async throws {
        guard let process = process(name) else { throw FixtureError(message: "\(name) was never started") }
        guard await process.waitUntilHealthy(timeout: timeout) == 200 else {
            throw FixtureError(message: "\(name) never became healthy; log:\n\(process.log().suffix(4000))")
        }
    }

    /// `kill -9` one service.
    public func crash(_ name: String) async {
        await process(name)?.crash()
    }

    /// The last lines of every service's log, for failure messages.
    public func logs(lines: Int = 25) -> String {
        processNames.compactMap { name in
            guard let process = process(name) else { return nil }
            let tail = process.log().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
            return "--- \(name)\n\(tail)"
        }.joined(separator: "\n")
    }

    public func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: [UInt8]?) async throws -> HTTPAnswer {
        try await HTTPProbe.send(method, gatewayURL + path, headers: headers, body: body)
    }

    /// Uploads a raw image and names it `name` (as an upload from a file would be named); returns its id.
    public func upload(_ bytes: [UInt8], named name: String) async throws -> String {
        let id = try await upload(bytes)
        let renamed = try await call(.PATCH, "/api/media/\(id)", json: #"{"originalName": "\#(name)"}"#)
        guard renamed.status == 200 else { throw FixtureError(message: "rename failed: \(renamed.status) \(renamed.text)") }
        return id
    }

    /// Polls the status endpoint until the job is COMPLETED, FAILED or CANCELLED (or `timeout`).
    public func waitForTerminal(_ jobId: String, timeout: Duration = .seconds(120)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            let answer = try await call(.GET, "/api/ai-image/status/\(jobId)")
            last = (try? answer.json()) ?? [:]
            if let status = last["status"] as? String, ["COMPLETED", "FAILED", "CANCELLED"].contains(status) { return last }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw FixtureError(message: "job \(jobId) not terminal after \(timeout); last answer \(last)\n\(logs())")
    }

    public func stop() async {
        var phases = PhaseClock()
        // Jobs a failed test left held end with the rest, not at the engine's shutdown grace.
        try? releaseEngineJobs()
        let running = processes.withLock { Array($0.values) }
        // All at once: each takes its own graceful stop (up to its shutdown grace), and nothing is
        // left for one to hand to another once the test is over.
        await withTaskGroup(of: Void.self) { group in
            for process in running { group.addTask { _ = await process.stop() } }
        }
        phases.mark("processes")
        async let dropped: Void = database.drop()
        _ = await servers.script("vhost", "delete", vhost)
        await dropped
        phases.mark("database and vhost")
        try? FileManager.default.removeItem(at: scratch)
        phases.report("system stop")
    }
}

/// How long each step of a start or a stop took, printed on standard error as one line
/// (`system start: 4.1 s (vhost 0.2, database 0.3, healthy 3.6)`), for reading a run's figures.
struct PhaseClock {
    private var last = ContinuousClock.now
    private let first = ContinuousClock.now
    private var steps: [(String, Duration)] = []

    mutating func mark(_ step: String) {
        let now = ContinuousClock.now
        steps.append((step, now - last))
        last = now
    }

    func report(_ what: String) {
        let parts = steps.map { "\($0.0) \($0.1.secondsText)" }.joined(separator: ", ")
        FileHandle.standardError.write(Data("\(what): \((ContinuousClock.now - first).secondsText) s (\(parts))\n".utf8))
    }
}

extension Duration {
    /// Seconds with one decimal (`4.1`), for the figures a run prints.
    public var secondsText: String {
        let (whole, atto) = components
        return String(format: "%.1f", Double(whole) + Double(atto) / 1e18)
    }
}
