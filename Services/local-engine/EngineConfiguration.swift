import Foundation
import Imaging
import ServiceCore

/// The local engine's own settings, read from environment variables (the shared ones — `HTTP_HOST`,
/// `HTTP_PORT` (default 8090), `LOG_LEVEL`, `SHUTDOWN_GRACE_SECONDS` — are in ``ServiceConfiguration``).
///
/// | variable | type | default | meaning |
/// |---|---|---|---|
/// | `LOCAL_ENGINE_API_KEY[_FILE]` | string (16+ characters) | unset (`make up`: `.var/local-engine-api-key`) | when set, `/v2/...` calls need `Authorization: Bearer <key>` (give the dispatcher the same) |
/// | `LOCAL_ENGINE_CONCURRENCY` | int 1...64 | the number of cores | jobs rendered at once |
/// | `LOCAL_ENGINE_QUEUE_LIMIT` | int 0...10000 | 64 | jobs waiting IN_QUEUE; more → 429 |
/// | `LOCAL_ENGINE_QUEUE_BYTES` | int (MB) | 256 | request bytes held by queued jobs; more → 429 |
/// | `LOCAL_ENGINE_RESULT_TTL_SECONDS` | int | 1800 | how long finished jobs and their images are kept |
/// | `LOCAL_ENGINE_ALLOWED_HOSTS` | list | `127.0.0.1:8080,localhost:8080` | hosts `input.image` may be fetched from: `host:port` exactly, or `host` / `*` only at a public address (`HostAllowList`, docs/security.md) |
/// | `LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS` | list | `127.0.0.1:8080,localhost:8080` | hosts a job's `webhook` may point at (the gateway), by the same rules; a submission naming another is refused with 400 |
/// | `LOCAL_ENGINE_FETCH_TIMEOUT_SECONDS` | double | 30 | whole-download timeout for `input.image` |
/// | `LOCAL_ENGINE_FETCH_RETRY_SECONDS` | double | 180 | how long a source that does not answer (or answers 5xx / 429 / 408) is tried again before the job fails; within `policy.executionTimeout` |
/// | `LOCAL_ENGINE_MAX_IMAGE_MB` | int | 25 | largest accepted input image (downloaded or decoded data URI) |
/// | `LOCAL_ENGINE_WEBHOOK_RETRY_SECONDS` | double | 10 | pause between webhook attempts (3 attempts in all) |
/// | `LOCAL_ENGINE_SIMULATE_MS` | int | unset | benchmark mode: skip the image work, wait this long, return the input |
/// | `LOCAL_ENGINE_SIMULATE_HOLD` | path | unset | with `LOCAL_ENGINE_SIMULATE_MS` only: while a file exists at this path, a simulated job that has waited its time waits on (tests hold jobs at the backend for exactly as long as they need them there) |
/// | `LOCAL_ENGINE_MODEL` | name or path | `u2netp` | the segmentation model (`PipelineConfiguration.modelPath(for:directory:)`: a name is `<name>.onnx` in `LOCAL_ENGINE_MODEL_DIR`, default `.var/models`). A model named here must be there, or the engine does not start; the default model missing falls back to the classical segmenter, which `/health` reports |
/// | `LOCAL_ENGINE_SIDES` | list of ints | `320` | the sides the model runs at, e.g. `320,448` (one forward pass each, the maps averaged; more time and memory, docs/engine.md "Input sides") |
/// | `LOCAL_ENGINE_SEGMENTATION_CACHE` | int 0...1024 | 16 | photos whose segmentation is kept: the same photo rendered again (variations, another background, a retry) skips the model; 0 turns it off (a map is side² floats, 0.4 MB at 320²; at most 64 MB in all, docs/engine.md) |
/// | `LOCAL_ENGINE_RESULTS_DIR` | path | `$TMPDIR/cyclorama-local-engine-<port>` | where result images live (kept across restarts for their time to live) |
/// | `LOCAL_ENGINE_PUBLIC_URL` | url | from the request's Host | base of `output.image_url` |
public struct EngineConfiguration: Sendable {
    public var service: ServiceConfiguration
    public var apiKey: String?
    public var concurrency: Int
    public var queueLimit: Int
    public var queueByteLimit: Int
    public var resultTTL: Duration
    public var allowedHosts: HostAllowList
    /// Where webhooks may be sent: the engine POSTs to them, so an open list would let any caller
    /// aim it at anything the engine can reach.
    public var webhookHosts: HostAllowList
    public var fetchTimeout: Duration
    public var fetchRetryWindow: Duration
    public var maxImageBytes: Int
    public var webhookRetryInterval: Duration
    /// When set, the engine skips the image work and answers after this long (benchmark mode).
    public var simulatedLatency: Duration?
    /// With ``simulatedLatency``: while a file exists here, a simulated job waits on (``SimulatedRenderer``).
    public var simulatedHold: String?
    /// The segmentation model's file (``PipelineConfiguration/modelPath``).
    public var modelPath: String
    /// The segmentation model's input sides (``PipelineConfiguration/inputSides``).
    public var inputSides: [Int]
    /// ``PipelineConfiguration/segmentationCacheEntries``.
    public var segmentationCacheEntries: Int
    public var resultsDirectory: URL
    public var publicURL: String?

