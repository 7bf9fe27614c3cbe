import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOPosix
import Prometheus
import ServiceLifecycle
import ServiceCore

/// The local engine, assembled: job store, scheduler, webhook notifier, sweeper and the HTTP server.
///
/// ```swift
/// let engine = try LocalEngine(configuration: .fromEnvironment(), registry: registry)
/// try await engine.run()   // until SIGTERM / SIGINT
/// ```
public struct LocalEngine: Sendable {
    public let configuration: EngineConfiguration
    let logger: Logger
    let registry: PrometheusCollectorRegistry
    let threadPool: NIOThreadPool
    let client: HTTPClient
    let store: JobStore
    let results: ResultFiles
    let scheduler: JobScheduler
    let notifier: WebhookNotifier
    let sweeper: JobSweeper
    let routes: EngineRoutes

    public init(configuration: EngineConfiguration, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) throws {
        self.configuration = configuration
        self.registry = registry
        var logger = Logger(label: "cyclorama.local-engine")
        logger.logLevel = configuration.service.logLevel
        self.logger = logger
        // Renders and result-file I/O; one thread per slot plus one so file I/O never waits behind renders.
        let threadPool = NIOThreadPool(numberOfThreads: configuration.concurrency + 1)
        let results = ResultFiles(directory: configuration.resultsDirectory, threadPool: threadPool, lifetime: configuration.resultTTL)
        // What can fail comes before anything is started: a failed init leaves no thread or client running.
        try results.prepare()
        let renderer: any ImageRenderer = if let latency = configuration.simulatedLatency {
            SimulatedRenderer(latency: latency, hold: configuration.simulatedHold)
        } else {
            try PipelineRenderer(
                maxImageBytes: configuration.maxImageBytes, modelPath: configuration.modelPath, inputSides: configuration.inputSides,
                segmentationCacheEntries: configuration.segmentationCacheEntries, threadPool: threadPool)
        }
        threadPool.start()
        self.threadPool = threadPool
        client = ImageSource.makeClient()
        self.results = results
        let source = ImageSource(
            client: client, allowedHosts: configuration.allowedHosts, maxBytes: configuration.maxImageBytes,
            timeout: configuration.fetchTimeout, retryWindow: configuration.fetchRetryWindow)
        let webhookHosts = configuration.webhookHosts
        let notifier = WebhookNotifier(
            client: client, results: results, retryInterval: configuration.webhookRetryInterval,
            clearance: { [resolve = source.resolve] url in
                await webhookHosts.clearance(
                    host: url.host ?? "", port: url.connectionPort, variable: "LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS", resolve: resolve)
            },
            logger: logger)
        let (wakeups, wake) = JobScheduler.makeWakeups()
        let store = JobStore(
            limits: .init(
                concurrency: configuration.concurrency, queueLimit: configuration.queueLimit,
                queueByteLimit: configuration.queueByteLimit, resultTTL: configuration.resultTTL),
            workerId: "local-engine-\(ProcessInfo.processInfo.processIdentifier)",
            onTerminal: { body, inline in notifier.enqueue(body, inlineImage: inline) },
            wake: wake)
        self.store = store
        self.notifier = notifier
        scheduler = JobScheduler(store: store, wakeups: wakeups, source: source, renderer: renderer, results: results, logger: logger)
        sweeper = JobSweeper(store: store, results: results, interval: configuration.sweepInterval)
        routes = EngineRoutes(configuration: configuration, store: store, source: source, renderer: renderer, results: results)
    }

    /// The HTTP application: the protocol routes, `/healthz` and `/metrics`.
    public func makeApplication() -> some ApplicationProtocol {
        makeApplication(services: [])
    }

    /// The HTTP application with the notifier, scheduler and sweeper as its own services, so that it
    /// runs the whole engine alone: what a test runs in process with HummingbirdTesting's
    /// `app.test(.router)` (no port, no child process). ``close()`` afterwards.
    public func makeSelfContainedApplication() -> some ApplicationProtocol {
        // One group of their own, stopped as ``run()`` stops them: in reverse order, all within the grace.
        makeApplication(services: [ServiceRuntime.group(workers, configuration: configuration.service, logger: logger)])
    }

    private var workers: [any Service] { [notifier, scheduler, sweeper] }

    private func makeApplication(services: [any Service]) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: APIErrorMiddleware())
        OperationsRoutes(serviceName: configuration.service.serviceName, checks: [], registry: registry).register(on: router)
        routes.register(on: router)
        var application = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.service.httpHost, port: configuration.service.httpPort),
                serverName: "cyclorama-local-engine"),
            logger: logger)
        application.addServices(services)
        return application
    }

    /// Serves until SIGTERM / SIGINT, then stops taking requests, lets running jobs finish within the
    /// shutdown grace, releases the HTTP client and the thread pool, and removes the result images.
    public func run() async throws {
        logger.info(
            "renderer", metadata: ["mode": "\(routes.renderer.description.mode)", "concurrency": "\(configuration.concurrency)",
                                   "queue_limit": "\(configuration.queueLimit)", "allowed_hosts": "\(configuration.allowedHosts)"])
        var failure: (any Error)?
        do {
            try await ServiceRuntime.run(workers + [makeApplication()], configuration: configuration.service, logger: logger)
        } catch {
            failure = error
        }
        await close()
        if let failure { throw failure }
    }

    /// Releases the HTTP client and the thread pool: ``run()`` does it when it stops; call it after
    /// running a ``makeSelfContainedApplication()``. Results stay for their time to live: one already
    /// announced can still be downloaded after a restart (the next start and the sweeper remove them
    /// once they expire).
    public func close() async {
        try? await client.shutdown()
        try? await threadPool.shutdownGracefully()
    }
}
