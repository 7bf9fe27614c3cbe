import Database
import Foundation
import Logging
import Messaging
import Prometheus
import ServiceCore
import ServiceSupport
import Shared

/// Settings particular to prompt-service, from environment variables.
///
/// | variable                | default                 | meaning |
/// |-------------------------|-------------------------|---------|
/// | `MEDIA_BASE_URL`        | `http://127.0.0.1:8080` | the gateway as the backend reaches it (for RunPod: its public URL); the backend fetches `<base>/media/<id>/file?expires=…&signature=…` |
/// | `MEDIA_URL_TTL_SECONDS` | `86400`                 | how long such a signed URL works (a RunPod job may wait in its queue for hours) |
/// | `MEDIA_URL_SECRET[_FILE]` | `.var/media-url-secret` | the signing secret shared with the gateway (``MediaURLSigner``) |
/// | `JOB_QUEUE_DEADLINE_SECONDS` | `86400`             | the deadline of a job published straight onto the broker, whose ledger row this service writes (as the gateway's; give both the same) |
struct PromptServiceConfiguration: Sendable {
    var mediaBaseURL: String
    var signer: MediaURLSigner
    var urlLifetime: TimeInterval = 86_400
    var queueDeadline: Duration = JobLedger.defaultQueueDeadline

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> PromptServiceConfiguration {
        let base = environment["MEDIA_BASE_URL"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(variable: "MEDIA_BASE_URL", reason: "must be an http(s) URL, got \"\(base)\"")
        }
        let lifetime = environment["MEDIA_URL_TTL_SECONDS"] ?? "86400"
        guard let seconds = Int(lifetime), (60...(7 * 86_400)).contains(seconds) else {
            throw ConfigurationError(variable: "MEDIA_URL_TTL_SECONDS", reason: "must be 60...604800 seconds, got \"\(lifetime)\"")
        }
        var configuration = PromptServiceConfiguration(
            mediaBaseURL: base.hasSuffix("/") ? String(base.dropLast()) : base,
            signer: try MediaURLSigner.fromEnvironment(environment), urlLifetime: TimeInterval(seconds))
        if let deadline = try JobLedger.queueDeadline(environment) {
            configuration.queueDeadline = deadline
        }
        return configuration
    }

    /// A signed URL of the media's file (`filePath`: that exact file, served without the database;
    /// nil: its current file) that works without an API token until it expires.
    func imageURL(for mediaId: UUID, filePath: String? = nil, now: Date = Date()) -> String {
        mediaBaseURL + signer.signedPath(mediaId: mediaId, file: filePath, expires: now.addingTimeInterval(urlLifetime))
    }
}

/// Wires prompt-service: the broker, the settings client and the generation-request consumer.
func buildPromptService(
    configuration: ServiceConfiguration,
    prompts: PromptServiceConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    let replyQueue = SettingsClient.makeReplyQueue(serviceName: configuration.serviceName)
    var host = try ServiceHost(configuration: configuration, registry: registry, additionalQueues: [replyQueue])
    let settings = SettingsClient(broker: host.broker, replyQueue: replyQueue, logger: host.logger)
    let database = try host.addDatabase()
    let media = MediaStore(client: database.client)
    let ledger = {
        var ledger = JobLedger(client: database.client)
        ledger.queueDeadline = prompts.queueDeadline
        return ledger
    }()
    let ending = JobEnding(broker: host.broker, ledger: ledger, logger: host.logger)
    let handler = GenerationRequestHandler(
        prompts: prompts, settings: { try await settings.settings() },
        mediaFile: { id in
            try await database.waitUntilReady()
            return try await media.media(id)?.file
        },
        recordJob: { request in
            try await ledger.ensure(
                request.jobId, mediaId: request.mediaId, kind: request.kind.ledgerKind, batchId: request.batchId,
                variationName: request.kind == .variation ? request.variationName ?? "Variation" : request.variationName,
                correlationId: request.correlationId)
        },
        broker: host.broker, ending: ending, logger: host.logger)
    host.addWorker(settings)
    let giveUp = ending.giveUp(RequestGeneration.self)
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.generationRequests, prefetch: 16, logger: host.logger,
            decode: GenerationRequestDelivery.decode,
            giveUp: { received, reason in
                // A refused request was never a job: there is nothing to end.
                if case .request(let request) = received { try await giveUp(request, reason) }
            },
            handle: { received, _ in
                switch received {
                case .request(let request): return try await handler.handle(request)
                case .refused(let refusal, let replyTo, let error):
                    // An invalid copy naming an accepted job must not give that job a second end.
                    try await database.waitUntilReady()
                    guard try await ledger.job(refusal.jobId) == nil else {
                        return .refuse(reason: "\(error.description) (not answered: job \(refusal.jobId) exists and ends on its own)")
                    }
                    return await handler.refuse(refusal, to: replyTo, error)
                }
            }))
    return host
}

