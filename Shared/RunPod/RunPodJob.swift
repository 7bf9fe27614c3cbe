import Foundation
import Shared
import Timing

/// A job's status in RunPod's serverless protocol. An open set: RunPod documents six, some pages
/// also say `RUNNING`; any other status is kept as it came and treated as not terminal.
public struct RunPodJobStatus: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let inQueue = RunPodJobStatus(rawValue: "IN_QUEUE")
    public static let inProgress = RunPodJobStatus(rawValue: "IN_PROGRESS")
    /// What some of RunPod's pages call IN_PROGRESS.
    public static let running = RunPodJobStatus(rawValue: "RUNNING")
    public static let completed = RunPodJobStatus(rawValue: "COMPLETED")
    public static let failed = RunPodJobStatus(rawValue: "FAILED")
    public static let cancelled = RunPodJobStatus(rawValue: "CANCELLED")
    public static let timedOut = RunPodJobStatus(rawValue: "TIMED_OUT")

    /// The job will not change any more.
    public var isTerminal: Bool { [.completed, .failed, .cancelled, .timedOut].contains(self) }
    /// A worker has the job.
    public var isRunning: Bool { self == .inProgress || self == .running }
    /// One of the statuses above (a status RunPod adds later is not).
    public var isKnown: Bool { self == .inQueue || isRunning || isTerminal }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A job as `/run`, `/runsync`, `/status`, `/cancel` and webhooks describe it, with the endpoint's
/// `Output` (`JSONValue` for a client that reads any endpoint, ``StudioShotOutput`` for the local engine).
public struct RunPodJob<Output: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var id: String
    public var status: RunPodJobStatus
    /// Milliseconds from submission (or retry) until a worker took the job.
    public var delayTime: Int?
    /// Milliseconds the worker spent on it.
    public var executionTime: Int?
    /// While IN_PROGRESS maybe progress data; once COMPLETED the result.
    public var output: Output?
    /// Why a FAILED job failed. RunPod may send it as JSON (`{error_type, error_message}`), kept as its text.
    public var error: String?
    public var workerId: String?
    /// Only in webhook bodies, as RunPod sends them.
    public var input: JSONValue?
    public var webhook: String?

    public init(
        id: String, status: RunPodJobStatus, delayTime: Int? = nil, executionTime: Int? = nil, output: Output? = nil,
        error: String? = nil, workerId: String? = nil, input: JSONValue? = nil, webhook: String? = nil
    ) {
        self.id = id
        self.status = status
        self.delayTime = delayTime
        self.executionTime = executionTime
        self.output = output
        self.error = error
        self.workerId = workerId
        self.input = input
        self.webhook = webhook
    }

    enum CodingKeys: String, CodingKey { case id, status, delayTime, executionTime, output, error, workerId, input, webhook }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        status = try c.decode(RunPodJobStatus.self, forKey: .status)
        delayTime = try c.decodeIfPresent(Int.self, forKey: .delayTime)
        executionTime = try c.decodeIfPresent(Int.self, forKey: .executionTime)
        output = try c.decodeIfPresent(Output.self, forKey: .output)
        switch try c.decodeIfPresent(JSONValue.self, forKey: .error) {
        case .string(let text)?: error = text
        case .null?, nil: error = nil
        case let other?: error = other.jsonText
        }
        workerId = try c.decodeIfPresent(String.self, forKey: .workerId)
        input = try c.decodeIfPresent(JSONValue.self, forKey: .input)
        webhook = try c.decodeIfPresent(String.self, forKey: .webhook)
    }

    /// The reason a FAILED job gives (its `error` may itself be JSON with `error_message`).
    public var failureReason: String {
        guard let error else { return "the backend reported \(status) without a reason" }
        if let nested = try? JSONDecoder().decode(JSONValue.self, from: Data(error.utf8)),
           let message = nested["error_message"]?.stringValue {
            return message
        }
        return error
    }
}