    /// Largest `/run` body (RunPod's limit).
    public var runBodyLimit = 10 << 20
    /// Largest `/runsync` body (RunPod's limit).
    public var runSyncBodyLimit = 20 << 20
    /// How often the sweeper looks for expired jobs.
    public var sweepInterval: Duration = .seconds(1)

    public static let defaultPort = 8090

    public init(service: ServiceConfiguration) {
        self.service = service
        apiKey = nil
        concurrency = max(1, ProcessInfo.processInfo.activeProcessorCount)
        queueLimit = 64
        queueByteLimit = 256 << 20
        resultTTL = .seconds(30 * 60)
        allowedHosts = HostAllowList(["127.0.0.1:8080", "localhost:8080"])
        webhookHosts = HostAllowList(["127.0.0.1:8080", "localhost:8080"])
        fetchTimeout = .seconds(30)
        fetchRetryWindow = .seconds(180)
        maxImageBytes = 25 << 20
        webhookRetryInterval = .seconds(10)
        simulatedLatency = nil
        simulatedHold = nil
        modelPath = PipelineConfiguration.modelPath(for: "")
        inputSides = PipelineConfiguration.defaultInputSides
        segmentationCacheEntries = PipelineConfiguration.defaultSegmentationCacheEntries
        resultsDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cyclorama-local-engine-\(service.httpPort)")
        publicURL = nil
    }

