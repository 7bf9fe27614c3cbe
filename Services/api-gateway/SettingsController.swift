import Foundation
import Hummingbird
import ServiceSupport
import Shared

/// `GET` / `PUT /api/ai-image/settings`, through the settings-service (which validates, encrypts and
/// broadcasts). The RunPod key is write-only: it is sealed here before it goes onto the broker and
/// only ever comes back masked.
struct SettingsController: Sendable {
    let settings: SettingsClient
    let secrets: SecretBox

    func addRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("/ai-image/settings", use: read)
        group.put("/ai-image/settings", use: write)
    }

    @Sendable func read(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let reply = try await ask { try await settings.request(keys: nil) }
        return GenerationController.response(.ok, try GenerationController.json(SettingsResponse(settings: reply.settings)))
    }

    @Sendable func write(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        var updates = try Self.parse(body)
        for key in updates.keys where SecretSettings.isSecret(key) {
            let value = updates[key]!
            // Sealed before it leaves this process; the masked value read back means "unchanged".
            if !value.isEmpty, !SecretSettings.isMasked(value) { updates[key] = try secrets.seal(value, for: key) }
        }
        let reply = try await ask { try await settings.update(updates) }
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
            case .bool(let flag): updates[key] = flag ? "true" : "false"
            case .int(let number): updates[key] = String(number)
            case .double(let number): updates[key] = String(number)
            case .null, .array, .object:
                throw APIError.badRequest("\(key) must be a string, number or boolean; got \(raw.typeName)", code: "invalid_field")
            }
        }
        return updates
    }
}

/// `{success, message?, settings}`: the seed's shape, secrets masked.
struct SettingsResponse: Encodable {
    var success = true
    var message: String?
    var settings: [String: String]
}