extension RunPodJob where Output == JSONValue {
    /// The result's URL: `output.image_url`, or `output.result` for models that use it.
    public var resultURL: String? {
        output?["image_url"]?.stringValue ?? output?["result"]?.stringValue
    }

    /// The backend's progress text while IN_PROGRESS (`output.progress`).
    public var progress: String? {
        guard let progress = output?["progress"] else { return nil }
        return progress.stringValue ?? progress.jsonText
    }
}

/// The short answer of `/run`, `/cancel` and `/retry`.
public struct RunPodReceipt: Codable, Sendable, Equatable {
    public var id: String
    public var status: RunPodJobStatus

    public init(id: String, status: RunPodJobStatus) {
        self.id = id
        self.status = status
    }
}

/// `policy` of a `/run` body (RunPod's names and units: milliseconds).
public struct RunPodPolicy: Codable, Sendable, Equatable {
    /// How long the job may run once started. Default 600000 (10 minutes).
    public var executionTimeout: Int
    /// How long the job may exist, queued and running, before it is deleted (`/status` then 404). Default 86400000.
    public var ttl: Int
    /// Whether it may wait behind others.
    public var lowPriority: Bool

    public static let defaultExecutionTimeout = 600_000
    public static let defaultTTL = 86_400_000
    /// RunPod refuses a `/run` whose `executionTimeout` is not more than 5 s or whose `ttl` is below
    /// 10 s. We never send less than 6 s, a whole second clear of the bound.
    public static let executionTimeoutMustExceed = 5_000
    public static let minimumExecutionTimeout = 6_000
    public static let minimumTTL = 10_000

    public init(executionTimeout: Int = defaultExecutionTimeout, ttl: Int = defaultTTL, lowPriority: Bool = false) {
        self.executionTimeout = executionTimeout
        self.ttl = ttl
        self.lowPriority = lowPriority
    }

    /// The policy for a job that must be over within `deadline`: it may run and exist that long,
    /// never less than RunPod's minimums (a shorter deadline is then kept by whoever set it, which
    /// cancels the job when it passes).
    public init(deadline: Duration) {
        let milliseconds = deadline.wholeMilliseconds
        self.init(
            executionTimeout: max(milliseconds, Self.minimumExecutionTimeout), ttl: max(milliseconds, Self.minimumTTL))
    }

    /// Why RunPod would refuse this policy, or nil.
    public var refusal: String? {
        if executionTimeout <= Self.executionTimeoutMustExceed {
            return "policy.executionTimeout must be more than \(Self.executionTimeoutMustExceed) ms; got \(executionTimeout)"
        }
        if ttl < Self.minimumTTL { return "policy.ttl must be at least \(Self.minimumTTL) ms; got \(ttl)" }
        return nil
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
public struct RunPodSubmission: Codable, Sendable, Equatable {
    public var input: JSONValue
    public var webhook: String?
    public var policy: RunPodPolicy?

    public init(input: JSONValue, webhook: String? = nil, policy: RunPodPolicy? = nil) {
        self.input = input
        self.webhook = webhook
        self.policy = policy
    }
}

/// `/stream/{id}`: the job's status and the chunks (`{"output": ...}`) not handed out by an
/// earlier call; a client asks until the status is terminal and no chunk came.
public struct RunPodStreamAnswer: Codable, Sendable, Equatable {
    public var id: String?
    public var status: RunPodJobStatus
    public var stream: [JSONValue]

    public init(id: String? = nil, status: RunPodJobStatus, stream: [JSONValue]) {
        self.id = id
        self.status = status
        self.stream = stream
    }
}

/// `/purge-queue`: how many queued jobs were removed (`status` is `completed`).
public struct RunPodPurgeAnswer: Codable, Sendable, Equatable {
    public var removed: Int
    public var status: String

    public init(removed: Int, status: String = "completed") {
        self.removed = removed
        self.status = status
    }
}
