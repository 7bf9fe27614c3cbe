import Database
import Foundation
import Logging
import Messaging
import Prometheus
import ServiceCore
import ServiceSupport
import Shared

/// Wires settings-service: PostgreSQL (migrations), the broker, and the settings request consumer.
func buildSettingsService(
    configuration: ServiceConfiguration,
    environment: EnvironmentVariables = .process,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    var host = try ServiceHost(configuration: configuration, registry: registry)
    let database = try host.addDatabase()
    let responder = SettingsRequestResponder(
        store: SettingsStore(client: database.client), broker: host.broker, secrets: try SecretBox.fromEnvironment(environment),
        authority: try SettingsAuthority.fromEnvironment(environment), logger: host.logger)
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.settingsRequests, prefetch: 16, logger: host.logger,
            decode: SettingsDelivery.decode,
            handle: { received, delivery in
                try await database.waitUntilReady()
                switch received {
                case .request(let request): return try await responder.answer(request, replyTo: delivery.replyTo)
                case .refused(let request, let error): return try await responder.refuse(request, error, replyTo: delivery.replyTo)
                }
            }))
    return host
}

/// What the settings queue delivers: a valid request, or one that failed validation but can be
/// answered (it reads as a request and says where to answer): its refusal is sent as a reply, as
/// every refusal of a request/reply is; only what cannot be answered is dead-lettered.
enum SettingsDelivery: Sendable {
    case request(SettingsRequest)
    case refused(SettingsRequest, MessageDecodingError)

    @Sendable static func decode(_ delivery: Delivery) throws -> SettingsDelivery {
        do throws(MessageDecodingError) {
            return .request(try MessageDecoder.decode(SettingsRequest.self, from: delivery.body))
        } catch {
            guard let replyTo = delivery.replyTo, !replyTo.isEmpty,
                  let request = try? MessageDecoder.decodeUnvalidated(SettingsRequest.self, from: delivery.body),
                  !request.correlationId.isEmpty
            else { throw InvalidMessage(reason: error.description) }
            return .refused(request, error)
        }
    }
}

/// Answers settings requests: stores updates (validated by ``SettingsCatalog``, secrets sealed with
/// the master key, all or nothing, then a `settings.changed` broadcast) and replies with the
/// settings, secrets masked. Values are never logged. A change must carry the gateway's
/// authorization (``SettingsAuthority``): one that does not is answered with the refusal, changes
/// nothing and is dead-lettered with the reason.
struct SettingsRequestResponder: Sendable {
    let store: SettingsStore
    let broker: AMQPConnection
    let secrets: SecretBox
    let authority: SettingsAuthority
    let logger: Logger

    func answer(_ request: SettingsRequest, replyTo: String?) async throws -> HandlingOutcome {
        guard let replyTo, !replyTo.isEmpty else {
            return .deadLetter(reason: "settings.request needs the AMQP reply_to property: the queue to answer to")
        }
        if let refusal = authority.refusal(of: request) {
            logger.warning("settings change refused: not authorized", metadata: [
                "reason": "\(refusal)", "keys": "\((request.updates ?? [:]).keys.sorted().joined(separator: ","))",
            ])
            let reply = SettingsReply(
                correlationId: request.correlationId, requestMessageId: request.messageId,
                settings: try await selectedSettings(keys: request.keys), errors: ["authorization": refusal])
            try await broker.publish(reply, to: ReplyAddress(exchange: "", routingKey: replyTo))
            return .refuse(reason: refusal)
        }
        var errors: [String: String]?
        if let updates = request.updates, !updates.isEmpty {
            errors = try await apply(updates, correlationId: request.correlationId, notAfter: request.notAfter)
        }
        let reply = SettingsReply(
            correlationId: request.correlationId,
            requestMessageId: request.messageId,
            settings: try await selectedSettings(keys: request.keys),
            errors: errors)
        // The default exchange routes by queue name straight to the requester's reply queue.
        try await broker.publish(reply, to: ReplyAddress(exchange: "", routingKey: replyTo))
        return .done
    }

