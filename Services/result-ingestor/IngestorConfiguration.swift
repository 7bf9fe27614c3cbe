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
/// | `INGEST_ALLOWED_HOSTS`   | `127.0.0.1:8090,localhost:8090` | hosts results of any backend may be downloaded from over http(s) (`host` or `host:port`, comma-separated) |
/// | `INGEST_RUNPOD_RESULT_HOSTS` | `image.runpod.ai` | hosts results of RunPod jobs may also be downloaded from, over https only (`none`: no other host) |
/// | `RUNPOD_ENDPOINT_URL`    | `https://api.runpod.ai/v2/black-forest-labs-flux-1-kontext-dev` | the dispatcher's RunPod endpoint: results of RunPod jobs may also come from its own origin (scheme, host and port) |
/// | `INGEST_MAX_BYTES`       | `52428800` (50 MB) | largest result accepted |
/// | `INGEST_TIMEOUT_SECONDS` | `60`    | longest download |
/// | `INGEST_MAX_PIXELS`      | `100000000` | largest result (after upscaling) in pixels |
/// | `INGEST_RETRY_SECONDS`   | `300`   | how long after the backend finished a result host that does not answer (or answers 5xx / 429) is waited for before the job fails |
struct IngestorConfiguration: Sendable {
    var mediaRoot = URL(fileURLWithPath: ".var/media")
    var allowedHosts = ["127.0.0.1:8090", "localhost:8090"]
    /// Where RunPod serves results (`output.image_url`); only for jobs RunPod ran, only over https.
    var runpodResultHosts = ["image.runpod.ai"]
    /// The RunPod endpoint's origin (`scheme://host:port`): trusted as the endpoint is, so results of
    /// RunPod jobs may come from it too (a self-hosted worker or a test double serves them there).
    var runpodEndpointOrigin: String? = Self.origin(of: URL(string: RunPodEndpoint.fluxKontextDev)!)
    /// How many redirects a download follows, each to an allowed host.
    static let maxRedirects = 3
    var maxBytes = 50 << 20
    var timeout: Duration = .seconds(60)
    var maxPixels = 100_000_000
    var retryWindow: Duration = .seconds(300)

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> IngestorConfiguration {
        var configuration = IngestorConfiguration()
        if let root = environment["MEDIA_ROOT"], !root.isEmpty { configuration.mediaRoot = URL(fileURLWithPath: root) }
        func hosts(_ text: String) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        }
        if let text = environment["INGEST_ALLOWED_HOSTS"] { configuration.allowedHosts = hosts(text) }
        if let text = environment["INGEST_RUNPOD_RESULT_HOSTS"] {
            configuration.runpodResultHosts = text.trimmingCharacters(in: .whitespaces).lowercased() == "none" ? [] : hosts(text)
        }
        if let endpoint = try environment.parsed("RUNPOD_ENDPOINT_URL", expected: RunPodEndpoint.expected, RunPodEndpoint.normalized),
           let url = URL(string: endpoint) {
            configuration.runpodEndpointOrigin = origin(of: url)
        }
        configuration.maxBytes = (try environment.integer("INGEST_MAX_BYTES", in: 1024...(1 << 30))) ?? 50 << 20
        configuration.timeout = .seconds((try environment.integer("INGEST_TIMEOUT_SECONDS", in: 1...3600) ?? 60))
        configuration.maxPixels = (try environment.integer("INGEST_MAX_PIXELS", in: 1...1_000_000_000) ?? 100_000_000)
        configuration.retryWindow = .seconds((try environment.integer("INGEST_RETRY_SECONDS", in: 1...86_400) ?? 300))
        return configuration
    }

    /// `scheme://host:port` of an http(s) URL (the default port written out), nil for anything else.
    static func origin(of url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        return "\(scheme)://\(host):\(url.port ?? (scheme == "https" ? 443 : 80))"
    }

    /// Whether a result of a `backend` job at `url` may be downloaded: http(s) from an allowed
    /// `host` or `host:port`, or for RunPod's jobs https from RunPod's result hosts or anything
    /// from the RunPod endpoint's own origin.
    func allows(_ url: URL, from backend: GenerationBackend) -> Bool {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return false }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        func listed(_ hosts: [String]) -> Bool { hosts.contains { $0 == "*" || $0 == host || $0 == "\(host):\(port)" } }
        if listed(allowedHosts) { return true }
        guard backend == .runpod else { return false }
        return (scheme == "https" && listed(runpodResultHosts)) || (runpodEndpointOrigin != nil && Self.origin(of: url) == runpodEndpointOrigin)
    }

    /// The hosts a `backend` job's result may come from, as a refusal names them.
    func allowedHostsText(for backend: GenerationBackend) -> String {
        var text = "http(s) from INGEST_ALLOWED_HOSTS (\(allowedHosts.joined(separator: ", ")))"
        if backend == .runpod, !runpodResultHosts.isEmpty {
            text += " or https from INGEST_RUNPOD_RESULT_HOSTS (\(runpodResultHosts.joined(separator: ", ")))"
        }
        if backend == .runpod, let runpodEndpointOrigin { text += " or the RunPod endpoint's origin (\(runpodEndpointOrigin))" }
        return text
    }
}
