import Foundation
import ServiceCore

/// Where a test system's RabbitMQ, Redis and PostgreSQL are, and how to reach their scripts.
public struct TestServers: Sendable {
    /// `amqp://cyclorama-admin:…@127.0.0.1:<port>/`, every right (a test system adds its own
    /// virtual host).
    public var amqpBase: String
    public var redisURL: String
    /// The server's `cyclorama` database URL (test systems create their own databases beside it).
    public var databaseURL: String
    /// What `scripts/servers.sh` needs to act on these servers (empty: the shared ones).
    public var scriptEnvironment: [String: String]
    /// Where `scripts/servers.sh` wrote their credentials; nil when the environment named the servers.
    public var secrets: URL?

    /// The servers `make test` starts (or those the environment names).
    public static var shared: TestServers {
        let named = !(ProcessInfo.processInfo.environment["AMQP_URL"] ?? "").isEmpty
        return TestServers(
            amqpBase: TestEnvironment.amqpURL.hasSuffix("/") ? TestEnvironment.amqpURL : TestEnvironment.amqpURL + "/",
            redisURL: TestEnvironment.redisURL, databaseURL: TestEnvironment.databaseURL, scriptEnvironment: [:],
            secrets: named ? nil : TestEnvironment.secretsDirectory)
    }

    /// The broker as `service`'s own user (the rights of its role alone, as `make up` runs it), or
    /// as the admin when these servers have no such user.
    public func amqpBase(for service: String) -> String {
        guard let secrets, let url = TestEnvironment.secret("amqp-\(service).url", in: secrets) else { return amqpBase }
        return url.hasSuffix("/") ? url : url + "/"
    }

    /// Runs `scripts/servers.sh` against these servers.
    public func script(_ arguments: String...) async -> Int32 {
        await ServerScript.run(arguments, environment: scriptEnvironment)
    }

    /// The three-node RabbitMQ cluster of `scripts/cluster.sh` (which `make test-cluster` starts), with
    /// the shared Redis and PostgreSQL; nil when it was never started. Its URLs name all three nodes.
    public static var cluster: TestServers? {
        let base = TestEnvironment.repositoryRoot.appendingPathComponent(".var/cluster")
        let secrets = base.appendingPathComponent("secrets")
        guard let admin = TestEnvironment.secret("amqp-cyclorama-admin.url", in: secrets) else { return nil }
        let shared = TestServers.shared
        // `vhost add|delete` through node 1, as scripts/cluster.sh runs it.
        let nodeOne = [
            "CYCLORAMA_VAR": base.appendingPathComponent("node-1").path, "CYCLORAMA_SECRETS_DIR": secrets.path,
            "CYCLORAMA_RABBITMQ_COOKIE_FILE": base.appendingPathComponent("cookie").path,
            "CYCLORAMA_RABBITMQ_PORT": "5701", "CYCLORAMA_RABBITMQ_NODE": "cyclorama-1@localhost",
            "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT": "",  // as scripts/cluster.sh starts the nodes
        ]
        return TestServers(
            amqpBase: admin.hasSuffix("/") ? admin : admin + "/", redisURL: shared.redisURL, databaseURL: shared.databaseURL,
            scriptEnvironment: nodeOne, secrets: secrets)
    }
}

/// A private set of RabbitMQ, Redis and PostgreSQL, on their own ports with their data under
/// `.var/faults/<name>`, that a test may stop, kill and start again without disturbing anything else
/// (the fault suite does exactly that). Started by `scripts/servers.sh` like the shared ones.
public final class PrivateServers: Sendable {
    public enum Server: String, Sendable, CaseIterable {
        case rabbitmq, redis, postgres
    }

    public let name: String
    public let servers: TestServers
    public let directory: URL

