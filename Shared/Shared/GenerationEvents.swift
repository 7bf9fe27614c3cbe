import Foundation

/// Event: the dispatcher handed the job to its backend, which gave it `backendJobId`.
public struct GenerationSubmitted: CycloramaMessage {
    public static let messageType = MessageType.generationSubmitted
    public private(set) var type = MessageType.generationSubmitted
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    public var mediaId: UUID
    public var backend: GenerationBackend
    /// The RunPod (or local engine) job id.
    public var backendJobId: String
    /// When the dispatcher gives up on the job if the backend has not finished it (it then cancels
    /// it there and ends it `timed_out`). Optional (added in schema version 1).
    public var deadline: Date?

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, backend: GenerationBackend, backendJobId: String, deadline: Date? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.backend = backend
        self.backendJobId = backendJobId
        self.deadline = deadline
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try Check.nonEmpty(backendJobId, "backendJobId", max: 255)
    }
}

/// Event: the job moved on (for progress displays; the job's outcome never depends on it).
public struct GenerationProgressed: CycloramaMessage {
    public static let messageType = MessageType.generationProgressed
    public private(set) var type = MessageType.generationProgressed
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    public var mediaId: UUID
    public var stage: GenerationStage
    /// Free text, e.g. the backend's progress (`"4/10"`).
    public var detail: String?
    /// On `prompting`: the request's `replyTo`, so that whoever has to end the job later (the
    /// gateway's reaper, past the job's deadline) can tell the requester too. Optional (added in
    /// schema version 1).
    public var replyTo: ReplyAddress?

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, stage: GenerationStage, detail: String? = nil, replyTo: ReplyAddress? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.stage = stage
        self.detail = detail
        self.replyTo = replyTo
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        if let detail, detail.count > 1000 {
            throw ValidationError(field: "detail", reason: "must be at most 1000 characters; got \(detail.count)")
        }
        try replyTo?.validate(at: "replyTo")
    }
}

/// Event: the backend produced the job's result, which is not in the media library yet. Published
/// by the dispatcher on `cyclorama.events` / `generation.rendered`; the result-ingestor downloads
/// `outputUrl`, checks and stores it, and then publishes ``GenerationCompleted``.
public struct GenerationRendered: CycloramaMessage {
    public static let messageType = MessageType.generationRendered
    public private(set) var type = MessageType.generationRendered
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    public var mediaId: UUID
    public var kind: GenerationKind
    public var batchId: UUID?
    public var variationName: String?
    public var backend: GenerationBackend
    public var backendJobId: String
    /// Where the backend left the image (RunPod URLs expire after 7 days).
    public var outputUrl: String
    /// USD, when the backend reports it.
    public var cost: Double?
    public var executionTimeMs: Int?
    /// What was asked for; the ingestor upscales when the backend did not.
    public var options: ResolvedGenerationOptions
    /// The request's extra address, carried so the ingestor can publish the terminal event there.
    public var replyTo: ReplyAddress?
    /// The file the job was made from, as ``DispatchGeneration`` named it (absent from dispatchers
    /// that predate it: the ingestor then uses the media's current file).
    public var source: JobSource?

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, kind: GenerationKind = .single, batchId: UUID? = nil,
        variationName: String? = nil, backend: GenerationBackend, backendJobId: String, outputUrl: String,
        cost: Double? = nil, executionTimeMs: Int? = nil, options: ResolvedGenerationOptions,
        replyTo: ReplyAddress? = nil, source: JobSource? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.kind = kind
        self.batchId = batchId
        self.variationName = variationName
        self.backend = backend
        self.backendJobId = backendJobId
        self.outputUrl = outputUrl
        self.cost = cost
        self.executionTimeMs = executionTimeMs
        self.options = options
        self.replyTo = replyTo
        self.source = source
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try GenerationKind.validate(kind, batchId: batchId, variationName: variationName)
        try Check.nonEmpty(backendJobId, "backendJobId", max: 255)
        try Check.url(outputUrl, "outputUrl")
        if let cost, !(cost >= 0 && cost.isFinite) {
            throw ValidationError(field: "cost", reason: "must be a non-negative number of USD; got \(cost)")
        }
        if let executionTimeMs { try Check.atLeast(executionTimeMs, 0, "executionTimeMs") }
        try options.validate()
        try replyTo?.validate(at: "replyTo")
        try source?.validate(at: "source")
    }
}

