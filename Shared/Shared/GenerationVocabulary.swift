/// Shadow presets (the seed's SHADOW_PRESETS plus `none`).
public enum ShadowStyle: String, WireChoice {
    case minimal, soft, dramatic, none
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// Upscaling after generation: 1 (none), 2 or 4.
public enum UpscaleFactor: Int, WireChoice {
    case x1 = 1, x2 = 2, x4 = 4
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// Which kind of job a generation is part of.
public enum GenerationKind: String, WireChoice {
    /// One image.
    case single
    /// One image of a batch (`batchId` required).
    case batchItem
    /// One A/B variation of an image (`variationName` required); the media is not replaced until
    /// a winner is chosen.
    case variation
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// The generation backend the dispatcher talks to (both speak RunPod's serverless protocol).
public enum GenerationBackend: String, WireChoice {
    /// Cyclorama's offline CPU engine.
    case local
    /// FLUX.1 Kontext [dev] on RunPod's cloud.
    case runpod
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// Where a job is on its way to a result.
public enum GenerationStage: String, WireChoice {
    case queued, prompting, submitted, inProgress, downloading
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// Why a job failed, machine-readable. An open set: consumers must accept codes they do not know.
public struct FailureCode: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The backend reported FAILED or answered with an error.
    public static let backendFailed = FailureCode("backend_failed")
    /// No result before the job's deadline (stuck in queue, TIMED_OUT).
    public static let timedOut = FailureCode("timed_out")
    /// The request could not be carried out as asked (e.g. the media does not exist or is not an image).
    public static let invalidRequest = FailureCode("invalid_request")
    /// Someone cancelled the job.
    public static let cancelled = FailureCode("cancelled")
    /// The backend finished but its output could not be downloaded or is not a valid image.
    public static let invalidOutput = FailureCode("invalid_output")
    /// The media the job was for is gone.
    public static let mediaNotFound = FailureCode("media_not_found")
    /// Retries were exhausted on a problem that is not an outage (a consumer gave up on the job's message).
    public static let retriesExhausted = FailureCode("retries_exhausted")
    /// A setting or secret the job needs is missing or unusable (e.g. the RunPod key cannot be
    /// decrypted with this master key); an operator must fix it.
    public static let misconfigured = FailureCode("misconfigured")
    /// The backend may have accepted the job but its answer was lost, and it could not be found
    /// again; it was not submitted twice so as not to pay twice.
    public static let submissionUnconfirmed = FailureCode("submission_unconfirmed")
    /// The backend's result was gone (expired or deleted) before it could be downloaded.
    public static let resultExpired = FailureCode("result_expired")
    /// A generative backend changed the product (a redrawn label, a new colour, another shape) and
    /// `aiImageFidelityMode` is `reject` (docs/fidelity.md); the reason carries the score.
    public static let productChanged = FailureCode("product_changed")
}

/// What happens to a RunPod result whose product differs from the photo's (`aiImageFidelityMode`,
/// docs/fidelity.md).
public enum FidelityMode: String, WireChoice {
    /// The photo's own product is put back into the generated studio shot.
    case restore
    /// The job fails with `product_changed`.
    case reject
    /// Results are not checked.
    case off
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
}

/// The A/B test set from the seed: one variation per shadow preset, in this order and with these names.
public enum StandardVariations {
    public struct Variation: Sendable, Hashable {
        public var name: String
        public var shadowStyle: ShadowStyle
    }

    public static let all: [Variation] = [
        Variation(name: "Minimal Shadow", shadowStyle: .minimal),
        Variation(name: "Soft Shadow (Recommended)", shadowStyle: .soft),
        Variation(name: "Dramatic Shadow", shadowStyle: .dramatic),
    ]
}
