import Foundation
import RunPod
import ServiceCore
import ServiceSupport
import Shared

/// Settings particular to the dispatcher, from environment variables.
///
/// | variable                         | default | meaning |
/// |----------------------------------|---------|---------|
/// | `LOCAL_ENGINE_URL`               | `http://127.0.0.1:8090/v2/cyclorama-studio` | the local engine's endpoint (RunPod protocol) |
/// | `LOCAL_ENGINE_API_KEY[_FILE]`    | unset (`make up`: `.var/local-engine-api-key`) | the engine's bearer key (the engine's own value) |
/// | `RUNPOD_ENDPOINT_URL`            | `https://api.runpod.ai/v2/black-forest-labs-flux-1-kontext-dev` | FLUX.1 Kontext [dev] on RunPod; its key is the `runpodApiKey` setting |
/// | `DISPATCH_JOB_DEADLINE_SECONDS`  | `900`   | a job without a result by then is cancelled at the backend and FAILED (`timed_out`); at most 1700, below RabbitMQ's 30-minute limit for an unacknowledged message |
/// | `DISPATCH_POLL_INITIAL_MS`       | `500`   | first wait before `/status` while no recent run says when a job should be done; grows 1.5x per poll (docs/architecture.md) |
/// | `DISPATCH_POLL_MAX_MS`           | `5000`  | longest wait between two `/status` calls |
/// | `DISPATCH_LEASE_SECONDS`         | `30`    | a concurrency slot's lease; renewed while the job runs, so a crashed instance's slots come back after this |
/// | `DISPATCH_LEASES_KEY`            | `cyclorama:dispatch:leases` | the Redis key of the global limit (one per deployment) |
/// | `DISPATCH_PREFETCH`              | `64`    | jobs one instance follows at once (waiting ones hold no slot) |
/// | `DISPATCH_MAX_RESUBMITS`         | `2`     | how often a job the backend lost (404) is submitted again |
/// | `DISPATCH_WEBHOOK_WAIT_SECONDS`  | `120`   | with webhooks on (`aiImageEnableWebhooks`), how long after a submission the job waits for its webhook before polling takes over |
/// | `DISPATCH_ORPHAN_SWEEP_SECONDS`  | `10`    | how often backend jobs whose cancel did not get through are cancelled again |
/// | `DISPATCH_RUNPOD_CHECK_SECONDS`  | `60`    | while the backend is `runpod`, how often RunPod's `/health` is asked with the key; an unusable configuration is logged and shown in `/healthz` (`detail.runpod`) |
/// | `MEDIA_BASE_URL`                 | `http://127.0.0.1:8080` | the prompt-service's: the gateway's signed media links start with it; only such links are fetched to send a photo inline (`runpodImageDelivery`), and with `auto` they are when it is not a public address |
///
/// A job's backend slot is held from `/run` until the backend says the job ended, at most its
/// `policy.ttl` (the job's deadline, at least RunPod's 10 s minimum) plus a minute (``hold``): the
/// backend must have dropped it by then.
struct DispatcherConfiguration: Sendable {
    var localEngineURL = "http://127.0.0.1:8090/v2/cyclorama-studio"
    var localEngineAPIKey: String?
    var runpodEndpointURL = RunPodEndpoint.fluxKontextDev
    var jobDeadline: Duration = .seconds(900)
    var pollInitial: Duration = .milliseconds(500)
    var pollMax: Duration = .seconds(5)
    var lease: Duration = .seconds(30)
    var leasesKey = JobKeys.concurrencyLeases
    var prefetch: UInt16 = 64
    var maxResubmits = 2
    var webhookWait: Duration = .seconds(120)
    var orphanSweep: Duration = .seconds(10)
    var mediaBaseURL = "http://127.0.0.1:8080"
    var runpodCheck: Duration = .seconds(60)

    /// What every `/run` asks of the backend: the job's deadline, never below RunPod's minimums.
    var policy: RunPodPolicy { RunPodPolicy(deadline: jobDeadline) }

    /// How long a committed concurrency slot lasts at most: the job's `policy.ttl` and a margin.
    var hold: Duration { .milliseconds(policy.ttl) + .seconds(60) }

    /// Whether the backend answers a repeated `/run` with the same `Idempotency-Key` with the job it
    /// already has (the local engine does; RunPod's API has no such key). With it, a submission
    /// whose answer was lost is simply sent again; without it, it is never sent twice.
    func honoursIdempotencyKeys(_ backend: GenerationBackend) -> Bool { backend == .local }

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> DispatcherConfiguration {
        var configuration = DispatcherConfiguration()
        if let url = try environment.parsed("LOCAL_ENGINE_URL", expected: RunPodEndpoint.expected, RunPodEndpoint.normalized) {
            configuration.localEngineURL = url
        }
        configuration.localEngineAPIKey = try environment.optionalSecret("LOCAL_ENGINE_API_KEY", minimumLength: 16)
        if let url = try environment.parsed("RUNPOD_ENDPOINT_URL", expected: RunPodEndpoint.expected, RunPodEndpoint.normalized) {
            configuration.runpodEndpointURL = url
        }
        configuration.jobDeadline = .seconds((try environment.integer("DISPATCH_JOB_DEADLINE_SECONDS", in: 5...1_700) ?? 900))
        configuration.pollInitial = .milliseconds((try environment.integer("DISPATCH_POLL_INITIAL_MS", in: 10...60_000) ?? 500))
        configuration.pollMax = .milliseconds((try environment.integer("DISPATCH_POLL_MAX_MS", in: 10...300_000) ?? 5000))
        configuration.lease = .seconds((try environment.integer("DISPATCH_LEASE_SECONDS", in: 3...3600) ?? 30))
        if let key = environment["DISPATCH_LEASES_KEY"], !key.isEmpty { configuration.leasesKey = key }
        configuration.prefetch = UInt16((try environment.integer("DISPATCH_PREFETCH", in: 1...1000) ?? 64))
        configuration.maxResubmits = (try environment.integer("DISPATCH_MAX_RESUBMITS", in: 0...10) ?? 2)
        configuration.webhookWait = .seconds((try environment.integer("DISPATCH_WEBHOOK_WAIT_SECONDS", in: 1...1_700) ?? 120))
        configuration.orphanSweep = .seconds((try environment.integer("DISPATCH_ORPHAN_SWEEP_SECONDS", in: 1...3600) ?? 10))
        configuration.runpodCheck = .seconds((try environment.integer("DISPATCH_RUNPOD_CHECK_SECONDS", in: 1...86_400) ?? 60))
        if let base = environment["MEDIA_BASE_URL"] {
            guard let url = URL(string: base), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ConfigurationError(variable: "MEDIA_BASE_URL", reason: "must be an http(s) URL, got \"\(base)\"")
            }
            configuration.mediaBaseURL = base.hasSuffix("/") ? String(base.dropLast()) : base
        }
        return configuration
    }
}
