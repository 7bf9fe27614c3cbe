import Foundation
import Hummingbird
import RunPod
import ServiceCore
import ServiceSupport
import Shared

/// `GET` / `PUT /api/ai-image/settings`, through the settings-service (which validates, encrypts and
/// broadcasts). The RunPod key is write-only: it is sealed here before it goes onto the broker and
/// only ever comes back masked.
///
/// A change that leaves the backend on `runpod` with a new backend or key is checked with RunPod's
/// `/health` first and refused when RunPod would refuse the jobs; `POST
/// /api/ai-image/settings/test-connection` runs the same check and reports it.
struct SettingsController: Sendable {
    let settings: SettingsClient
    let secrets: SecretBox
    let runpod: RunPodProbe
    /// The stored RunPod key, opened (nil when none is set).
    let storedKey: @Sendable () async throws -> String?
    /// `NOTIFY_ALLOWED_HOSTS`: where a default notification address may point.
    var notifyHosts = HostAllowList(["*"])
    /// Whether the notification signing secret is stored.
    var notifySecretIsSet: @Sendable () async throws -> Bool = { false }

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.get("/ai-image/settings", use: read)
        group.put("/ai-image/settings", use: write)
        group.post("/ai-image/settings/test-connection", use: testConnection)
    }

    /// Checks the RunPod endpoint with the key in the body (`runpodApiKey`, not stored) or the stored
    /// one, and reports the verdict: 200 `{ok, backend, endpoint, code?, message, health?}`.
    @Sendable func testConnection(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        var typed: String?
        if !body.isEmpty {
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
                throw APIError.badRequest("the body must be a JSON object, e.g. {\"runpodApiKey\": \"rpa_…\"}, or empty", code: "invalid_body")
            }
            switch object[SecretSettings.runpodApiKey] {
            case nil, .null: break
            case .string(let key):
                // Checked as the setting is (a masked value stands for the stored key).
                if !SecretSettings.isMasked(key), case .failure(let refusal) = SettingsCatalog.normalize(SecretSettings.runpodApiKey, key) {
                    throw APIError.badRequest("runpodApiKey \(refusal.reason)", code: "invalid_field")
                }
                typed = key
            default: throw APIError.badRequest("runpodApiKey must be a string", code: "invalid_field")
            }
        }
        let readiness = await runpod.check(key: try await key(typed))
        var report = ConnectionReport(ok: readiness.isReady, endpoint: runpod.endpoint, message: readiness.summary)
        switch readiness {
        case .ready(let health): report.health = health
        case .unusable(let code, _): report.code = code
        }
        return GenerationController.response(.ok, try GenerationController.json(report))
    }

    /// The key a check uses: `typed` when it is a new value (empty: none), else the stored one.
    private func key(_ typed: String?) async throws -> String? {
        if let typed, typed.isEmpty || !SecretSettings.isMasked(typed) { return typed }
        do { return try await storedKey() } catch {
            throw APIError.unavailable("the stored RunPod key could not be read: \(error)")
        }
    }

    /// Refuses `updates` when they leave the backend on `runpod` with a new backend or key and RunPod
    /// would refuse the jobs: before the change, so no paid job is sent to a configuration that fails.
    private func checkRunPod(_ updates: [String: String]) async throws {
        let backendUpdate = updates["aiImageBackend"].flatMap { try? SettingsCatalog.normalize("aiImageBackend", $0).get() }
        let keyUpdate = updates[SecretSettings.runpodApiKey].flatMap { raw -> String? in
            if !raw.isEmpty && SecretSettings.isMasked(raw) { return nil }
            return try? SettingsCatalog.normalize(SecretSettings.runpodApiKey, raw).get()
        }
        guard backendUpdate != nil || keyUpdate != nil else { return }
        let current = CycloramaSettings(try await ask { try await settings.request(keys: ["aiImageBackend"]) }.settings).backend.rawValue
        let runpodName = GenerationBackend.runpod.rawValue
        guard (backendUpdate ?? current) == runpodName, current != runpodName || keyUpdate != nil else { return }
        let readiness = await runpod.check(key: try await key(keyUpdate))
        guard case .unusable(let code, let message) = readiness else { return }
        let refusal = "aiImageBackend stays \(current), nothing was changed: \(message)"
        switch code {
        case "runpod_key_missing":
            // Nothing in the request is malformed: the settings it would leave (RunPod, no key) conflict.
            throw APIError(.conflict, code: code, message: refusal)
        case "runpod_key_refused", "runpod_endpoint_not_found":
            throw APIError.badRequest(refusal, code: code)
        default:
            throw APIError(.badGateway, code: code, message: refusal)
        }
    }

    /// Refuses `updates` that would leave a default notification address (`aiImageNotifyUrl`) no job
    /// could use — a host notifications may never go to (409 `notify_url_refused`), or no signing
    /// secret (409 `notify_secret_missing`) — so the admin hears it here, not from every job.
    /// Malformed values are left to the settings-service's refusal, which names the key.
    private func checkNotifications(_ updates: [String: String]) async throws {
        let urlUpdate = updates["aiImageNotifyUrl"]
        let secretUpdate = updates[SecretSettings.notifySecret]
        guard urlUpdate != nil || secretUpdate != nil else { return }
        let url: String
        if let urlUpdate {
            guard case .success(let valid) = SettingsCatalog.normalize("aiImageNotifyUrl", urlUpdate) else { return }
            url = valid
        } else {
            url = CycloramaSettings(try await ask { try await settings.request(keys: ["aiImageNotifyUrl"]) }.settings).notifyURL ?? ""
        }
        guard !url.isEmpty else { return }
        if let refusal = GenerationIntake.notifyRefusal(url, hosts: notifyHosts) {
            throw APIError(.conflict, code: "notify_url_refused", message: "aiImageNotifyUrl is refused, nothing was changed: \(refusal)")
        }
        let secretIsSet: Bool
        if let secretUpdate, secretUpdate.isEmpty || !SecretSettings.isMasked(secretUpdate, key: SecretSettings.notifySecret) {
            secretIsSet = !secretUpdate.isEmpty
        } else {
            secretIsSet = try await notifySecretIsSet()
        }
        guard secretIsSet else {
            throw APIError(
                .conflict, code: "notify_secret_missing",
                message: "notifications to aiImageNotifyUrl are signed: set aiImageNotifySecret (before, or in the same request); nothing was changed")
        }
    }

    @Sendable func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let reply = try await ask { try await settings.request(keys: nil) }
        return GenerationController.response(.ok, try GenerationController.json(SettingsResponse(settings: reply.settings)))
    }

    @Sendable func write(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        var updates = try Self.parse(body)
        try await checkRunPod(updates)
        try await checkNotifications(updates)
        for key in updates.keys where SecretSettings.isSecret(key) {
            let value = updates[key]!
            // Sealed before it leaves this process; the masked value read back means "unchanged".
            if !value.isEmpty, !SecretSettings.isMasked(value, key: key) { updates[key] = try secrets.seal(value, for: key) }
        }
        let reply = try await ask { try await settings.update(updates) }
        if updates["authorization"] == nil, let refusal = reply.errors?["authorization"] {
            // Not the admin's mistake: this gateway and the settings-service hold different keys.
            throw APIError(
                .internalServerError, code: "settings_authority_mismatch",
                message: "the settings-service refused this gateway's authorization (is SETTINGS_AUTHORITY_KEY the same for both?): \(refusal); nothing was changed")
        }
        if let errors = reply.errors, let first = errors.keys.sorted().first {
            let all = errors.keys.sorted().map { "\($0) \(errors[$0]!)" }.joined(separator: "; ")
            throw APIError.badRequest(errors.count == 1 ? "\(first) \(errors[first]!)" : all, code: "invalid_field")
        }
        return GenerationController.response(
            .ok, try GenerationController.json(SettingsResponse(message: "Settings updated", settings: reply.settings)))
    }

    private func ask(_ call: () async throws -> SettingsReply) async throws -> SettingsReply {
        do {
            return try await call()
        } catch let error where Outage.isOutage(error) {
            // An update that gets no answer in time is never applied later (SettingsRequest.notAfter).
            throw APIError.unavailable("the settings-service did not answer; nothing was changed, try again (\(error))")
        } catch let error as SettingsClientError {
            throw APIError.unavailable("the settings-service did not answer: \(error.message)")
        }
    }

    /// The seed's body: a flat JSON object of key → value; numbers and booleans are accepted as such.
    static func parse(_ body: [UInt8]) throws -> [String: String] {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), case .object(let object) = value else {
            throw APIError.badRequest("the body must be a JSON object of setting → value", code: "invalid_body")
        }
        guard !object.isEmpty else { throw APIError.badRequest("the body names no setting", code: "invalid_body") }
        var updates: [String: String] = [:]
        for (key, raw) in object {
            switch raw {
            case .string(let text): updates[key] = text
            case _ where SettingsCatalog.takesOnlyText(key) && raw != .null:
                throw APIError.badRequest("\(key) must be a string; got \(raw.typeName)", code: "invalid_field")
            case .bool(let flag): updates[key] = flag ? "true" : "false"
            case .int(let number): updates[key] = String(number)
            case .double(let number): updates[key] = decimalText(number)
            case .null, .array, .object:
                throw APIError.badRequest("\(key) must be a string, number or boolean; got \(raw.typeName)", code: "invalid_field")
            }
        }
        return updates
    }

    /// A JSON number as a setting is written: plain decimal digits, never an exponent
    /// (`0.00001`, not Swift's `1e-05`), so a schema-valid number is never refused for its spelling.
    static func decimalText(_ number: Double) -> String {
        let text = String(number)
        guard number.isFinite, let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }),
              let exponent = Int(text[text.index(after: e)...].drop { $0 == "+" }) else { return text }
        var mantissa = Substring(text[..<e])
        let sign = mantissa.first == "-" ? "-" : ""
        if !sign.isEmpty { mantissa = mantissa.dropFirst() }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let digits = parts.joined()
        let point = parts[0].count + exponent
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) }
        return sign + digits.prefix(point) + "." + digits.dropFirst(point)
    }
}

/// The answer of `POST /api/ai-image/settings/test-connection`.
struct ConnectionReport: Encodable {
    var ok: Bool
    var backend = GenerationBackend.runpod.rawValue
    var endpoint: String
    var code: String?
    var message: String
    var health: RunPodHealth?
}

/// `{success, message?, settings}`: the seed's shape, secrets masked.
struct SettingsResponse: Encodable {
    var success = true
    var message: String?
    var settings: [String: String]
}