/// Event, terminal: the job's result is in the media library — the media now shows it (version
/// `mediaVersionId`), or for an A/B variation, it is kept as candidate `mediaVersionId`. Published
/// by the result-ingestor on `cyclorama.events` / `generation.completed` and to the request's
/// `replyTo`, with everything ``GenerationRendered`` said about the result.
public struct GenerationCompleted: CycloramaMessage {
    public static let messageType = MessageType.generationCompleted
    public private(set) var type = MessageType.generationCompleted
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    public var mediaId: UUID
    public var kind: GenerationKind
    public var batchId: UUID?
    public var variationName: String?
    public var backend: GenerationBackend
    public var backendJobId: String
    /// Where the backend left the image.
    public var outputUrl: String
    /// USD, when the backend reports it.
    public var cost: Double?
    public var executionTimeMs: Int?
    /// What was asked for.
    public var options: ResolvedGenerationOptions
    public var replyTo: ReplyAddress?
    /// The media version that now holds the result (for a variation: the candidate's id).
    public var mediaVersionId: UUID

    /// The terminal event of the job `rendered` belongs to, once its result is version `mediaVersionId`.
    public init(messageId: UUID = UUID(), occurredAt: Date = Date(), applying rendered: GenerationRendered, mediaVersionId: UUID) {
        self.messageId = messageId
        self.correlationId = rendered.correlationId
        self.occurredAt = occurredAt
        self.jobId = rendered.jobId
        self.mediaId = rendered.mediaId
        self.kind = rendered.kind
        self.batchId = rendered.batchId
        self.variationName = rendered.variationName
        self.backend = rendered.backend
        self.backendJobId = rendered.backendJobId
        self.outputUrl = rendered.outputUrl
        self.cost = rendered.cost
        self.executionTimeMs = rendered.executionTimeMs
        self.options = rendered.options
        self.replyTo = rendered.replyTo
        self.mediaVersionId = mediaVersionId
    }

    /// The result's fields, as ``GenerationRendered`` carried them.
    public var rendered: GenerationRendered {
        GenerationRendered(
            messageId: messageId, correlationId: correlationId, occurredAt: occurredAt, jobId: jobId, mediaId: mediaId,
            kind: kind, batchId: batchId, variationName: variationName, backend: backend, backendJobId: backendJobId,
            outputUrl: outputUrl, cost: cost, executionTimeMs: executionTimeMs, options: options, replyTo: replyTo)
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try rendered.validate()
    }
}

/// Event: the job ended without a result. Terminal: also published to the request's `replyTo`.
public struct GenerationFailed: CycloramaMessage {
    public static let messageType = MessageType.generationFailed
    public private(set) var type = MessageType.generationFailed
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    public var jobId: UUID
    public var mediaId: UUID
    /// Known unless the request itself could not be read.
    public var kind: GenerationKind?
    public var batchId: UUID?
    public var variationName: String?
    public var backendJobId: String?
    /// For people: what happened.
    public var reason: String
    /// For programs: see ``FailureCode``; unknown codes must be accepted.
    public var code: FailureCode
    /// Whether asking again (a new request) may succeed.
    public var retryable: Bool

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, kind: GenerationKind? = nil, batchId: UUID? = nil,
        variationName: String? = nil, backendJobId: String? = nil, reason: String, code: FailureCode,
        retryable: Bool
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.kind = kind
        self.batchId = batchId
        self.variationName = variationName
        self.backendJobId = backendJobId
        self.reason = reason
        self.code = code
        self.retryable = retryable
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        if let kind { try GenerationKind.validate(kind, batchId: batchId, variationName: variationName) }
        try Check.nonEmpty(reason, "reason", max: 2000)
        try Check.nonEmpty(code.rawValue, "code", max: 100)
        try Check.optional(backendJobId, "backendJobId", max: 255)
    }
}