    /// Reads everything from `environment`; a malformed value is an error, never silently replaced.
    public static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> EngineConfiguration {
        let service = try ServiceConfiguration.fromEnvironment(
            serviceName: "local-engine", defaultPort: defaultPort, environment: environment)
        var configuration = EngineConfiguration(service: service)
        configuration.apiKey = try environment.optionalSecret("LOCAL_ENGINE_API_KEY", minimumLength: 16)
        configuration.concurrency = try environment.integer("LOCAL_ENGINE_CONCURRENCY", in: 1...64) ?? configuration.concurrency
        configuration.queueLimit = try environment.integer("LOCAL_ENGINE_QUEUE_LIMIT", in: 0...10_000) ?? configuration.queueLimit
        if let megabytes = try environment.integer("LOCAL_ENGINE_QUEUE_BYTES", in: 1...65_536) {
            configuration.queueByteLimit = megabytes << 20
        }
        if let seconds = try environment.integer("LOCAL_ENGINE_RESULT_TTL_SECONDS", in: 1...604_800) {
            configuration.resultTTL = .seconds(seconds)
        }
        if let hosts = environment["LOCAL_ENGINE_ALLOWED_HOSTS"] {
            configuration.allowedHosts = HostAllowList(list: hosts)
        }
        if let hosts = environment["LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS"] {
            configuration.webhookHosts = HostAllowList(list: hosts)
        }
        if let seconds = try environment.double("LOCAL_ENGINE_FETCH_TIMEOUT_SECONDS", in: 0.1...600) {
            configuration.fetchTimeout = .milliseconds(Int(seconds * 1000))
        }
        if let seconds = try environment.double("LOCAL_ENGINE_FETCH_RETRY_SECONDS", in: 0...3600) {
            configuration.fetchRetryWindow = .milliseconds(Int(seconds * 1000))
        }
        if let megabytes = try environment.integer("LOCAL_ENGINE_MAX_IMAGE_MB", in: 1...1024) {
            configuration.maxImageBytes = megabytes << 20
        }
        if let seconds = try environment.double("LOCAL_ENGINE_WEBHOOK_RETRY_SECONDS", in: 0...600) {
            configuration.webhookRetryInterval = .milliseconds(Int(seconds * 1000))
        }
        if let milliseconds = try environment.integer("LOCAL_ENGINE_SIMULATE_MS", in: 0...3_600_000) {
            configuration.simulatedLatency = .milliseconds(milliseconds)
        }
        if let hold = environment["LOCAL_ENGINE_SIMULATE_HOLD"] {
            guard configuration.simulatedLatency != nil else {
                throw ConfigurationError(variable: "LOCAL_ENGINE_SIMULATE_HOLD", reason: "holds simulated jobs only: set LOCAL_ENGINE_SIMULATE_MS too")
            }
            guard hold.hasPrefix("/") else {
                throw ConfigurationError(variable: "LOCAL_ENGINE_SIMULATE_HOLD", reason: "must be an absolute path, not \"\(hold)\"")
            }
            configuration.simulatedHold = hold
        }
        // A model asked for by name or path must be there: an operator who mistyped it would
        // otherwise get the classical segmenter's cut-outs without a word. Without the setting, the
        // default model missing (not fetched yet) is the documented fallback.
        let model = (environment["LOCAL_ENGINE_MODEL"] ?? "").trimmingCharacters(in: .whitespaces)
        configuration.modelPath = PipelineConfiguration.modelPath(for: model, directory: environment["LOCAL_ENGINE_MODEL_DIR"])
        if !model.isEmpty, configuration.simulatedLatency == nil, !FileManager.default.fileExists(atPath: configuration.modelPath) {
            let fetch = PipelineConfiguration.knownModels.contains(model) ? "fetch it with scripts/fetch-model.sh \(model), " : ""
            throw ConfigurationError(
                variable: "LOCAL_ENGINE_MODEL",
                reason: "no model file at \(configuration.modelPath) (\(fetch)give another model, or leave it unset for the default)")
        }
        if let sides = environment["LOCAL_ENGINE_SIDES"] {
            do throws(ImagingError) {
                configuration.inputSides = try PipelineConfiguration.inputSides(for: sides)
            } catch {
                throw ConfigurationError(variable: "LOCAL_ENGINE_SIDES", reason: error.message)
            }
        }
        configuration.segmentationCacheEntries =
            try environment.integer("LOCAL_ENGINE_SEGMENTATION_CACHE", in: 0...1024) ?? configuration.segmentationCacheEntries
        if let directory = environment["LOCAL_ENGINE_RESULTS_DIR"] {
            configuration.resultsDirectory = URL(fileURLWithPath: directory)
        }
        if let url = environment["LOCAL_ENGINE_PUBLIC_URL"] {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ConfigurationError(variable: "LOCAL_ENGINE_PUBLIC_URL", reason: "expected an http(s) URL, got \"\(url)\"")
            }
            configuration.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        return configuration
    }
}

