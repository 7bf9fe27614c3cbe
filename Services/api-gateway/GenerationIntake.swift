import Crypto
import Database
import HTTPTypes
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceCore
import ServiceSupport
import Shared
import Synchronization
import Timing

/// How the gateway accepts generation jobs — one policy for `generate`, `batch` and `variations`
/// (docs/reliability.md):
///
/// 1. The jobs are written to the ledger first (QUEUED, with their deadline). **That commit is the
///    acceptance**: from then on the job runs, whatever fails, so the answer is 202 even when the
///    broker does not take the requests right now.
/// 2. Their requests are published; whatever the broker does not confirm, the reaper's outbox
///    publishes later (a request that did reach the broker is then simply seen twice, which every
///    consumer tolerates by jobId). The answer waits for the publishing at most ``publishBudget``
///    (then it goes on in the background): a broker that is away delays the answer by a few
///    seconds, not by the connection's whole publish timeout (30 s, when many HTTP clients give up
///    and retry).
///
/// Before any of it, ``admit()`` refuses what must not start: generation switched off
/// (`aiImageEnabled`, 409) or this month's RunPod budget spent (402).
///
/// There is no 503 after the commit, so a client never retries a job that runs anyway. With an
/// `Idempotency-Key` the ids of what a request creates are derived from the key (``ids(for:)``), so
/// the same request again — even after the first one's process died half-way — finds what the
/// first created instead of creating it twice.
struct GenerationIntake: Sendable {
    let broker: AMQPConnection
    let hub: JobEventHub
    let settings: SettingsClient
    let ledger: JobLedger
    let logger: Logger
    /// How long a request's answer (202) waits for its jobs' requests to be published; the
    /// publishing goes on after it.
    static let publishBudget: Duration = .seconds(5)
    /// `NOTIFY_ALLOWED_HOSTS`: where notifications may go.
    var notifyHosts = HostAllowList(["*"])
    /// Whether the notification signing secret (`aiImageNotifySecret`) is set.
    var notifySecretIsSet: @Sendable () async throws -> Bool = { false }

    /// Refuses a new job when generation is switched off (`aiImageEnabled` false: 409
    /// `generation_disabled`) or, on RunPod, when this month's spend reached `aiImageMonthlyBudget`
    /// (402 `budget_exhausted`; the local engine is free and never refused).
    func admit() async throws {
        let current: CycloramaSettings
        do {
            current = try await settings.typed()
        } catch {
            throw APIError.unavailable("the settings-service did not answer and no settings are known yet; nothing was started, try again")
        }
        if !current.enabled {
            throw APIError(
                .conflict, code: "generation_disabled",
                message: "AI image generation is switched off (setting aiImageEnabled); switch it on to start jobs")
        }
        let budget = current.monthlyBudget
        guard current.backend == .runpod, budget > 0 else { return }
        let spent = try await ledger.spendThisMonth()
        guard spent < budget else {
            throw APIError(
                HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"), code: "budget_exhausted",
                message: String(format: "this month's RunPod spend is $%.2f, which reaches the monthly budget of $%.2f (setting aiImageMonthlyBudget); raise it or switch aiImageBackend to local", spent, budget))
        }
    }

