import Foundation
import Logging
import Messaging
import Metrics
import ServiceCore
import ServiceLifecycle
import Shared
import Synchronization
import Timing

/// Asks the settings-service for settings over the broker (request/reply) and caches the answer.
///
/// Requests go to `cyclorama.commands` / `settings.request` with this instance's temporary reply
/// queue in `reply_to`; replies are matched by `correlationId`. Add ``replyQueue`` to the topology
/// (``ServiceHost`` does it) and run the client as a worker.
public final class SettingsClient: Service, Sendable {
    /// A temporary queue of this process only; the broker deletes it when the process goes away.
    public let replyQueue: QueueDeclaration
    let broker: AMQPConnection
    let logger: Logger
    let timeout: Duration
    let cacheLifetime: Duration
    /// Signs changes; nil for a service that only reads settings (every one but the gateway).
    let authority: SettingsAuthority?
    private let pending = Mutex<[String: CheckedContinuation<SettingsReply, any Error>]>([:])
    private let cache: Mutex<SettingsCache>
    /// `settings.changed` broadcasts taken (`/metrics`): how a test knows every service has seen a change.
    private let changesTaken = Counter(label: "settings_changes_taken_total")

    /// A fresh reply queue for this process; declare it in the broker topology before creating the client.
    /// It also hears `settings.changed`, so every instance asks again when settings change.
    public static func makeReplyQueue(serviceName: String) -> QueueDeclaration {
        QueueDeclaration(
            name: "\(serviceName).settings-replies.\(UUID().uuidString.prefix(8).lowercased())",
            kind: .temporary, bindings: [QueueBinding(exchange: Routing.Exchange.events, routingKey: Routing.Key.settingsChanged)],
            deadLetter: false, retryDelays: [], deliveryLimit: nil)
    }

    public init(
        broker: AMQPConnection, replyQueue: QueueDeclaration, logger: Logger,
        timeout: Duration = .seconds(5), cacheLifetime: Duration = .seconds(30), authority: SettingsAuthority? = nil
    ) {
        self.authority = authority
        self.replyQueue = replyQueue
        self.broker = broker
        self.logger = logger
        self.timeout = timeout
        self.cacheLifetime = cacheLifetime
        cache = Mutex(SettingsCache(lifetime: cacheLifetime))
    }

    public func run() async throws {
        for try await delivery in broker.consume(queue: replyQueue.name, prefetch: 16).cancelOnGracefulShutdown() {
            do {
                switch try MessageDecoder.decode(delivery.body) {
                case .settingsReply(let reply):
                    let waiter = pending.withLock { $0.removeValue(forKey: reply.correlationId) }
                    waiter?.resume(returning: reply)
                    if waiter == nil { logger.debug("late settings reply dropped", metadata: ["correlationId": "\(reply.correlationId)"]) }
                case .settingsChanged(let change):
                    // A hint, not the values: anyone who may publish on the events exchange could send
                    // one. The next read asks the settings-service (over this private reply queue);
                    // the values known so far stay the fallback while it does not answer.
                    markStale()
                    changesTaken.increment()
                    logger.info("settings changed", metadata: ["keys": "\(change.changedKeys.sorted().joined(separator: ","))"])
                default:
                    logger.warning("unexpected message on the settings queue dropped", metadata: ["type": "\(delivery.type ?? "-")"])
                }
            } catch {
                logger.warning("unreadable settings reply dropped", metadata: ["error": "\(error)"])
            }
            try? await delivery.ack()
        }
    }

    /// All settings (secrets masked): from the cache when it is fresh, else asked for; when the
    /// settings-service does not answer, the last values this process knew (they stay right until a
    /// change is broadcast, and a change made while the service is away cannot happen). Throws
    /// ``DependencyUnavailable`` only when this process never had an answer.
    public func settings() async throws -> [String: String] {
        if let fresh = cache.withLock({ $0.fresh(at: .now) }) { return fresh }
        let asked = cache.withLock { $0.generation }
        do {
            let fresh = try await request(keys: nil).settings
            cache.withLock { $0.store(fresh, askedAt: asked, now: .now) }
            return fresh
        } catch let error where Outage.isOutage(error) {
            guard let known = cache.withLock({ $0.keepKnown(at: .now) }) else { throw error }
            logger.notice("settings-service not answering; using the last known settings", metadata: ["error": "\(error)"])
            return known
        }
    }

    /// ``settings()`` as their types (``CycloramaSettings``).
    public func typed() async throws -> CycloramaSettings {
        CycloramaSettings(try await settings())
    }

    /// Makes the next read ask the settings-service, keeping the values known so far as the
    /// fallback while it does not answer (on `settings.changed`).
    func markStale() {
        cache.withLock { $0.markStale(now: .now) }
    }

