import Database
import ServiceCore
import Synchronization
import Hummingbird
import Logging
import Messaging
import Prometheus
import Redis
import ServiceLifecycle

/// Assembles one executable: its connections, its workers and its HTTP server, in the order the
/// service group starts them (clients, then workers, then HTTP) and stops them (the reverse).
///
/// ```swift
/// var host = try ServiceHost(configuration: configuration)
/// let database = try host.addDatabase()
/// host.addWorker(MessageConsumer(...))
/// try await host.run()
/// ```
public struct ServiceHost: Sendable {
    public let configuration: ServiceConfiguration
    public let logger: Logger
    public let registry: PrometheusCollectorRegistry
    /// The broker connection every service has.
    public let broker: AMQPConnection
    public private(set) var checks: [HealthCheck]
    public private(set) var details: [HealthDetail] = []
    private var clients: [any Service]
    private var workers: [any Service] = []
    private var shutdownHooks: [@Sendable () async -> Void] = []
    private var startupSteps: [@Sendable () async throws -> Void] = []
    private var routeBuilders: [@Sendable (Router<ServiceRequestContext>) -> Void] = []

    /// - Parameter additionalQueues: queues of this process only (e.g. a settings reply queue), declared with the rest.
    public init(
        configuration: ServiceConfiguration,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        additionalQueues: [QueueDeclaration] = []
    ) throws {
        self.configuration = configuration
        self.registry = registry
        var logger = Logger(label: "cyclorama.\(configuration.serviceName)")
        logger.logLevel = configuration.logLevel
        self.logger = logger
        let amqp = try Self.urlSetting("AMQP_URL", configuration.amqpURL) { try AMQPConfiguration(url: $0, connectionName: configuration.serviceName) }
        var topology = CycloramaTopology.make(owner: configuration.serviceName)
        topology.merge(Topology(queues: additionalQueues))
        let broker = AMQPConnection(configuration: amqp, topology: topology, logger: logger)
        self.broker = broker
        self.clients = [broker]
        self.checks = [HealthCheck(name: "broker") { broker.isConnected }]
    }

    /// Adds the PostgreSQL pool (with migrations at start-up) and its health check.
    public mutating func addDatabase() throws -> DatabaseService {
        let database = DatabaseService(
            configuration: try Self.urlSetting("DATABASE_URL", configuration.databaseURL) { try DatabaseConfiguration(url: $0) }, logger: logger)
        clients.insert(database, at: 0)
        checks.append(HealthCheck(name: "postgres") { await database.isHealthy() })
        return database
    }

    /// The server address `value` of the setting `variable`, read by `parse`; a refusal, whatever
    /// its type, is the setting's ``ConfigurationError`` (so the process exits 78 naming it), without
    /// the address where the reason repeats it (it carries a password, and a malformed one may not
    /// even be redactable).
    static func urlSetting<T>(_ variable: String, _ value: String, _ parse: (String) throws -> T) throws -> T {
        do {
            return try parse(value)
        } catch {
            let reason = String(describing: error)
            throw ConfigurationError(variable: variable, reason: value.isEmpty ? reason : reason.replacingOccurrences(of: value, with: "…"))
        }
    }

    /// Adds a pooled Redis client and its health check.
    public mutating func addRedis() throws -> RedisClient {
        let redis = RedisClient(configuration: try Self.urlSetting("REDIS_URL", configuration.redisURL) { try RedisConfiguration(url: $0) }, logger: logger)
        checks.append(HealthCheck(name: "redis") { await redis.ping() })
        shutdownHooks.append { await redis.shutdown() }
        return redis
    }

    /// Adds a step that runs once the service has stopped (closing a client).
    public mutating func addShutdownHook(_ hook: @escaping @Sendable () async -> Void) {
        shutdownHooks.append(hook)
    }

    /// Adds a long-running worker (a consumer, a poller) started after the clients.
    public mutating func addWorker(_ worker: any Service) {
        workers.append(worker)
    }

    /// Adds a step that must finish before the HTTP server accepts requests (e.g. seeding a token).
    public mutating func beforeServing(_ step: @escaping @Sendable () async throws -> Void) {
        startupSteps.append(step)
    }

    /// Adds a note `/healthz` shows under `detail` (it does not change the status).
    public mutating func addHealthDetail(_ detail: HealthDetail) {
        details.append(detail)
    }

    /// Adds the service's own HTTP routes (beside `/healthz` and `/metrics`).
    public mutating func addRoutes(_ routes: @escaping @Sendable (Router<ServiceRequestContext>) -> Void) {
        routeBuilders.append(routes)
    }

    /// Builds the HTTP application: `/healthz`, `/metrics`, and the routes added with ``addRoutes(_:)``.
    public func makeApplication() -> some ApplicationProtocol {
        makeApplication(services: [])
    }

    /// The HTTP application with the clients and workers as its own services, so that it runs the
    /// whole service alone: what a test runs in process with HummingbirdTesting's
    /// `app.test(.router)` (no port, no child process). ``close()`` afterwards.
    public func makeSelfContainedApplication() -> some ApplicationProtocol {
        // One group of their own, stopped as ``run()`` stops them: in reverse order, all within the grace.
        makeApplication(services: [ServiceRuntime.group(clients + workers, configuration: configuration, logger: logger)])
    }

    private func makeApplication(services: [any Service]) -> some ApplicationProtocol {
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: APIErrorMiddleware(isOutage: Outage.isOutage))
        OperationsRoutes(serviceName: configuration.serviceName, checks: checks, details: details, registry: registry).register(on: router)
        for build in routeBuilders { build(router) }
        var application = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.httpHost, port: configuration.httpPort),
                serverName: "cyclorama-\(configuration.serviceName)"),
            logger: logger
        )
        for step in startupSteps { application.beforeServerStarts(perform: step) }
        application.addServices(services)
        return application
    }

    /// Runs everything until SIGTERM / SIGINT (see ``ServiceRuntime/run(_:configuration:logger:)``).
    public func run() async throws {
        let application = makeApplication()
        defer { logger.debug("host finished") }
        do {
            try await ServiceRuntime.run(clients + workers + [application], configuration: configuration, logger: logger)
        } catch {
            await close()
            throw error
        }
        await close()
    }

    /// Runs the shutdown hooks (closing the clients), each given at most 3 s: a client whose close
    /// hangs must not keep the process from exiting (the services promise to exit within 10 s of
    /// SIGTERM). ``run()`` calls it; call it after running a ``makeSelfContainedApplication()``.
    public func close() async {
        for (index, hook) in shutdownHooks.enumerated() {
            let finished = await Self.run(hook, within: .seconds(3))
            if !finished {
                logger.warning("a shutdown step did not finish within 3 s; exiting without it", metadata: ["step": "\(index)"])
            }
        }
    }

    /// Runs `hook` in its own task and returns once it finished (true) or `limit` passed (false).
    static func run(_ hook: @escaping @Sendable () async -> Void, within limit: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let race = FirstOutcome(continuation)
            Task {
                await hook()
                race.settle(true)
            }
            Task {
                try? await Task.sleep(for: limit)
                race.settle(false)
            }
        }
    }
}

/// Resumes a continuation with whichever outcome comes first; later ones are ignored.
private final class FirstOutcome: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

    init(_ continuation: CheckedContinuation<Bool, Never>) {
        self.continuation = Mutex(continuation)
    }

    func settle(_ outcome: Bool) {
        continuation.withLock { pending in
            defer { pending = nil }
            return pending
        }?.resume(returning: outcome)
    }
}
