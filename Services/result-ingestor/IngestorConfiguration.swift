import Foundation
import RunPod
import ServiceCore
import ServiceSupport
import Shared

/// Settings particular to the ingestor, from environment variables.
///
/// | variable                 | default | meaning |
/// |--------------------------|---------|---------|
/// | `MEDIA_ROOT`             | `.var/media` | where media files are stored (the gateway's root) |
/// | `INGEST_ALLOWED_HOSTS`   | `127.0.0.1:8090,localhost:8090` | hosts results of any backend may be downloaded from over http(s), comma-separated: `host:port` exactly, or `host` / `*` only at a public address (`HostAllowList`) |
/// | `INGEST_RUNPOD_RESULT_HOSTS` | `image.runpod.ai` | hosts results of RunPod jobs may also be downloaded from, over https only, by the same rules (`none`: no other host) |
/// | `RUNPOD_ENDPOINT_URL`    | `https://api.runpod.ai/v2/black-forest-labs-flux-1-kontext-dev` | the dispatcher's RunPod endpoint: results of RunPod jobs may also come from its own origin (scheme, host and port) |
/// | `INGEST_MAX_BYTES`       | `52428800` (50 MB) | largest result accepted |
/// | `INGEST_TIMEOUT_SECONDS` | `60`    | longest download |
/// | `INGEST_MAX_PIXELS`      | `100000000` | largest result (after upscaling) in pixels |
/// | `INGEST_RETRY_SECONDS`   | `300`   | how long after the backend finished a result host that does not answer (or answers 5xx / 429) is waited for before the job fails |
/// | `INGEST_HANDLING_LIMIT_SECONDS` | `180` (at least `INGEST_TIMEOUT_SECONDS` + 120) | longest one attempt at applying a result may take (download, checks, framing, storing, the transaction); past it the attempt is abandoned and the result retried |
struct IngestorConfiguration: Sendable {
    var mediaRoot = URL(fileURLWithPath: ".var/media")
    var allowedHosts = HostAllowList(["127.0.0.1:8090", "localhost:8090"])
    /// Where RunPod serves results (`output.image_url`); only for jobs RunPod ran, only over https.
    /// A name, so it is downloaded from only while it resolves to public addresses.
    var runpodResultHosts = HostAllowList(["image.runpod.ai"])
    /// The RunPod endpoint's origin (`scheme://host:port`): trusted as the endpoint is, so results of
    /// RunPod jobs may come from it too (a self-hosted worker or a test double serves them there).
    var runpodEndpointOrigin: String? = Self.origin(of: URL(string: RunPodEndpoint.fluxKontextDev)!)
    /// How many redirects a download follows, each to an allowed host.
    static let maxRedirects = 3
    var maxBytes = 50 << 20
    var timeout: Duration = .seconds(60)
    var maxPixels = 100_000_000
    var retryWindow: Duration = .seconds(300)
    var handlingLimit: Duration = .seconds(180)

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> IngestorConfiguration {
        var configuration = IngestorConfiguration()
        if let root = environment["MEDIA_ROOT"], !root.isEmpty { configuration.mediaRoot = URL(fileURLWithPath: root) }
        if let text = environment["INGEST_ALLOWED_HOSTS"] { configuration.allowedHosts = HostAllowList(list: text) }
        if let text = environment["INGEST_RUNPOD_RESULT_HOSTS"] {
            configuration.runpodResultHosts = HostAllowList(list: text.trimmingCharacters(in: .whitespaces).lowercased() == "none" ? "" : text)
        }
        if let endpoint = try environment.parsed("RUNPOD_ENDPOINT_URL", expected: RunPodEndpoint.expected, RunPodEndpoint.normalized),
           let url = URL(string: endpoint) {
            configuration.runpodEndpointOrigin = origin(of: url)
        }
        configuration.maxBytes = (try environment.integer("INGEST_MAX_BYTES", in: 1024...(1 << 30))) ?? 50 << 20
        configuration.timeout = .seconds((try environment.integer("INGEST_TIMEOUT_SECONDS", in: 1...3600) ?? 60))
        configuration.maxPixels = (try environment.integer("INGEST_MAX_PIXELS", in: 1...1_000_000_000) ?? 100_000_000)
        configuration.retryWindow = .seconds((try environment.integer("INGEST_RETRY_SECONDS", in: 1...86_400) ?? 300))
        // Unset: long enough for the longest download and the work after it.
        let download = Int(configuration.timeout.components.seconds)
        configuration.handlingLimit = .seconds((try environment.integer("INGEST_HANDLING_LIMIT_SECONDS", in: 10...7200) ?? max(180, download + 120)))
        guard configuration.handlingLimit > configuration.timeout else {
            throw ConfigurationError(
                variable: "INGEST_HANDLING_LIMIT_SECONDS",
                reason: "must be longer than INGEST_TIMEOUT_SECONDS (a download must fit in one attempt)")
        }
        return configuration
    }

    /// `scheme://host:port` of an http(s) URL (the default port written out), nil for anything else.
    static func origin(of url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        return "\(scheme)://\(host):\(url.connectionPort)"
    }

    /// How a result of a `backend` job at `url` may be downloaded, nil when it may not: http(s)
    /// from an allowed host, or for RunPod's jobs https from RunPod's result hosts or anything from
    /// the RunPod endpoint's own origin (which is trusted as the endpoint is: `.exact`). A host
    /// allowed only by name or `*` (`.publicOnly`) must still resolve to public addresses.
    func match(_ url: URL, from backend: GenerationBackend) -> HostAllowList.Match? {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        let port = url.connectionPort
        let listed = allowedHosts.match(host: host, port: port)
        guard backend == .runpod else { return listed }
        if listed == .exact || (runpodEndpointOrigin != nil && Self.origin(of: url) == runpodEndpointOrigin) { return .exact }
        let resultHost = scheme == "https" ? runpodResultHosts.match(host: host, port: port) : nil
        return resultHost == .exact ? .exact : (listed ?? resultHost)
    }

    /// Whether and where a result at `url` may be downloaded: refused when not on a list, or on one
    /// only by name or `*` and not at a public address; then as named, or at the address that was
    /// checked. Decided before anything connects.
    func clearance(
        _ url: URL, from backend: GenerationBackend,
        resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve
    ) async -> OutboundClearance {
        guard let match = match(url, from: backend) else {
            return .refused(OutboundRefusal(reason: "results are only downloaded over \(allowedHostsText(for: backend))", isTransient: false))
        }
        guard match == .publicOnly, let host = url.host else { return .asNamed }
        return await HostAllowList.addressClearance(host: host, port: url.connectionPort, variable: "INGEST_ALLOWED_HOSTS", resolve: resolve)
    }

    /// Whether the URL is on a list at all (the address rule aside).
    func allows(_ url: URL, from backend: GenerationBackend) -> Bool { match(url, from: backend) != nil }

    /// The hosts a `backend` job's result may come from, as a refusal names them.
    func allowedHostsText(for backend: GenerationBackend) -> String {
        var text = "http(s) from INGEST_ALLOWED_HOSTS (\(allowedHosts))"
        if backend == .runpod, !runpodResultHosts.entries.isEmpty {
            text += " or https from INGEST_RUNPOD_RESULT_HOSTS (\(runpodResultHosts))"
        }
        if backend == .runpod, let runpodEndpointOrigin { text += " or the RunPod endpoint's origin (\(runpodEndpointOrigin))" }
        return text
    }
}