    /// Stores new values through the settings-service (all or nothing); the reply's `errors` say what
    /// was refused. Secrets should be sealed before (``SecretBox``). Needs the ``SettingsAuthority``:
    /// the settings-service refuses a change not signed with it.
    ///
    /// The request says it must not be applied after ``timeout`` from now; this waits a little longer
    /// for the reply, so an update that throws here (no answer) is never applied later.
    public func update(_ values: [String: String]) async throws -> SettingsReply {
        let reply = try await request(keys: nil, updates: values, notAfter: Date().addingTimeInterval(timeout.timeInterval))
        if reply.errors?.isEmpty ?? true { cache.withLock { $0.storeOwnChange(reply.settings, now: .now) } }
        return reply
    }

    /// A change signed with ``authority``; a read as it is.
    private func authorized(_ request: SettingsRequest) throws -> SettingsRequest {
        guard request.updates?.isEmpty == false else { return request }
        guard let authority else {
            throw SettingsClientError(message: "this service holds no settings authority key: only the gateway changes settings")
        }
        return authority.signed(request)
    }

    /// One request/reply round trip; throws ``DependencyUnavailable`` when no reply comes within
    /// ``timeout`` (plus ``updateGrace`` for a request with `notAfter`).
    public func request(keys: [String]?, updates: [String: String]? = nil, notAfter: Date? = nil) async throws -> SettingsReply {
        let request = try authorized(SettingsRequest(keys: keys, updates: updates, notAfter: notAfter))
        let correlationId = request.correlationId
        let wait = notAfter == nil ? timeout : timeout + Self.updateGrace
        return try await withThrowingTaskGroup(of: SettingsReply.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    self.pending.withLock { $0[correlationId] = continuation }
                    Task {
                        do {
                            try await self.broker.publish(request, replyTo: self.replyQueue.name)
                        } catch let error as PublishError where error.code == .unroutable {
                            // No queue takes settings requests: the settings-service never ran on
                            // this broker (each service declares only its own queues).
                            self.pending.withLock { $0.removeValue(forKey: correlationId) }?.resume(throwing: DependencyUnavailable(
                                "settings-service", "the broker has no queue for settings requests; has settings-service run?"))
                        } catch {
                            self.pending.withLock { $0.removeValue(forKey: correlationId) }?.resume(throwing: error)
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: wait)
                throw DependencyUnavailable("settings-service", "no settings reply within \(wait); is settings-service running?")
            }
            defer {
                group.cancelAll()
                self.pending.withLock { $0.removeValue(forKey: correlationId) }?
                    .resume(throwing: SettingsClientError(message: "settings request abandoned"))
            }
            return try await group.next()!
        }
    }

    /// How much longer than ``timeout`` an update waits for its reply: the settings-service stops
    /// applying it at ``timeout`` (by its own clock), so clocks may differ by up to this much.
    public static let updateGrace: Duration = .seconds(3)
}

public struct SettingsClientError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// What a ``SettingsClient`` knows of the settings, and whether it may answer a read from it: a
/// value type, so its rules are tested without a broker (`SettingsCacheTests`).
///
/// Values are fresh for ``lifetime`` after they were fetched. A `settings.changed` broadcast makes
/// them stale at once (``markStale(now:)``) but keeps them as the fallback while the
/// settings-service does not answer. A reply to a read asked for before the last broadcast
/// (``store(_:askedAt:now:)`` with an older ``generation``) may hold the values from before the
/// change: it serves the read that asked, and is kept as stale.
public struct SettingsCache: Sendable {
    public let lifetime: Duration
    /// The `settings.changed` broadcasts taken so far; a read notes it before it asks.
    public private(set) var generation = 0
    private var known: (settings: [String: String], fetchedAt: ContinuousClock.Instant)?

    /// How soon a read asks again after the settings-service did not answer (each attempt waits
    /// for the reply timeout, so not on every call).
    public static let retryAfterOutage: Duration = .seconds(10)

    public init(lifetime: Duration) { self.lifetime = lifetime }

    /// The values, if they may answer a read at `now` without asking.
    public func fresh(at now: ContinuousClock.Instant) -> [String: String]? {
        guard let known, now - known.fetchedAt < lifetime else { return nil }
        return known.settings
    }

    /// A reply to a read that noted `asked` (``generation``) before asking.
    public mutating func store(_ settings: [String: String], askedAt asked: Int, now: ContinuousClock.Instant) {
        known = (settings, asked == generation ? now : stale(now))
    }

    /// The values this process itself just stored through the settings-service (an update's reply).
    public mutating func storeOwnChange(_ settings: [String: String], now: ContinuousClock.Instant) {
        known = (settings, now)
    }

    /// A `settings.changed` broadcast: the next read asks; the values stay the fallback.
    public mutating func markStale(now: ContinuousClock.Instant) {
        generation += 1
        if let settings = known?.settings { known = (settings, stale(now)) }
    }

    /// The settings-service did not answer: the values known so far (nil if none), asked for again
    /// ``retryAfterOutage`` from `now`.
    public mutating func keepKnown(at now: ContinuousClock.Instant) -> [String: String]? {
        guard let settings = known?.settings else { return nil }
        known = (settings, now - lifetime + Self.retryAfterOutage)
        return settings
    }

    /// A fetch time that makes values too old for a read at `now`.
    private func stale(_ now: ContinuousClock.Instant) -> ContinuousClock.Instant { now - lifetime - .seconds(1) }
}
