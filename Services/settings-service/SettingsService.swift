import Database
import Logging
import Messaging
import Prometheus
import ServiceSupport
import Shared

/// Wires settings-service: PostgreSQL (migrations), the broker, and the settings request consumer.
func buildSettingsService(
    configuration: ServiceConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    var host = try ServiceHost(configuration: configuration, registry: registry)
    let database = try host.addDatabase()
    let responder = SettingsRequestResponder(store: SettingsStore(client: database.client), broker: host.broker)
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.settingsRequests, prefetch: 16, logger: host.logger,
            decode: decodeDelivery(SettingsRequest.self),
            handle: { request, delivery in
                try await database.waitUntilReady()
                return try await responder.answer(request, replyTo: delivery.replyTo)
            }))
    return host
}

/// Answers a settings request with the stored settings, secrets masked.
struct SettingsRequestResponder: Sendable {
    let store: SettingsStore
    let broker: AMQPConnection

    func answer(_ request: SettingsRequest, replyTo: String?) async throws -> HandlingOutcome {
        guard let replyTo, !replyTo.isEmpty else {
            return .deadLetter(reason: "settings.request needs the AMQP reply_to property: the queue to answer to")
        }
        let reply = SettingsReply(
            correlationId: request.correlationId,
            requestMessageId: request.messageId,
            settings: try await selectedSettings(keys: request.keys))
        // The default exchange routes by queue name straight to the requester's reply queue.
        try await broker.publish(reply, to: ReplyAddress(exchange: "", routingKey: replyTo))
        return .done
    }

    /// Every stored setting (or only `keys`), with secrets masked. Unknown keys are left out.
    func selectedSettings(keys: [String]?) async throws -> [String: String] {
        var settings: [String: String] = [:]
        for setting in try await store.all() where keys?.contains(setting.key) ?? true {
            settings[setting.key] = SecretSettings.isSecret(setting.key) ? SecretSettings.mask(setting.value) : setting.value
        }
        return settings
    }
}
