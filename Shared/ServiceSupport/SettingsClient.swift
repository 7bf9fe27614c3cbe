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
    private let cache = Mutex<(settings: [String: String], fetchedAt: ContinuousClock.Instant)?>(nil)
    /// Counts the `settings.changed` broadcasts taken: a reply asked for before the last one may
    /// hold the values from before the change, so it is not kept as fresh.
    private let generation = Mutex(0)
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
        let cached = cache.withLock { $0 }
        if let cached, ContinuousClock.now - cached.fetchedAt < cacheLifetime {
            return cached.settings
        }
        do {
            let asked = generation.withLock { $0 }
            let fresh = try await request(keys: nil).settings
            // A change broadcast while the request was out: these values may be older than it, so
            // they serve this read and the next one asks again.
            let current = generation.withLock { $0 } == asked
            cache.withLock { $0 = (fresh, current ? ContinuousClock.now : staleInstant) }
            return fresh
        } catch let error where Outage.isOutage(error) {
            guard let cached else { throw error }
            logger.notice("settings-service not answering; using the last known settings", metadata: ["error": "\(error)"])
            // Ask again in 10 s, not on every call: each attempt waits for the reply timeout.
            cache.withLock { $0 = (cached.settings, ContinuousClock.now - cacheLifetime + .seconds(10)) }
            return cached.settings
        }
    }

    /// ``settings()`` as their types (``CycloramaSettings``).
    public func typed() async throws -> CycloramaSettings {
        CycloramaSettings(try await settings())
    }

    /// A fetch time that makes a cached answer too old for the next read.
    private var staleInstant: ContinuousClock.Instant { ContinuousClock.now - cacheLifetime - .seconds(1) }

    /// Makes the next read ask the settings-service, keeping the values known so far as the
    /// fallback while it does not answer (on `settings.changed`).
    func markStale() {
        generation.withLock { $0 += 1 }
        cache.withLock { cached in
            guard let known = cached else { return }
            cached = (known.settings, staleInstant)
        }
    }

    /// Stores new values through the settings-service (all or nothing); the reply's `errors` say what
    /// was refused. Secrets should be sealed before (``SecretBox``). Needs the ``SettingsAuthority``:
    /// the settings-service refuses a change not signed with it.
    ///
    /// The request says it must not be applied after ``timeout`` from now; this waits a little longer
    /// for the reply, so an update that throws here (no answer) is never applied later.
    public func update(_ values: [String: String]) async throws -> SettingsReply {
        let reply = try await request(keys: nil, updates: values, notAfter: Date().addingTimeInterval(timeout.timeInterval))
        if reply.errors?.isEmpty ?? true { cache.withLock { $0 = (reply.settings, ContinuousClock.now) } }
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