/// What the generation-requests queue delivers: a valid request, or one that failed validation
/// but says where to answer (its `replyTo`, and the ids an answer needs, read). A refused request
/// never becomes a job (no ledger row, nothing on `cyclorama.events`); its refusal goes to the
/// requester's `replyTo` as GenerationFailed `invalid_request`, and the message to the dead-letter
/// queue with the reason. What cannot be answered is only dead-lettered.
enum GenerationRequestDelivery: Sendable {
    case request(RequestGeneration)
    /// The refusal to send, where to, and why.
    case refused(GenerationFailed, ReplyAddress, MessageDecodingError)

    @Sendable static func decode(_ delivery: Delivery) throws -> GenerationRequestDelivery {
        do throws(MessageDecodingError) {
            return .request(try MessageDecoder.decode(RequestGeneration.self, from: delivery.body))
        } catch {
            guard let answerable = try? JSONDecoder().decode(Answerable.self, from: Data(delivery.body)),
                  answerable.type == RequestGeneration.messageType.rawValue,
                  (try? answerable.replyTo.validate(at: "replyTo")) != nil
            else { throw InvalidMessage(reason: error.description) }
            let correlation = answerable.correlationId.flatMap { (1...200).contains($0.count) ? $0 : nil }
            let refusal = GenerationFailed(
                correlationId: correlation, jobId: answerable.jobId, mediaId: answerable.mediaId,
                reason: "the request was refused and never became a job: \(error.description.prefix(1500))", code: .invalidRequest,
                retryable: false)
            guard (try? refusal.validate()) != nil else { throw InvalidMessage(reason: error.description) }
            return .refused(refusal, answerable.replyTo, error)
        }
    }

    /// What an answer needs of a request, read leniently: whatever else is wrong with it.
    private struct Answerable: Decodable {
        var type: String
        var correlationId: String?
        var jobId: UUID
        var mediaId: UUID
        var replyTo: ReplyAddress
    }
}

/// RequestGeneration → DispatchGeneration with the prompt and the backend's input.
struct GenerationRequestHandler: Sendable {
    let prompts: PromptServiceConfiguration
    /// The current settings (secrets masked); throws when the settings-service does not answer.
    let settings: @Sendable () async throws -> [String: String]
    /// The media's current file, nil when it does not exist (or is deleted).
    let mediaFile: @Sendable (UUID) async throws -> StoredFile?
    /// Writes the job's ledger row unless it has one (a job published straight onto the broker):
    /// only a job in the ledger may have its result applied.
    let recordJob: @Sendable (RequestGeneration) async throws -> Void
    let broker: AMQPConnection
    let ending: JobEnding
    let logger: Logger

    func handle(_ request: RequestGeneration) async throws -> HandlingOutcome {
        // A valid request that cannot be carried out becomes a failed job, not a backend call.
        let id = request.mediaId.uuidString.lowercased()
        guard let file = try await mediaFile(request.mediaId) else {
            return try await fail(request, "media \(id) does not exist")
        }
        guard file.mimeType.hasPrefix("image/") else {
            return try await fail(request, "media \(id) is \(file.mimeType), not an image")
        }
        try await recordJob(request)
        try await broker.publish(GenerationProgressed(
            correlationId: request.correlationId, jobId: request.jobId, mediaId: request.mediaId, stage: .prompting,
            replyTo: request.replyTo))
        let current = try await settings()
        let dispatch = try Self.dispatch(
            for: request, settings: current, prompts: prompts, source: JobSource(path: file.path, width: file.width, height: file.height))
        try await broker.publish(dispatch)
        return .done
    }

    /// Answers a request that failed validation at its `replyTo` (best effort: the requester's
    /// address may not route), then dead-letters it with the reason.
    func refuse(_ refusal: GenerationFailed, to replyTo: ReplyAddress, _ error: MessageDecodingError) async -> HandlingOutcome {
        do {
            try await broker.publish(refusal, to: replyTo)
        } catch {
            logger.warning("could not send a refusal to replyTo", metadata: [
                "exchange": "\(replyTo.exchange)", "routingKey": "\(replyTo.routingKey)", "error": "\(error)",
            ])
        }
        return .deadLetter(reason: error.description)
    }

    private func fail(_ request: RequestGeneration, _ reason: String) async throws -> HandlingOutcome {
        try await ending.fail(request, code: .invalidRequest, reason: reason, retryable: false)
        return .done
    }

    /// The dispatch command for `request` under `settings`. Pure: unit-tested without a broker.
    static func dispatch(
        for request: RequestGeneration, settings: [String: String], prompts: PromptServiceConfiguration, source: JobSource? = nil
    ) throws -> DispatchGeneration {
        let typed = CycloramaSettings(settings)
        if let reason = typed.unreadable["aiImageBackend"] {
            // A broken setting is an operator problem, not the message's: retry until it is fixed.
            throw SettingsClientError(message: "setting aiImageBackend \(reason)")
        }
        return PromptBuilder.dispatch(
            for: request, defaults: GenerationDefaults(settings: typed), backend: typed.backend,
            imageURL: prompts.imageURL(for: request.mediaId, filePath: source?.path), flux: FluxKontextParameters(settings: typed),
            source: source)
    }
}
