import Foundation
import Logging
import Messaging
import Prometheus
import ServiceSupport
import Shared

/// Settings particular to prompt-service, from environment variables.
///
/// | variable         | default                 | meaning |
/// |------------------|-------------------------|---------|
/// | `MEDIA_BASE_URL` | `http://127.0.0.1:8080` | where the backend fetches a media's current file: `<base>/api/media/<id>/file` |
struct PromptServiceConfiguration: Sendable {
    var mediaBaseURL: String

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> PromptServiceConfiguration {
        let base = environment["MEDIA_BASE_URL"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(variable: "MEDIA_BASE_URL", reason: "must be an http(s) URL, got \"\(base)\"")
        }
        return PromptServiceConfiguration(mediaBaseURL: base.hasSuffix("/") ? String(base.dropLast()) : base)
    }

    func imageURL(for mediaId: UUID) -> String {
        "\(mediaBaseURL)/api/media/\(mediaId.uuidString.lowercased())/file"
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
    let handler = GenerationRequestHandler(prompts: prompts, settings: { try await settings.settings() }, broker: host.broker)
    host.addWorker(settings)
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.generationRequests, prefetch: 16, logger: host.logger,
            decode: decodeDelivery(RequestGeneration.self),
            handle: { request, _ in try await handler.handle(request) }))
    return host
}

/// RequestGeneration → DispatchGeneration with the prompt and the backend's input.
struct GenerationRequestHandler: Sendable {
    let prompts: PromptServiceConfiguration
    /// The current settings (secrets masked); throws when the settings-service does not answer.
    let settings: @Sendable () async throws -> [String: String]
    let broker: AMQPConnection

    func handle(_ request: RequestGeneration) async throws -> HandlingOutcome {
        let current = try await settings()
        let dispatch = try Self.dispatch(for: request, settings: current, prompts: prompts)
        try await broker.publish(dispatch)
        return .done
    }

    /// The dispatch command for `request` under `settings`. Pure: unit-tested without a broker.
    static func dispatch(
        for request: RequestGeneration, settings: [String: String], prompts: PromptServiceConfiguration
    ) throws -> DispatchGeneration {
        let backendName = settings["aiImageBackend"] ?? GenerationBackend.local.rawValue
        guard let backend = GenerationBackend(rawValue: backendName) else {
            // A broken setting is an operator problem, not the message's: retry until it is fixed.
            throw SettingsClientError(message: "setting aiImageBackend is \"\(backendName)\"; expected local or runpod")
        }
        return PromptBuilder.dispatch(
            for: request, defaults: GenerationDefaults(settings: settings), backend: backend,
            imageURL: prompts.imageURL(for: request.mediaId), flux: FluxKontextParameters(settings: settings))
    }
}
