import RunPod
import Shared
import Foundation

// The engine speaks RunPod's protocol with the one model of it in the RunPod module; these names
// are what the engine's code and tests call them.

/// A job's status (RunPod's six; the last four terminal).
public typealias JobStatus = RunPodJobStatus
/// `policy` of a `/run` body.
public typealias JobPolicy = RunPodPolicy
/// The body of `/run` and `/runsync`.
public typealias JobSubmission = RunPodSubmission
/// What `/status`, `/runsync` and webhooks answer: RunPod's job object with the engine's output.
public typealias JobStatusBody = RunPodJob<StudioShotOutput>
/// The short answer of `/run`, `/cancel` and `/retry`.
public typealias JobReceipt = RunPodReceipt
/// `/stream/{id}`.
public typealias StreamBody = RunPodStreamAnswer
/// `/purge-queue`.
public typealias PurgeBody = RunPodPurgeAnswer

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
        /// The segmentation model in use (`u2netp`, `u2net`, a file's name), `classical (...)`, or `none` when simulated.
        public var segmenter: String
        /// The fixed latency of the simulated mode.
        public var simulatedLatencyMs: Int?
        /// Renders whose photo was segmented lately and reused that segmentation, and renders that
        /// ran the segmenter (pipeline mode; docs/engine.md, "Segmentation cache").
        public var segmentationsReused: Int?
        public var segmentationsComputed: Int?
    }
    public var jobs: Jobs
    public var workers: Workers
    public var renderer: Renderer
    public var queueLimit: Int
}
