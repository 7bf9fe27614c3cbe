import Shared
import Foundation

/// RunPod's job statuses; the last four are terminal.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case inQueue = "IN_QUEUE"
    case inProgress = "IN_PROGRESS"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"
    case timedOut = "TIMED_OUT"

    public var isTerminal: Bool { self != .inQueue && self != .inProgress }
}

/// `policy` of a `/run` body (RunPod's names and units: milliseconds).
public struct JobPolicy: Sendable, Equatable, Decodable {
    /// How long the job may run once started. Default 600000 (10 minutes).
    public var executionTimeout: Int
    /// How long the job may exist, queued and running, before it is deleted (`/status` → 404). Default 86400000.
    public var ttl: Int
    /// Accepted and ignored: the engine has a single queue.
    public var lowPriority: Bool

    public static let defaultExecutionTimeout = 600_000
    public static let defaultTTL = 86_400_000

    public init(executionTimeout: Int = defaultExecutionTimeout, ttl: Int = defaultTTL, lowPriority: Bool = false) {
        self.executionTimeout = executionTimeout
        self.ttl = ttl
        self.lowPriority = lowPriority
    }

    enum CodingKeys: String, CodingKey { case executionTimeout, ttl, lowPriority }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        executionTimeout = try container.decodeIfPresent(Int.self, forKey: .executionTimeout) ?? Self.defaultExecutionTimeout
        ttl = try container.decodeIfPresent(Int.self, forKey: .ttl) ?? Self.defaultTTL
        lowPriority = try container.decodeIfPresent(Bool.self, forKey: .lowPriority) ?? false
    }
}

/// The body of `/run` and `/runsync`.
public struct JobSubmission: Sendable, Decodable {
    public var input: JSONValue
    public var webhook: String?
    public var policy: JobPolicy?
}

/// A COMPLETED job's `output`.
public struct StudioShotOutput: Sendable, Equatable, Codable {
    /// Where the engine serves the image: `<base>/v2/<endpoint>/results/<id>.<format>`.
    public var imageURL: String
    /// The image itself, when `input.returnBase64` was true.
    public var imageBase64: String?
    public var width: Int
    public var height: Int
    public var format: String
    /// Always 0: the local engine is free. Present because RunPod's outputs carry it.
    public var cost: Double
    /// Milliseconds per pipeline stage (`fetch`, `decode`, `segment`, ... , `total`).
    public var timings: [String: Int]

    enum CodingKeys: String, CodingKey {
        case imageURL = "image_url", imageBase64 = "image_base64", width, height, format, cost, timings
    }
}

/// What `/status`, `/runsync` and webhooks answer: RunPod's job object.
public struct JobStatusBody: Sendable, Codable, Equatable {
    public var id: String
    public var status: JobStatus
    /// Milliseconds from submission (or retry) until a worker took the job.
    public var delayTime: Int?
    /// Milliseconds the worker spent on it.
    public var executionTime: Int?
    public var output: StudioShotOutput?
    public var error: String?
    public var workerId: String?
    /// Only in webhook bodies, as RunPod does (a data URI's payload is elided).
    public var input: JSONValue?
    public var webhook: String?
}

/// The short answer of `/run`, `/cancel` and `/retry`.
public struct JobReceipt: Sendable, Codable, Equatable {
    public var id: String
    public var status: JobStatus
}

/// `/v2/{endpoint}/health`: RunPod's shape plus what this engine is running.
public struct EngineHealth: Sendable, Codable, Equatable {
    public struct Jobs: Sendable, Codable, Equatable {
        /// Counted since the engine started.
        public var completed, failed, cancelled, timedOut, retried: Int
        /// Right now.
        public var inProgress, inQueue: Int
    }
    public struct Workers: Sendable, Codable, Equatable {
        public var idle, running: Int
    }
    public struct Renderer: Sendable, Codable, Equatable {
        /// `pipeline` (real image work) or `simulated` (benchmark mode).
        public var mode: String
        /// The segmenter in use (`u2netp`, `classical`), or `none` when simulated.
        public var segmenter: String
        /// The fixed latency of the simulated mode.
        public var simulatedLatencyMs: Int?
    }
    public var jobs: Jobs
    public var workers: Workers
    public var renderer: Renderer
    public var queueLimit: Int
}
