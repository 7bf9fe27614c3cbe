import AsyncHTTPClient
import Database
import Foundation
import Logging
import Messaging
import Prometheus
import RunPod
import ServiceCore
import ServiceSupport
import Shared

/// Wires the dispatcher: Redis (records, leases, cancel flags), PostgreSQL (the RunPod key is read
/// from the settings table, never sent over the broker), the settings client, the HTTP client and
/// the dispatch consumer.
func buildDispatcher(
    configuration: ServiceConfiguration,
    dispatcher: DispatcherConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    let replyQueue = SettingsClient.makeReplyQueue(serviceName: configuration.serviceName)
    // This instance's own queue of webhook notices: the job's follower may be any instance.
    let webhookQueue = QueueDeclaration(
        name: "\(Routing.Queue.webhookNotices).\(UUID().uuidString.prefix(8).lowercased())", kind: .temporary,
        bindings: [QueueBinding(exchange: Routing.Exchange.events, routingKey: Routing.Key.backendWebhook)],
        retryDelays: [], deliveryLimit: nil, deadLetterGroup: Routing.Queue.webhookNotices)
    var host = try ServiceHost(configuration: configuration, registry: registry, additionalQueues: [replyQueue, webhookQueue])
    let redis = try host.addRedis()
    let database = try host.addDatabase()
    let settings = SettingsClient(broker: host.broker, replyQueue: replyQueue, logger: host.logger)
    host.addWorker(settings)
    let http = host.addHTTPClient(readTimeout: .seconds(30))
    let store = SettingsStore(client: database.client)
    let secrets = try SecretBox.fromEnvironment()
    let logger = host.logger
    let inbox = Doorbell<UUID>()
    let reveals = WebhookReveals()
    let ledger = JobLedger(client: database.client)
    // The RunPod key, read from the settings table and opened (never sent over the broker).
    let runpodKey: @Sendable () async throws -> String? = {
        try await database.waitUntilReady()
        guard let stored = try await store.value(for: SecretSettings.runpodApiKey) else { return nil }
        return try secrets.open(stored, for: SecretSettings.runpodApiKey)
    }
    let limiter = ConcurrencyLimiter(
        redis: redis, key: dispatcher.leasesKey, lease: dispatcher.lease, hold: dispatcher.hold, logger: logger)
    let orphans = OrphanRegistry(redis: redis, key: dispatcher.leasesKey + ":orphans", lifetime: dispatcher.hold)
    let inliner = ImageInliner(http: http, mediaBaseURL: dispatcher.mediaBaseURL)
    let imageDelivery: @Sendable () async -> ImageDelivery = { ImageDelivery(setting: try? await settings.typed().imageDelivery) }
    let follower = JobFollower(
        configuration: dispatcher, http: http, redis: redis, broker: host.broker,
        limiter: limiter,
        ownership: JobOwnership(redis: redis, recordLifetime: dispatcher.jobDeadline + .seconds(24 * 3600)),
        ledger: ledger,
        ending: JobEnding(broker: host.broker, ledger: ledger, logger: logger),
        orphans: orphans,
        inbox: inbox,
        reveals: reveals,
        executionTimes: ExecutionTimes(),
        concurrencyLimit: {
            // Unknown settings (the settings-service never answered) are an outage: the job waits.
            try await settings.typed().maxConcurrent
        },
        pricePerMegapixel: {
            (try? await settings.typed().pricePerMegapixel) ?? CycloramaSettings().pricePerMegapixel
        },
        runpodKey: runpodKey,
        webhookBase: {
            guard let values = try? await settings.typed(), values.enableWebhooks else { return nil }
            return values.webhookURL
        },
        inliner: inliner,
        imageDelivery: imageDelivery,
        logger: logger)
    let watch = RunPodWatch(
        probe: RunPodProbe(endpoint: dispatcher.runpodEndpointURL) { url, headers in try await http.get(url, headers: headers) },
        backend: { try await settings.typed().backend },
        key: runpodKey,
        unreachablePhotos: { await inliner.unreachableLinks(with: await imageDelivery()) },
        logger: logger)
    host.addHealthDetail(watch.detail)
    host.addWorker(PeriodicWork("RunPod check", every: dispatcher.runpodCheck, first: .seconds(2), logger: logger) { try await watch.check() })
    let orphanSweeper = OrphanSweeper(
        registry: orphans, limiter: limiter,
        client: { backend in
            guard case .success(let client) = try await follower.client(for: backend) else { return nil }
            return client
        },
        logger: logger)
    host.addWorker(PeriodicWork("orphan sweep", every: dispatcher.orphanSweep, logger: logger) { try await orphanSweeper.sweep() })
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: webhookQueue.name, prefetch: 64, logger: host.logger,
            decode: decodeDelivery(BackendWebhookReceived.self),
            handle: { notice, _ in
                // Noted before the ring wakes the follower; dropped again when nobody here follows the job.
                if let backendJobId = notice.backendJobId { reveals.note(notice.jobId, backendJobId) }
                if inbox.ring(notice.jobId) {
                    logger.info("webhook notice for a job followed here", metadata: ["jobId": "\(notice.jobId)"])
                } else {
                    reveals.forget(notice.jobId)
                }
                return .done
            }))
    host.addWorker(
        MessageConsumer(
            // Held for the job's whole life (its follower owns it until it ends): no handling limit.
            connection: host.broker, queue: Routing.Queue.dispatchRequests, prefetch: dispatcher.prefetch,
            handlingLimit: nil, logger: host.logger,
            decode: decodeDelivery(DispatchGeneration.self), giveUp: follower.ending.giveUp(DispatchGeneration.self),
            handle: { dispatch, _ in try await follower.handle(dispatch) }))
    return host
}