    /// Answers a request that failed validation with the refusal (`errors`, nothing stored) and the
    /// current settings, so its requester can show why at once instead of waiting for a timeout.
    func refuse(_ request: SettingsRequest, _ error: MessageDecodingError, replyTo: String?) async throws -> HandlingOutcome {
        guard let replyTo, !replyTo.isEmpty else { return .deadLetter(reason: error.description) }
        logger.info("settings request refused", metadata: ["field": "\(error.field)", "reason": "\(error.reason)"])
        let reply = SettingsReply(
            correlationId: request.correlationId, requestMessageId: request.messageId,
            settings: try await selectedSettings(keys: nil), errors: [error.field.isEmpty ? "request" : error.field: error.reason])
        try await broker.publish(reply, to: ReplyAddress(exchange: "", routingKey: replyTo))
        return .done
    }

    /// Validates and stores `updates`; the refusals by key (nothing stored) or nil. Past `notAfter`
    /// nothing is stored: the requester has stopped waiting and reported the change as failed.
    func apply(_ updates: [String: String], correlationId: String, notAfter: Date? = nil, now: @Sendable () -> Date = Date.init) async throws -> [String: String]? {
        let current = Dictionary(uniqueKeysWithValues: try await store.all().map { ($0.key, $0.value) })
        var accepted: [String: String] = [:]
        var refused: [String: String] = [:]
        for (key, raw) in updates {
            if SecretSettings.isSecret(key) {
                // The masked value a client read back means "unchanged".
                if SecretSettings.isMasked(raw, key: key) && !raw.isEmpty { continue }
                let plain: String
                do { plain = try secrets.open(raw, for: key) } catch {
                    refused[key] = "is sealed with another master key"
                    continue
                }
                switch SettingsCatalog.normalize(key, plain) {
                case .success(let value):
                    accepted[key] = value.isEmpty ? "" : try secrets.seal(value, for: key)
                    if let old = current[key], (try? secrets.open(old, for: key)) == value { accepted[key] = nil }
                case .failure(let error): refused[key] = error.reason
                }
                continue
            }
            // A value sent back as it is stored is no change, even if it would not pass today's
            // rule (stored before the rule became stricter): a form that sends every field saves.
            if current[key] == raw { continue }
            switch SettingsCatalog.normalize(key, raw) {
            case .success(let value): if current[key] != value { accepted[key] = value }
            case .failure(let error): refused[key] = error.reason
            }
        }
        guard refused.isEmpty else {
            logger.info("settings update refused", metadata: ["keys": "\(refused.keys.sorted().joined(separator: ","))"])
            return refused
        }
        guard !accepted.isEmpty else { return nil }
        if let notAfter, now() > notAfter {
            logger.notice("settings update arrived after its notAfter; not applied", metadata: ["keys": "\(accepted.keys.sorted().joined(separator: ","))"])
            let reason = "was not applied: the request came after its deadline (\(MessageCoding.formatTimestamp(notAfter))), when the requester had stopped waiting"
            return Dictionary(uniqueKeysWithValues: updates.keys.map { ($0, reason) })
        }
        try await store.update(accepted)
        let changed = accepted.keys.sorted()
        logger.info("settings updated", metadata: ["keys": "\(changed.joined(separator: ","))"])
        // A broadcast: every SettingsClient's queue hears it; fine if none is listening right now.
        try await broker.publish(
            SettingsChanged(correlationId: correlationId, changedKeys: changed, settings: try await selectedSettings(keys: nil)),
            mandatory: false)
        return nil
    }

    /// Every stored setting (or only `keys`), with secrets masked. Unknown keys are left out.
    func selectedSettings(keys: [String]?) async throws -> [String: String] {
        var settings: [String: String] = [:]
        for setting in try await store.all() where keys?.contains(setting.key) ?? true {
            guard SecretSettings.isSecret(setting.key) else {
                settings[setting.key] = setting.value
                continue
            }
            // The mask shows the real key's last characters, not the ciphertext's.
            let plain = (try? secrets.open(setting.value, for: setting.key)) ?? ""
            settings[setting.key] = SecretSettings.mask(plain, key: setting.key)
        }
        return settings
    }
}
