import Foundation

/// Command (RPC): read settings. Publish to `cyclorama.commands` / `settings.request` with the AMQP
/// properties `reply_to` (your queue) and `correlation_id`; the settings-service answers with a
/// ``SettingsReply`` on that queue.
public struct SettingsRequest: CycloramaMessage {
    public static let messageType = MessageType.settingsRequest
    public private(set) var type = MessageType.settingsRequest
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    /// The keys wanted; `nil` means all. Unknown keys are left out of the reply.
    public var keys: [String]?
    /// New values to store first (key → value), all or nothing: the reply carries `errors` and
    /// nothing is written when any is refused. A secret's value should be sealed by the sender
    /// (``SettingsCatalog``'s rules apply to the opened value); a masked value leaves it unchanged.
    public var updates: [String: String]?
    /// With `updates`: store them only if that happens before this time; a request handled later
    /// writes nothing and its reply says so. The requester sets it to when it stops waiting (and
    /// tells its own caller the change failed), so a change it reported as failed is never made
    /// later behind its back. Optional (added in schema version 1): absent means no limit.
    public var notAfter: Date?
    /// With `updates`: the proof that the one service allowed to change settings (the gateway)
    /// sent this change — lowercase hex of an HMAC-SHA256 with the settings authority key over the
    /// message id, `notAfter` and the updates (`SettingsAuthority` in ServiceSupport; docs/messages.md).
    /// The settings-service refuses and dead-letters a change without a valid one. Optional (added
    /// in schema version 1); a request that only reads needs none.
    public var authorization: String?

    /// `correlationId` defaults to the messageId.
    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(), keys: [String]? = nil,
        updates: [String: String]? = nil, notAfter: Date? = nil, authorization: String? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? messageId.uuidString
        self.occurredAt = occurredAt
        self.keys = keys
        self.updates = updates
        self.notAfter = notAfter
        self.authorization = authorization
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        for (index, key) in (keys ?? []).enumerated() {
            try Check.nonEmpty(key, "keys[\(index)]", max: 100)
        }
        for (key, value) in (updates ?? [:]).sorted(by: { $0.key < $1.key }) {
            try Check.nonEmpty(key, "updates", max: 100)
            if value.count > 4000 { throw ValidationError(field: "updates.\(key)", reason: "must be at most 4000 characters") }
        }
        if let authorization, authorization.isEmpty || authorization.count > 200 {
            throw ValidationError(field: "authorization", reason: "must be 1 to 200 characters (64 hex digits)")
        }
    }
}

/// Reply (RPC): the settings asked for, secrets masked. Sent through the default exchange to the
/// request's `reply_to` queue, with the request's `correlation_id`.
public struct SettingsReply: CycloramaMessage {
    public static let messageType = MessageType.settingsReply
    public private(set) var type = MessageType.settingsReply
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    /// The request's `messageId`.
    public var requestMessageId: UUID
    /// key → value, secrets masked with ``SecretSettings/mask(_:)``.
    public var settings: [String: String]
    /// When the request's `updates` were refused: key → reason (nothing was written).
    public var errors: [String: String]?

    public init(
        messageId: UUID = UUID(), correlationId: String, occurredAt: Date = Date(),
        requestMessageId: UUID, settings: [String: String], errors: [String: String]? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId
        self.occurredAt = occurredAt
        self.requestMessageId = requestMessageId
        self.settings = settings
        self.errors = errors
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try SecretSettings.checkMasked(settings)
    }
}

/// Event: settings changed (secrets masked). Services holding settings reload them.
public struct SettingsChanged: CycloramaMessage {
    public static let messageType = MessageType.settingsChanged
    public private(set) var type = MessageType.settingsChanged
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    /// The keys whose values changed.
    public var changedKeys: [String]
    /// All settings after the change, secrets masked.
    public var settings: [String: String]

    /// `correlationId` defaults to the messageId (or the change request's id when there is one).
    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        changedKeys: [String], settings: [String: String]
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? messageId.uuidString
        self.occurredAt = occurredAt
        self.changedKeys = changedKeys
        self.settings = settings
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        if changedKeys.isEmpty { throw ValidationError(field: "changedKeys", reason: "must not be empty") }
        for (index, key) in changedKeys.enumerated() {
            try Check.nonEmpty(key, "changedKeys[\(index)]", max: 100)
        }
        try SecretSettings.checkMasked(settings)
    }
}

/// Settings whose values never leave the settings-service in clear text.
public enum SecretSettings {
    /// The RunPod API key.
    public static let runpodApiKey = "runpodApiKey"
    /// The key HTTP notifications are signed with (docs/notifications.md).
    public static let notifySecret = "aiImageNotifySecret"
    /// Every secret key.
    public static let keys: Set<String> = [runpodApiKey, notifySecret]

    public static func isSecret(_ key: String) -> Bool { keys.contains(key) }

    /// What a masked value of `key` starts with: `rpa_…` for the RunPod key (as RunPod's keys
    /// begin), `whsec_…` for the notification signing secret.
    public static func maskPrefix(for key: String) -> String {
        key == notifySecret ? "whsec_…" : "rpa_…"
    }

    /// The prefix for `key` and the last 4 characters; `""` when unset. Short values show no tail
    /// at all, so a mask never reveals most of a secret.
    public static func mask(_ value: String, key: String = runpodApiKey) -> String {
        if value.isEmpty { return "" }
        return value.count >= 12 ? maskPrefix(for: key) + value.suffix(4) : maskPrefix(for: key)
    }

    /// `settings` with every secret value masked.
    public static func masking(_ settings: [String: String]) -> [String: String] {
        var masked = settings
        for key in keys where masked[key] != nil { masked[key] = mask(masked[key]!, key: key) }
        return masked
    }

    /// Whether `value` is what ``mask(_:key:)`` produces for `key` (and so not a leaked secret).
    public static func isMasked(_ value: String, key: String = runpodApiKey) -> Bool {
        let prefix = maskPrefix(for: key)
        return value.isEmpty || (value.hasPrefix(prefix) && value.count <= prefix.count + 4)
    }

    static func checkMasked(_ settings: [String: String]) throws(ValidationError) {
        for key in keys.sorted() {
            if let value = settings[key], !isMasked(value, key: key) {
                throw ValidationError(field: "settings.\(key)", reason: "is a secret and must be masked (\(maskPrefix(for: key)) and the last 4)")
            }
        }
    }
}
