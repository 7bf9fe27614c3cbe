import Foundation

/// Command: make a studio shot of a media item. Published by the api-gateway and by other systems
/// on `cyclorama.commands` / `generation.request`; consumed by the prompt-service.
///
/// `jobId` is the idempotency key: a second request with a jobId already accepted is ignored.
/// If `replyTo` is set, the job's terminal event (GenerationCompleted after the media was updated,
/// or GenerationFailed) is also published there.
public struct RequestGeneration: CycloramaMessage {
    public static let messageType = MessageType.generationRequest
    public private(set) var type = MessageType.generationRequest
    public private(set) var schemaVersion = MessageType.currentSchemaVersion
    public var messageId: UUID
    public var correlationId: String
    public var occurredAt: Date

    /// Chosen by the publisher; the job's id everywhere afterwards.
    public var jobId: UUID
    /// The media item whose image is replaced.
    public var mediaId: UUID
    public var kind: GenerationKind
    /// Required iff `kind` is `batchItem`.
    public var batchId: UUID?
    /// Required iff `kind` is `variation`.
    public var variationName: String?
    /// Absent in JSON means all defaults.
    public var options: GenerationOptions
    /// An extra address for the terminal event.
    public var replyTo: ReplyAddress?
    /// Who asked (a user, a system); recorded in the job ledger.
    public var requestedBy: String?

    /// `correlationId` defaults to the jobId.
    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, kind: GenerationKind = .single, batchId: UUID? = nil,
        variationName: String? = nil, options: GenerationOptions = GenerationOptions(),
        replyTo: ReplyAddress? = nil, requestedBy: String? = nil
    ) {
        self.messageId = messageId
        self.correlationId = correlationId ?? jobId.uuidString
        self.occurredAt = occurredAt
        self.jobId = jobId
        self.mediaId = mediaId
        self.kind = kind
        self.batchId = batchId
        self.variationName = variationName
        self.options = options
        self.replyTo = replyTo
        self.requestedBy = requestedBy
    }

    private enum CodingKeys: String, CodingKey {
        case type, schemaVersion, messageId, correlationId, occurredAt
        case jobId, mediaId, kind, batchId, variationName, options, replyTo, requestedBy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(MessageType.self, forKey: .type)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        messageId = try c.decode(UUID.self, forKey: .messageId)
        correlationId = try c.decode(String.self, forKey: .correlationId)
        occurredAt = try c.decode(Date.self, forKey: .occurredAt)
        jobId = try c.decode(UUID.self, forKey: .jobId)
        mediaId = try c.decode(UUID.self, forKey: .mediaId)
        kind = try c.decode(GenerationKind.self, forKey: .kind)
        batchId = try c.decodeIfPresent(UUID.self, forKey: .batchId)
        variationName = try c.decodeIfPresent(String.self, forKey: .variationName)
        // A publisher happy with every default may leave `options` out.
        options = try c.decodeIfPresent(GenerationOptions.self, forKey: .options) ?? GenerationOptions()
        replyTo = try c.decodeIfPresent(ReplyAddress.self, forKey: .replyTo)
        requestedBy = try c.decodeIfPresent(String.self, forKey: .requestedBy)
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try GenerationKind.validate(kind, batchId: batchId, variationName: variationName)
        try options.validate()
        try replyTo?.validate(at: "replyTo")
        try Check.optional(requestedBy, "requestedBy", max: 200)
    }
}

/// Command: run one generation on a backend. Published by the prompt-service on
/// `cyclorama.commands` / `dispatch.request`; consumed by every runpod-dispatcher instance.
///
/// The dispatcher submits `input` as is (it is already shaped for `backend`) and deduplicates by jobId.
public struct DispatchGeneration: CycloramaMessage {
    public static let messageType = MessageType.dispatchRequest
    public private(set) var type = MessageType.dispatchRequest
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
    /// The full prompt (also inside `input` for RunPod); kept for the job ledger.
    public var prompt: String
    /// The backend-specific `input` object of the RunPod `/run` body.
    public var input: JSONValue
    /// The request's options with every default filled in.
    public var options: ResolvedGenerationOptions
    /// Copied from the request.
    public var replyTo: ReplyAddress?
    /// 1 for the first try; the dispatcher increments it when it resubmits.
    public var attempt: Int
    /// The media file the job is made from (the one `input.image` names); carried to the ingestor in
    /// ``GenerationRendered``. Absent in commands from publishers that predate it.
    public var source: JobSource?

    public init(
        messageId: UUID = UUID(), correlationId: String? = nil, occurredAt: Date = Date(),
        jobId: UUID, mediaId: UUID, kind: GenerationKind = .single, batchId: UUID? = nil,
        variationName: String? = nil, backend: GenerationBackend, prompt: String, input: JSONValue,
        options: ResolvedGenerationOptions, replyTo: ReplyAddress? = nil, attempt: Int = 1, source: JobSource? = nil
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
        self.prompt = prompt
        self.input = input
        self.options = options
        self.replyTo = replyTo
        self.attempt = attempt
        self.source = source
    }

    public func validate() throws(ValidationError) {
        try validateEnvelope()
        try GenerationKind.validate(kind, batchId: batchId, variationName: variationName)
        try Check.nonEmpty(prompt, "prompt", max: 10_000)
        if input.objectValue == nil {
            throw ValidationError(field: "input", reason: "must be a JSON object")
        }
        try options.validate()
        try replyTo?.validate(at: "replyTo")
        try Check.atLeast(attempt, 1, "attempt")
        try source?.validate(at: "source")
    }
}

/// The media file a job is made from: the version its backend was given, whatever the media shows
/// by the time the result arrives (a revert, another job's result). The ingestor checks a RunPod
/// result against this photo and gives it this photo's size.
public struct JobSource: Codable, Sendable, Hashable {
    /// Where the file is in the media store, relative to its root (`media_versions.file_path`).
    public var path: String
    public var width: Int
    public var height: Int

    public init(path: String, width: Int, height: Int) {
        self.path = path
        self.width = width
        self.height = height
    }

    func validate(at field: String) throws(ValidationError) {
        try Check.nonEmpty(path, "\(field).path", max: 1024)
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if path.hasPrefix("/") || parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
            || path.unicodeScalars.contains(where: { $0 == "\\" || $0.properties.generalCategory == .control }) {
            throw ValidationError(field: "\(field).path", reason: "must be a relative path inside the media store; got \(Check.quoted(path))")
        }
        try Check.atLeast(width, 1, "\(field).width")
        try Check.atLeast(height, 1, "\(field).height")
    }
}

extension GenerationKind {
    /// `batchId` belongs to batch items and `variationName` to variations, and only to them.
    static func validate(_ kind: GenerationKind, batchId: UUID?, variationName: String?) throws(ValidationError) {
        switch kind {
        case .batchItem where batchId == nil:
            throw ValidationError(field: "batchId", reason: "is required when kind is batchItem")
        case .variation where variationName == nil:
            throw ValidationError(field: "variationName", reason: "is required when kind is variation")
        default: break
        }
        if kind != .batchItem, batchId != nil {
            throw ValidationError(field: "batchId", reason: "is only allowed when kind is batchItem; kind is \(kind.rawValue)")
        }
        if kind != .variation, variationName != nil {
            throw ValidationError(
                field: "variationName", reason: "is only allowed when kind is variation; kind is \(kind.rawValue)")
        }
        try Check.optional(variationName, "variationName", max: 100)
    }
}
