import Foundation

/// Event: a backend called a job's webhook and the gateway found its token right.
///
/// A hint, not a result: the body of a webhook call is not signed, so the dispatcher following the
/// job confirms with the backend's `/status` before it acts, and ignores the hint otherwise. Every
/// dispatcher instance hears it; only the one following the job reacts. Losing one is harmless:
/// polling takes over when no webhook arrives in time.
public struct BackendWebhookReceived: CycloramaMessage {
    public static let messageType = MessageType.backendWebhook
    public private(set) var type = MessageType.backendWebhook
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    /// The backend job `id` the call's body names (unverified), when it names one.
    public var backendJobId: String?
    /// The `status` the call's body claims (unverified), when it claims one.
    public var backendStatus: String?

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, backendJobId: String?, backendStatus: String?
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.backendJobId = backendJobId
        self.backendStatus = backendStatus
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try Check.optional(backendJobId, "backendJobId", max: 255)
        try Check.optional(backendStatus, "backendStatus", max: 40)
    }
}