    /// Starts a set on the first free ports from `slot` on (RabbitMQ 5680+, its distribution port
    /// 20000 above; Redis 6390+; PostgreSQL 5440+); `only` some of the servers when given (the
    /// others' addresses are then empty).
    public static func start(name: String, slot: Int = 0, only: [Server] = Server.allCases) async throws -> PrivateServers {
        let directory = TestEnvironment.repositoryRoot.appendingPathComponent(".var/faults/\(name)")
        let settings = directory.appendingPathComponent("servers.env")
        // A run that was killed leaves its servers running on this folder: stop them, with the
        // ports and node name they were started with, before the folder is made anew, so they
        // neither hold ports nor outlive their data (scripts/leftover-servers.sh, which `make
        // test-faults-stop` calls too; it does nothing unless it is sure).
        _ = await ServerScript.run([directory.path], environment: [:], script: "leftover-servers.sh")
        // A port found free can be taken before the server binds it (seconds later, after initdb):
        // a set that does not start is stopped and the next ports tried, three times at most.
        var failedStarts = 0
        for index in slot..<(slot + 20) {
            let amqp = 5680 + index, redis = 6390 + index, postgres = 5440 + index
            var ports: [Int] = []
            if only.contains(.rabbitmq) { ports += [amqp, amqp + 20000] }
            if only.contains(.redis) { ports.append(redis) }
            if only.contains(.postgres) { ports.append(postgres) }
            guard ports.allSatisfy(portIsFree) else { continue }
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let environment = [
                "CYCLORAMA_VAR": directory.path,
                "CYCLORAMA_RABBITMQ_PORT": String(amqp),
                "CYCLORAMA_RABBITMQ_NODE": "\(name)@localhost",
                "CYCLORAMA_REDIS_PORT": String(redis),
                "CYCLORAMA_POSTGRES_PORT": String(postgres),
                // Without RabbitMQ's management plugin: it is stopped and killed often here, and
                // starts faster without it (vhosts are added with rabbitmqctl instead).
                "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT": "",
            ]
            let saved = environment.merging([bootKey: ServerScript.bootID ?? ""]) { $1 }
            try saved.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
                .write(to: settings, atomically: true, encoding: .utf8)
            // The credentials appear once the servers have started (scripts/servers.sh writes them).
            let secrets = directory.appendingPathComponent("secrets")
            let started = await ServerScript.run(["start"] + only.map(\.rawValue), environment: environment) == 0
            let servers = TestServers(
                amqpBase: TestEnvironment.secret("amqp-cyclorama-admin.url", in: secrets).map { $0.hasSuffix("/") ? $0 : $0 + "/" } ?? "",
                redisURL: TestEnvironment.secret("redis.url", in: secrets) ?? "",
                databaseURL: TestEnvironment.secret("postgres-cyclorama.url", in: secrets) ?? "",
                scriptEnvironment: environment, secrets: secrets)
            let set = PrivateServers(name: name, directory: directory, servers: servers)
            let addressed = (!only.contains(.rabbitmq) || !servers.amqpBase.isEmpty) && (!only.contains(.redis) || !servers.redisURL.isEmpty)
                && (!only.contains(.postgres) || !servers.databaseURL.isEmpty)
            guard started, addressed else {
                await set.stopAll()
                failedStarts += 1
                if failedStarts < 3 { continue }
                throw FixtureError(message: "could not start private servers \(name) (\(failedStarts) tries); see \(ServerScript.logPath)")
            }
            return set
        }
        throw FixtureError(message: "no free ports for private servers \(name)")
    }

    /// The machine's boot, saved with the ports: scripts/leftover-servers.sh trusts no file of an earlier one.
    private static let bootKey = "CYCLORAMA_FAULTS_BOOT_ID"

    private init(name: String, directory: URL, servers: TestServers) {
        self.name = name
        self.directory = directory
        self.servers = servers
    }

    /// Starts a server of the set again (after ``stop(_:)`` or ``kill(_:)``); waits until it answers.
    public func start(_ server: Server) async throws {
        guard await servers.script("start", server.rawValue) == 0 else {
            throw FixtureError(message: "could not start \(server) of \(name); see \(ServerScript.logPath)")
        }
    }

    /// A clean stop.
    public func stop(_ server: Server) async throws {
        guard await servers.script("stop", server.rawValue) == 0 else {
            throw FixtureError(message: "could not stop \(server) of \(name); see \(ServerScript.logPath)")
        }
    }

    /// A crash: SIGKILL.
    public func kill(_ server: Server) async throws {
        guard await servers.script("kill", server.rawValue) == 0 else {
            throw FixtureError(message: "could not kill \(server) of \(name); see \(ServerScript.logPath)")
        }
    }

    /// The fault suite's lanes (`CYCLORAMA_FAULT_LANES`, default 6); lane i's servers start at slot i × 20.
    public static var faultLanes: Int {
        ProcessInfo.processInfo.environment["CYCLORAMA_FAULT_LANES"].flatMap { Int($0) } ?? 6
    }

    /// A set for a test of its own beside the fault suite: the `place`-th slot past its lanes (from 1),
    /// so neither meets the other's ports. Started, given to `body`, and stopped (its data removed)
    /// however `body` ends. Name it `fault-tests-…`: `make test` stops those after an interrupt.
    public static func run<T>(
        name: String, pastFaultLanes place: Int, only: [Server], _ body: (PrivateServers) async throws -> T
    ) async throws -> T {
        let servers = try await start(name: name, slot: 20 * (faultLanes + place), only: only)
        return try await withAsyncCleanup({ try await body(servers) }, cleanup: { await servers.stopAll() })
    }

    /// Stops the whole set and removes its data.
    public func stopAll() async {
        _ = await servers.script("stop")
        try? FileManager.default.removeItem(at: directory)
    }

    private static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