    /// Where the jobs of one request POST their terminal event (docs/notifications.md): the request's
    /// `notifyUrl` (`""` or null: nowhere), else the `aiImageNotifyUrl` setting; nil for nowhere.
    ///
    /// Refused with 400 `invalid_field` when it is not an http(s) URL; `notify_url_refused` when its
    /// host may never be called — not in `NOTIFY_ALLOWED_HOSTS`, or (allowed by name or `*`) an
    /// address that is not public or a local-only name; a name is resolved and checked again before
    /// every attempt — 422 for the request's own URL, 409 for the setting's; and 409
    /// `notify_secret_missing` while no signing secret is set, since an unsigned notification could
    /// not be told from a forged one.
    func notifyURL(_ requested: JSONValue?) async throws -> String? {
        let url: String
        let field: String
        switch requested {
        case nil:
            let current: CycloramaSettings
            do { current = try await settings.typed() } catch {
                throw APIError.unavailable("the settings-service did not answer and no settings are known yet; nothing was started, try again")
            }
            guard let fallback = current.notifyURL else { return nil }
            (url, field) = (fallback, "the setting aiImageNotifyUrl")
        case .null?, .string("")?:
            return nil
        case .string(let text)?:
            guard case .success = SettingsCatalog.normalize("aiImageNotifyUrl", text) else {
                throw APIError.badRequest(
                    "notifyUrl must be an http(s) URL of at most 2000 characters (or empty); got \"\(text.prefix(64))\"", code: "invalid_field")
            }
            (url, field) = (text, "notifyUrl")
        case let other?:
            throw APIError.badRequest("notifyUrl must be a string; got \(other.jsonText.prefix(64))", code: "invalid_field")
        }
        if let refusal = Self.notifyRefusal(url, hosts: notifyHosts) {
            // The request's own address: well-formed but refused (422); the setting's: a conflict
            // with what is stored (409), which the request cannot mend.
            throw APIError(
                requested == nil ? .conflict : .unprocessableContent, code: "notify_url_refused",
                message: "\(field) is refused: \(refusal)")
        }
        guard try await notifySecretIsSet() else {
            throw APIError(
                .conflict, code: "notify_secret_missing",
                message: "notifications are signed, and no signing secret is set: set aiImageNotifySecret in the settings first")
        }
        return url
    }

    /// Why notifications may never go to `url`, judged without resolving a name (that happens before
    /// every attempt): nil when they may.
    static func notifyRefusal(_ url: String, hosts: HostAllowList) -> String? {
        guard let parsed = URL(string: url), let host = parsed.host, !host.isEmpty else { return "it is not a URL" }
        return hosts.refusalWithoutResolving(host: host, port: parsed.connectionPort, variable: "NOTIFY_ALLOWED_HOSTS")?.reason
    }

    /// Publishes the requests of jobs already committed to the ledger, in order, and stops at the first
    /// the broker does not take within the connection's publish timeout (the outbox takes the rest).
    /// The caller waits for that at most ``publishBudget``: then it answers, and the publishing goes
    /// on in the background, so a broker that is failing over gets the requests as soon as it is
    /// back rather than at the outbox's next look a minute later.
    func publish(_ requests: [RequestGeneration]) async {
        _ = await awaitResult(of: Task { await publishInOrder(requests) }, atMost: Self.publishBudget)
    }

    /// ``publish(_:)``'s work: in order, each with the connection's publish timeout, stopping at the
    /// first the broker does not take. Returns how many were published.
    @discardableResult
    private func publishInOrder(_ requests: [RequestGeneration]) async -> Int {
        var published = 0
        for request in requests {
            do {
                try await broker.publish(request)
                published += 1
            } catch {
                logger.warning(
                    "the broker did not take a generation request; the outbox publishes it later",
                    metadata: ["jobId": "\(request.jobId)", "published": "\(published)", "of": "\(requests.count)", "error": "\(error)"])
                break
            }
        }
        for request in requests { hub.notify(request.jobId) }
        return published
    }

    /// Ids for what one request creates: random without an `Idempotency-Key`, derived from the key
    /// (with the caller's scope, the request's path and the key's claim) with one.
    static func ids(for request: Request) -> IdempotentIDs {
        typealias Middleware = IdempotencyMiddleware<ServiceRequestContext>
        return IdempotentIDs(key: request.headers[Middleware.header].map { key in
            let claim = request.headers[Middleware.claimHeader].map { "\n\($0)" } ?? ""
            return "\(Middleware.scope(of: request))\n\(request.uri.path)\n\(key)\(claim)"
        })
    }
}

/// Ids that are the same each time a request with the same `Idempotency-Key` is handled, and
/// random without one.
struct IdempotentIDs: Sendable {
    /// The request's path and key; nil without a key.
    let key: String?

    /// The id of the thing called `name` (e.g. "job", "batch", "job:<mediaId>").
    func id(_ name: String) -> UUID {
        guard let key else { return UUID() }
        return Self.nameBased("\(key)\n\(name)")
    }

    /// A UUID from the SHA-256 of `name`: version 8 (RFC 9562, custom), variant 10.
    static func nameBased(_ name: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
