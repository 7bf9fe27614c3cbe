import Database
import Foundation
import PostgresNIO
import RunPod
import ServiceCore
import ServiceSupport

/// Settings particular to the gateway, from environment variables.
///
/// | variable                     | default | meaning |
/// |------------------------------|---------|---------|
/// | `CYCLORAMA_ADMIN_TOKEN_FILE` | unset   | a file holding an admin API token; its SHA-256 is stored at start-up so the token works (`make up` writes `.var/admin-token`) |
/// | `MEDIA_ROOT`                 | `.var/media` | where media files are stored (content-addressed) |
/// | `MEDIA_URL_SECRET[_FILE]`    | `.var/media-url-secret` | the secret of the signed, token-free `/media/<id>/file` links backends fetch (shared with prompt-service) |
/// | `CYCLORAMA_MASTER_KEY[_FILE]` | `.var/master-key` | the AES-GCM key secrets are sealed with (shared with settings-service and runpod-dispatcher) |
/// | `SETTINGS_AUTHORITY_KEY[_FILE]` | `.var/settings-authority-key` | signs settings changes; the settings-service refuses any change not signed with it (give it to these two services only) |
/// | `RUNPOD_ENDPOINT_URL`        | `https://api.runpod.ai/v2/black-forest-labs-flux-1-kontext-dev` | the RunPod endpoint the dispatcher uses (give both the same): a switch to the `runpod` backend is checked against its `/health` |
/// | `JOB_QUEUE_DEADLINE_SECONDS` | `86400` | how long an accepted job may wait to be submitted to a backend before the reaper ends it `timed_out` (give the prompt-service the same) |
/// | `JOB_FINISH_SLACK_SECONDS`   | `600`   | once submitted, how long past the dispatcher's deadline a job may take to be stored before the reaper ends it |
/// | `UPLOAD_MAX_PIXELS`          | `50000000` | the most pixels (width x height, from the header) an uploaded image may have: more is 413 `too_many_pixels` |
/// | `WEBHOOK_RATE_PER_SECOND`    | `50`    | calls a client address may make to the unauthenticated webhook route per second (a burst of twice that); more is 429 |
/// | `API_AUTH_FAILURE_BURST`     | `20`    | requests with a missing or wrong API token a client address may make at once; then 429 until its bucket refills |
/// | `API_AUTH_FAILURE_REFILL_SECONDS` | `10` | one more such request allowed per this many seconds |
/// | `JOB_REAPER_INTERVAL_SECONDS` | `15`   | how often the reaper (outbox and deadlines) looks at the ledger |
/// | `JOB_OUTBOX_AFTER_SECONDS`   | `60`    | a job still QUEUED this long after it was last touched has its request published again |
/// | `NOTIFY_ALLOWED_HOSTS`       | `*`     | where notifications may go (docs/notifications.md): `host:port` exactly, or `host` / `*` only at a public address, checked with the name resolved before every attempt |
/// | `NOTIFY_INTERVAL_MILLISECONDS` | `1000` | how often the sender looks for due notifications |
/// | `NOTIFY_TIMEOUT_SECONDS`     | `10`    | how long one attempt may take |
/// | `NOTIFY_RETRY_FIRST_SECONDS` | `10`    | the wait after the first failed attempt; each later one doubles, up to an hour |
/// | `NOTIFY_RETRY_FOR_SECONDS`   | `86400` | no attempt starts later than this after the job ended: the notification is then ABANDONED |
/// | `PURGE_FILE_GRACE_SECONDS`   | `900`   | a file of media deleted for good is erased only when not stored or touched for this long (longer than any upload or result takes from storing it to naming it; at least 60) |
/// | `PURGE_SWEEP_INTERVAL_SECONDS` | `300` | how often files kept back by the grace are looked at again, and the trash's keeping time applied |
/// | `UNNAMED_FILE_SCAN_HOURS`    | `24`    | how often the media folder is walked for stored files that no row names and nobody touched for a day (a crash between storing a file and naming it); they are queued for the sweeper; `0` never |
/// | `TRASH_KEEP_DAYS`            | `30`    | media in the trash this many days is deleted for good by itself (as "Delete for good" does); `0` keeps it until deleted by hand |
struct GatewayConfiguration: Sendable {
    var adminTokenFile: String?
    var mediaRoot: URL
    var signer: MediaURLSigner
    /// Seals the RunPod key before it goes to the settings-service (`CYCLORAMA_MASTER_KEY[_FILE]`).
    var secrets: SecretBox
    /// Signs the settings changes the admin makes (`SETTINGS_AUTHORITY_KEY[_FILE]`).
    var settingsAuthority: SettingsAuthority
    var queueDeadline: Duration = JobLedger.defaultQueueDeadline
    var finishSlack: Duration = JobLedger.defaultFinishSlack
    var reaperInterval: Duration = .seconds(15)
    var outboxAfter: Duration = .seconds(60)
    var runpodEndpointURL = RunPodEndpoint.fluxKontextDev
    var maxImagePixels = MediaController.defaultMaxImagePixels
    var webhookRatePerSecond = 50
    var authFailureBurst = 20
    var authFailureRefillSeconds = 10.0
    var notifyHosts = HostAllowList(["*"])
    var notifyInterval: Duration = .seconds(1)
    var notifyPolicy = NotificationPolicy()
    var purgeGrace: Duration = .seconds(900)
    var purgeSweepInterval: Duration = .seconds(300)
    /// How often the media folder is walked for files that nothing names; nil: never.
    var unnamedFileScanInterval: Duration? = .seconds(24 * 3600)
    /// How long a stored file must have gone untouched before a walk may queue it when nothing
    /// names it: far longer than any writer takes from storing a file to naming it.
    static let unnamedFileAge: Duration = .seconds(86_400)
    /// How long media stays in the trash before it is deleted for good; nil: until deleted by hand.
    var trashKeep: Duration? = .seconds(30 * 86_400)

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> GatewayConfiguration {
        var configuration = GatewayConfiguration(
            adminTokenFile: environment["CYCLORAMA_ADMIN_TOKEN_FILE"],
            mediaRoot: URL(fileURLWithPath: environment["MEDIA_ROOT"] ?? ".var/media"),
            signer: try MediaURLSigner.fromEnvironment(environment),
            secrets: try SecretBox.fromEnvironment(environment),
            settingsAuthority: try SettingsAuthority.fromEnvironment(environment))
        if let endpoint = try environment.parsed("RUNPOD_ENDPOINT_URL", expected: RunPodEndpoint.expected, RunPodEndpoint.normalized) {
            configuration.runpodEndpointURL = endpoint
        }
        if let deadline = try JobLedger.queueDeadline(environment) {
            configuration.queueDeadline = deadline
        }
        if let pixels = try environment.integer("UPLOAD_MAX_PIXELS", in: 1_000_000...500_000_000) {
            configuration.maxImagePixels = pixels
        }
        if let rate = try environment.integer("WEBHOOK_RATE_PER_SECOND", in: 1...100_000) {
            configuration.webhookRatePerSecond = rate
        }
        if let burst = try environment.integer("API_AUTH_FAILURE_BURST", in: 1...100_000) {
            configuration.authFailureBurst = burst
        }
        if let seconds = try environment.double("API_AUTH_FAILURE_REFILL_SECONDS", in: 0.001...3600) {
            configuration.authFailureRefillSeconds = seconds
        }
        if let seconds = try environment.integer("JOB_FINISH_SLACK_SECONDS", in: 10...86_400) {
            configuration.finishSlack = .seconds(seconds)
        }
        // At least a minute: the grace is what keeps a file that a writer stored, and has not named
        // in a row yet, from being erased under it.
        if let seconds = try environment.integer("PURGE_FILE_GRACE_SECONDS", in: 60...86_400) {
            configuration.purgeGrace = .seconds(seconds)
        }
        if let seconds = try environment.integer("PURGE_SWEEP_INTERVAL_SECONDS", in: 1...86_400) {
            configuration.purgeSweepInterval = .seconds(seconds)
        }
        if let hours = try environment.integer("UNNAMED_FILE_SCAN_HOURS", in: 0...8760) {
            configuration.unnamedFileScanInterval = hours == 0 ? nil : .seconds(hours * 3600)
        }
        if let days = try environment.integer("TRASH_KEEP_DAYS", in: 0...36_500) {
            configuration.trashKeep = days == 0 ? nil : .seconds(days * 86_400)
        }
        if let seconds = try environment.integer("JOB_REAPER_INTERVAL_SECONDS", in: 1...3600) {
            configuration.reaperInterval = .seconds(seconds)
        }
        if let seconds = try environment.integer("JOB_OUTBOX_AFTER_SECONDS", in: 1...3600) {
            configuration.outboxAfter = .seconds(seconds)
        }
        if let hosts = environment["NOTIFY_ALLOWED_HOSTS"] {
            configuration.notifyHosts = HostAllowList(list: hosts)
        }
        if let milliseconds = try environment.integer("NOTIFY_INTERVAL_MILLISECONDS", in: 10...60_000) {
            configuration.notifyInterval = .milliseconds(milliseconds)
        }
        if let seconds = try environment.double("NOTIFY_TIMEOUT_SECONDS", in: 0.1...60) {
            configuration.notifyPolicy.timeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = try environment.double("NOTIFY_RETRY_FIRST_SECONDS", in: 0.01...3600) {
            configuration.notifyPolicy.firstRetry = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = try environment.double("NOTIFY_RETRY_FOR_SECONDS", in: 1...7 * 86_400) {
            configuration.notifyPolicy.retryFor = .milliseconds(Int64(seconds * 1000))
        }
        return configuration
    }

    /// The job ledger with this gateway's deadlines.
    func ledger(_ client: PostgresClient) -> JobLedger {
        var ledger = JobLedger(client: client)
        ledger.queueDeadline = queueDeadline
        ledger.finishSlack = finishSlack
        return ledger
    }
}
