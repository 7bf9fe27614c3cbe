import Database
import Prometheus
import ServiceCore
import ServiceSupport
import Shared

/// Wires the ingestor: PostgreSQL, the broker, the HTTP client and the consumer of rendered results.
func buildIngestor(
    configuration: ServiceConfiguration,
    ingestor: IngestorConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    let replyQueue = SettingsClient.makeReplyQueue(serviceName: configuration.serviceName)
    var host = try ServiceHost(configuration: configuration, registry: registry, additionalQueues: [replyQueue])
    let settings = SettingsClient(broker: host.broker, replyQueue: replyQueue, logger: host.logger)
    host.addWorker(settings)
    let database = try host.addDatabase()
    let http = host.addHTTPClient()
    let ledger = JobLedger(client: database.client)
    let ending = JobEnding(broker: host.broker, ledger: ledger, logger: host.logger)
    let handler = ResultHandler(
        configuration: ingestor, http: http, store: MediaStore(client: database.client),
        variations: VariationStore(client: database.client), reviews: ReviewStore(client: database.client), ledger: ledger,
        files: MediaFiles(root: ingestor.mediaRoot), unapplied: PurgedFileStore(client: database.client), broker: host.broker, ending: ending, logger: host.logger,
        fidelityMode: { [logger = host.logger] in
            // The guard never waits for the settings-service: unknown settings take the default.
            do { return try await settings.typed().fidelityMode } catch {
                logger.notice("settings unknown; the fidelity guard restores by default", metadata: ["error": "\(error)"])
                return CycloramaSettings().fidelityMode
            }
        })
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.generationRendered, prefetch: 8,
            handlingLimit: ingestor.handlingLimit, logger: host.logger,
            decode: decodeDelivery(GenerationRendered.self), giveUp: ending.giveUp(GenerationRendered.self),
            handle: { rendered, _ in
                try await database.waitUntilReady()
                return try await handler.handle(rendered)
            }))
    return host
}
