import RunPod
import AsyncHTTPClient
import ServiceCore
import Foundation
import Logging
import NIOCore
import OutboundHTTP
import ServiceLifecycle

/// Delivers a job's status body to its `webhook` when the job reaches a terminal state, as RunPod does:
/// up to 3 attempts, `retryInterval` apart, until the receiver answers 2xx. Deliveries run concurrently;
/// on shutdown the pending ones are abandoned (receivers must poll `/status` as the fallback anyway).
final class WebhookNotifier: Service, Sendable {
    struct Delivery: Sendable {
        var url: String
        var body: JobStatusBody
        var inlineImage: ResultKey?
    }

    static let attempts = 3
    let client: HTTPClient
    let results: ResultFiles
    let retryInterval: Duration
    /// Whether and where a webhook URL may be called now (`LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS`'s
    /// rule), asked again before every attempt: a name checked at submission may point elsewhere by
    /// the end. A name that passes is called at the address that was checked.
    let clearance: @Sendable (URL) async -> OutboundClearance
    let logger: Logger
    private let deliveries: AsyncStream<Delivery>
    private let continuation: AsyncStream<Delivery>.Continuation

    init(
        client: HTTPClient, results: ResultFiles, retryInterval: Duration,
        clearance: @escaping @Sendable (URL) async -> OutboundClearance = { _ in .asNamed }, logger: Logger
    ) {
        self.client = client
        self.results = results
        self.retryInterval = retryInterval
        self.clearance = clearance
        self.logger = logger
        (deliveries, continuation) = AsyncStream<Delivery>.makeStream()
    }

    /// Queues a delivery; never blocks (called from inside the job store).
    func enqueue(_ body: JobStatusBody, inlineImage: ResultKey?) {
        guard let url = body.webhook else { return }
        continuation.yield(Delivery(url: url, body: body, inlineImage: inlineImage))
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await delivery in deliveries.cancelOnGracefulShutdown() {
                group.addTask { await self.deliver(delivery) }
            }
            group.cancelAll()
        }
    }

    private func deliver(_ delivery: Delivery) async {
        var body = delivery.body
        if let key = delivery.inlineImage, let bytes = await results.read(key) {
            body.output?.imageBase64 = Data(bytes).base64EncodedString()
        }
        guard let payload = try? JSONEncoder().encode(body) else { return }
        for attempt in 1...Self.attempts {
            var clearance = OutboundClearance.asNamed
            if let url = URL(string: delivery.url) { clearance = await self.clearance(url) }
            if let refused = clearance.refusal {
                logger.warning("webhook not sent", metadata: [
                    "job": "\(body.id)", "attempt": "\(attempt)", "reason": "\(refused.reason)", "to": "\(Self.origin(of: delivery.url))",
                ])
                guard refused.isTransient, attempt < Self.attempts else { return }
                do { try await Task.sleep(for: retryInterval) } catch { return }
                continue
            }
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "cyclorama-local-engine")
            request.body = .bytes(ByteBuffer(bytes: payload))
            var outcome: String
            do {
                let status = try await client.connecting(as: clearance) { client in
                    let response = try await client.execute(request, timeout: .seconds(10))
                    _ = try? await response.body.collect(upTo: 64 << 10)
                    return response.status.code
                }
                if (200..<300).contains(status) {
                    logger.debug("webhook delivered", metadata: ["job": "\(body.id)", "attempt": "\(attempt)"])
                    return
                }
                outcome = "HTTP \(status)"
            } catch {
                outcome = ImageSource.describe(error)
            }
            logger.warning(
                "webhook not accepted",
                metadata: ["job": "\(body.id)", "attempt": "\(attempt)", "outcome": "\(outcome)", "to": "\(Self.origin(of: delivery.url))"])
            guard attempt < Self.attempts else { return }
            do { try await Task.sleep(for: retryInterval) } catch { return }
        }
    }

    /// Only the scheme, host and port of a webhook URL: its path or query may carry a secret (Cyclorama's
    /// own webhook URLs end with a per-job token), so the rest is never logged.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else {
            return "(unreadable URL)"
        }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")/…"
    }
}
