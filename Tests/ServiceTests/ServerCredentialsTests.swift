import Database
import Foundation
import Logging
import Messaging
import PostgresNIO
import Redis
import ServiceSupport
import Shared
import Testing
import TestSupport

/// The servers `make up` and `make test` start take credentials, kept in files only their owner
/// reads, and each service's broker user holds only the rights of its role (docs/security.md).
// The limit guards against a hang, not a slow start: in the first minutes of `make test` on two
// cores, dozens of systems start at once and a test here waited over two minutes for its turn.
@Suite("Server credentials", .timeLimit(.minutes(6)))
struct ServerCredentialsTests {
    static let roles = ["api-gateway", "prompt-service", "runpod-dispatcher", "result-ingestor", "settings-service"]
    static let secrets = TestEnvironment.secretsDirectory

    @Test func theCredentialsAreFilesOnlyTheirOwnerMayRead() throws {
        let manager = FileManager.default
        #expect(try manager.attributesOfItem(atPath: Self.secrets.path)[.posixPermissions] as? Int == 0o700)
        let names = try manager.contentsOfDirectory(atPath: Self.secrets.path)
        let expected = ["redis.password", "redis.url", "postgres-postgres.password", "postgres-cyclorama.password", "postgres-cyclorama.url",
                        "rabbitmq-cyclorama-admin.password", "amqp-cyclorama-admin.url"]
            + Self.roles.flatMap { ["rabbitmq-\($0).password", "amqp-\($0).url"] }
        for name in expected { #expect(names.contains(name), "\(name) missing") }
        for name in names {
            let mode = try manager.attributesOfItem(atPath: Self.secrets.appendingPathComponent(name).path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(name): mode \(String(mode ?? 0, radix: 8))")
        }
    }

    /// A broker connection as `url`, with `topology` declared; nil when it cannot connect.
    func connect(_ url: String, topology: Topology = Topology(), timeout: Duration = .seconds(15)) async throws -> (AMQPConnection, Task<Void, any Error>)? {
        let connection = AMQPConnection(
            configuration: try AMQPConfiguration(url: url, connectionName: "test-credentials"), topology: topology,
            logger: Logger(label: "test.credentials"))
        let runner = Task { try await connection.run() }
        do {
            try await connection.waitUntilConnected(timeout: timeout)
            return (connection, runner)
        } catch {
            connection.shutdown()
            _ = await runner.result
            return nil
        }
    }

    func publishes(_ connection: AMQPConnection, _ exchange: String, _ key: String) async -> Bool {
        do {
            try await connection.publish(OutgoingMessage(body: Array("{}".utf8), messageID: UUID().uuidString), to: exchange, routingKey: key, mandatory: false)
            return true
        } catch {
            return false
        }
    }

    /// guest is gone; each service's user may publish only its own commands and events, consume
    /// only its own queues, and declare or delete no one else's; the same connection goes on
    /// working after a refusal.
    @Test func eachServiceMayOnlyDoWhatItsRoleNeeds() async throws {
        let admin = try AMQPConfiguration(url: TestEnvironment.amqpURL, connectionName: "t")
        let guest = try await connect("amqp://guest:guest@\(admin.host):\(admin.port)/", timeout: .seconds(3))
        #expect(guest == nil, "guest can still log in")
        if let guest { guest.0.shutdown(); _ = await guest.1.result }

        let vhost = TestEnvironment.uniqueName("creds")
        try #require(await ServerScript.run("vhost", "add", vhost) == 0)
        let probe = try await BrokerProbe(url: TestServers.shared.amqpBase + vhost)
        var open: [(AMQPConnection, Task<Void, any Error>)] = []
        func role(_ name: String) async throws -> AMQPConnection {
            let url = TestServers.shared.amqpBase(for: name)
            try #require(url != TestServers.shared.amqpBase, "no broker user for \(name)")
            // Connected with its own queues declared, as the service does.
            let connection = try #require(try await connect(url + vhost, topology: CycloramaTopology.make(owner: name)), "\(name) cannot connect")
            open.append(connection)
            return connection.0
        }
        let gateway = try await role("api-gateway"), prompt = try await role("prompt-service")
        let dispatcher = try await role("runpod-dispatcher"), ingestor = try await role("result-ingestor")
        let settings = try await role("settings-service")
        let (commands, events) = (Routing.Exchange.commands, Routing.Exchange.events)

        // What each role publishes, it may (the control: a refusal below is the permission's doing).
        #expect(await publishes(gateway, commands, Routing.Key.generationRequest))
        #expect(await publishes(prompt, commands, Routing.Key.dispatchRequest))
        #expect(await publishes(dispatcher, events, Routing.Key.generationRendered))
        #expect(await publishes(ingestor, events, Routing.Key.generationCompleted))
        #expect(await publishes(settings, events, Routing.Key.settingsChanged))
        // Another role's messages, it may not.
        let forged: [(String, AMQPConnection, String, String)] = [
            ("ingestor → a generation request", ingestor, commands, Routing.Key.generationRequest),
            ("ingestor → a dispatch request", ingestor, commands, Routing.Key.dispatchRequest),
            ("settings-service → a completion", settings, events, Routing.Key.generationCompleted),
            ("dispatcher → settings.changed", dispatcher, events, Routing.Key.settingsChanged),
            ("prompt-service → a rendered result", prompt, events, Routing.Key.generationRendered),
            ("gateway → a dispatch request", gateway, commands, Routing.Key.dispatchRequest),
            ("settings-service → a settings request", settings, commands, Routing.Key.settingsRequest),
        ]
        for (what, connection, exchange, key) in forged {
            #expect(await !publishes(connection, exchange, key), "\(what) was accepted")
        }
        // …and goes on publishing its own afterwards.
        #expect(await publishes(ingestor, events, Routing.Key.mediaUpdated))

        // Another's queue: not consumed, not declared, not deleted.
        var stolen = false
        do {
            for try await _ in prompt.consume(queue: Routing.Queue.settingsRequests) { stolen = true; break }
        } catch {}
        #expect(!stolen)
        await #expect(throws: (any Error).self) {
            try await ingestor.declare(Topology(queues: [QueueDeclaration(name: Routing.Queue.jobEvents)]))
        }
        await #expect(throws: (any Error).self) { try await ingestor.delete(queues: [Routing.Queue.settingsRequests]) }
        // The queue is still there: a mandatory publish to it is routed.
        try await probe.connection.publish(
            OutgoingMessage(body: Array("{}".utf8), messageID: UUID().uuidString), to: commands, routingKey: Routing.Key.settingsRequest)

        for (connection, runner) in open { connection.shutdown(); _ = await runner.result }
        await probe.close()
        _ = await ServerScript.run("vhost", "delete", vhost)
    }

    /// Redis answers nothing without its password.
    @Test func redisAsksItsPassword() async throws {
        var configuration = try RedisConfiguration(url: TestEnvironment.redisURL)
        #expect(configuration.password?.isEmpty == false)
        let with = RedisClient(configuration: configuration, logger: Logger(label: "test.credentials"))
        #expect(await with.ping())
        await with.shutdown()
        configuration.password = nil
        let without = RedisClient(configuration: configuration, logger: Logger(label: "test.credentials"))
        await #expect(throws: (any Error).self) { _ = try await without.get("cyclorama:anything") }
        await without.shutdown()
    }

    /// PostgreSQL over TCP takes the right password and nothing else; no rule trusts anyone.
    @Test func postgresTakesOnlyPasswords() async throws {
        let url = try #require(URLComponents(string: TestEnvironment.databaseURL))
        func login(_ user: String, _ password: String?) async -> (any Error)? {
            let configuration = PostgresConnection.Configuration(
                host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: user, password: password,
                database: "postgres", tls: .disable)
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test.credentials"))
                try await connection.close()
                return nil
            } catch {
                return error
            }
        }
        let user = try #require(url.user), password = try #require(url.password)
        #expect(await login(user, password) == nil, "the right password logs in")
        let wrong = await login(user, "not-the-password")
        #expect(String(reflecting: wrong).contains("28P01"), "\(String(reflecting: wrong))")
        #expect(await login("postgres", nil) != nil, "the superuser without a password")
        #expect(await login("postgres", "") != nil)
        let hba = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent(".var/postgres/data/pg_hba.conf"), encoding: .utf8)
        let rules = hba.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(!rules.isEmpty && rules.allSatisfy { !$0.contains("trust") }, "\(rules)")
        #expect(rules.filter { $0.hasPrefix("host") }.allSatisfy { $0.hasSuffix("scram-sha-256") }, "\(rules)")
    }
}
