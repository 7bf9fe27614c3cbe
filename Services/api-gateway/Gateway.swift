import Database
import Foundation
import Logging
import Prometheus
import RunPod
import ServiceCore
import ServiceSupport
import Shared
import Timing

/// Wires the gateway: PostgreSQL, Redis, the broker, the job-event consumer and the HTTP routes.
func buildGateway(
    configuration: ServiceConfiguration,
    gateway: GatewayConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    let replyQueue = SettingsClient.makeReplyQueue(serviceName: configuration.serviceName)
    var host = try ServiceHost(configuration: configuration, registry: registry, additionalQueues: [replyQueue])
    let settingsClient = SettingsClient(
        broker: host.broker, replyQueue: replyQueue, logger: host.logger, authority: gateway.settingsAuthority)
    host.addWorker(settingsClient)
    let database = try host.addDatabase()
    let redis = try host.addRedis()
    // The API reads and writes PostgreSQL: serve it only once the schema is in place.
    host.beforeServing { try await database.waitUntilReady() }
    if let tokenFile = gateway.adminTokenFile {
        let logger = host.logger
        host.beforeServing {
            try await database.waitUntilReady()
            try await AdminTokenSeed(file: tokenFile, store: APITokenStore(client: database.client)).apply(logger: logger)
        }
    }
    let tokens = APITokenStore(client: database.client)
    let store = MediaStore(client: database.client)
    let mediaFiles = MediaFiles(root: gateway.mediaRoot)
    let thumbnails = Thumbnails(files: mediaFiles, maxPixels: max(gateway.maxImagePixels, Thumbnails.maxPixels))
    let purgedFiles = PurgedFileSweeper(
        store: PurgedFileStore(client: database.client), files: mediaFiles, thumbnails: thumbnails,
        grace: gateway.purgeGrace, logger: host.logger)
    let trashKeep = gateway.trashKeep
    let sweepLogger = host.logger
    host.addWorker(PeriodicWork("purged file sweep", every: gateway.purgeSweepInterval, logger: host.logger) {
        try await database.waitUntilReady()
        // The trash's keeping time first: what it deletes for good is swept with the rest.
        if let trashKeep {
            let expired = try await store.purge(nil, deletedBefore: Date().addingTimeInterval(-trashKeep.timeInterval))
            if !expired.isEmpty {
                sweepLogger.info("deleted for good what was in the trash longer than TRASH_KEEP_DAYS", metadata: ["media": "\(expired.count)"])
            }
        }
        try await purgedFiles.sweep()
    })
    if let interval = gateway.unnamedFileScanInterval {
        host.addWorker(PeriodicWork("unnamed file scan", every: interval, first: .seconds(600), logger: host.logger) {
            try await database.waitUntilReady()
            try await purgedFiles.queueUnnamedFiles(olderThan: GatewayConfiguration.unnamedFileAge)
        })
    }
    let media = MediaController(
        store: store, files: mediaFiles, thumbnails: thumbnails, purgedFiles: purgedFiles,
        signer: gateway.signer, maxImagePixels: gateway.maxImagePixels, trashKeep: trashKeep)
    let hub = JobEventHub()
    let ledger = gateway.ledger(database.client)
    let settingsStore = SettingsStore(client: database.client)
    let secrets = gateway.secrets
    /// The opened value of a secret setting, nil when it is not set.
    @Sendable func secret(_ key: String) async throws -> String? {
        guard let stored = try await settingsStore.value(for: key), !stored.isEmpty else { return nil }
        return try secrets.open(stored, for: key)
    }
    var intake = GenerationIntake(broker: host.broker, hub: hub, settings: settingsClient, ledger: ledger, logger: host.logger)
    intake.notifyHosts = gateway.notifyHosts
    intake.notifySecretIsSet = { try await settingsStore.value(for: SecretSettings.notifySecret)?.isEmpty == false }
    let notifications = NotificationStore(client: database.client)
    let generation = GenerationController(
        media: store, ledger: ledger, intake: intake, notifications: notifications,
        redis: redis, hub: hub, logger: host.logger)
    let http = host.addHTTPClient(readTimeout: .seconds(10))
    let sender = NotificationSender(
        store: notifications, ledger: ledger, media: store, http: host.addHTTPClient(), hosts: gateway.notifyHosts,
        resolve: PublicAddress.systemResolve, secret: { try await secret(SecretSettings.notifySecret) },
        policy: gateway.notifyPolicy, logger: host.logger)
    host.addWorker(PeriodicWork("notification sender", every: gateway.notifyInterval, logger: host.logger) {
        try await database.waitUntilReady()
        try await sender.sweep()
    })
    let settings = SettingsController(
        settings: settingsClient, secrets: secrets,
        runpod: RunPodProbe(endpoint: gateway.runpodEndpointURL) { url, headers in try await http.get(url, headers: headers) },
        storedKey: { try await secret(SecretSettings.runpodApiKey) },
        notifyHosts: gateway.notifyHosts, notifySecretIsSet: intake.notifySecretIsSet)
    let batches = BatchController(
        media: store, ledger: ledger, reviews: ReviewStore(client: database.client), files: mediaFiles, thumbnails: thumbnails,
        intake: intake, redis: redis, hub: hub, logger: host.logger)
    let reaper = JobReaper(ledger: ledger, broker: host.broker, redis: redis, logger: host.logger, outboxAfter: gateway.outboxAfter)
    host.addWorker(PeriodicWork("job reaper", every: gateway.reaperInterval, logger: host.logger) { try await reaper.sweep() })
    let variations = VariationController(
        media: store, files: MediaFiles(root: gateway.mediaRoot), variations: VariationStore(client: database.client),
        intake: intake, queueDeadline: gateway.queueDeadline, settings: settingsClient, logger: host.logger)
    let webhooks = WebhookController(
        ledger: ledger, broker: host.broker,
        limiter: RateLimiter(burst: 2 * gateway.webhookRatePerSecond, perSecond: Double(gateway.webhookRatePerSecond)),
        logger: host.logger)
    let exports = ExportController(
        media: store, exports: MediaExportStore(client: database.client), files: mediaFiles, signer: gateway.signer, logger: host.logger)
    let allowedMethods = AllowedMethods(openAPI: OpenAPIRoute.bytes)
    host.addRoutes { router in
        router.add(middleware: MethodNotAllowedMiddleware(allowed: allowedMethods))
        router.get("/media/:id/file", use: media.signedFile)
        exports.addPublicRoutes(to: router)
        webhooks.addRoutes(to: router)
        router.get("/api/openapi.json", use: OpenAPIRoute.serve)
        AdminUIRoutes.add(to: router)
        let api = router.group("api")
            .add(middleware: AdminAuthMiddleware(
                tokens: tokens,
                failures: RateLimiter(burst: gateway.authFailureBurst, perSecond: 1 / gateway.authFailureRefillSeconds)))
            .add(middleware: LocationMiddleware())
            .add(middleware: IdempotencyMiddleware(store: IdempotencyStore(client: database.client)))
        media.addRoutes(to: api)
        generation.addRoutes(to: api)
        settings.addRoutes(to: api)
        batches.addRoutes(to: api)
        variations.addRoutes(to: api)
        exports.addRoutes(to: api)
        PresetController(presets: PresetStore(client: database.client)).addRoutes(to: api)
    }
    let recorder = JobEventRecorder(ledger: ledger, hub: hub, logger: host.logger)
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.jobEvents, prefetch: 32, logger: host.logger,
            decode: { delivery in
                do throws(MessageDecodingError) {
                    return try MessageDecoder.decode(delivery.body)
                } catch {
                    throw InvalidMessage(reason: error.description)
                }
            },
            handle: { event, _ in
                try await database.waitUntilReady()
                return try await recorder.record(event)
            }))
    return host
}

/// Makes the token in `file` a valid ADMIN token (only its SHA-256 is stored).
struct AdminTokenSeed: Sendable {
    let file: String
    let store: APITokenStore

    func apply(logger: Logger) async throws {
        let raw = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard raw.count >= 32 else {
            throw ConfigurationError(variable: "CYCLORAMA_ADMIN_TOKEN_FILE", reason: "\(file) must hold a token of at least 32 characters")
        }
        try await store.ensure(token: raw, name: "admin (from \(URL(fileURLWithPath: file).lastPathComponent))", role: "ADMIN")
        logger.info("admin token ready", metadata: ["file": "\(file)"])
    }
}
