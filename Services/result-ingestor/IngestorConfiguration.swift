import Foundation
import ServiceSupport

/// Settings particular to the ingestor, from environment variables.
///
/// | variable                 | default | meaning |
/// |--------------------------|---------|---------|
/// | `MEDIA_ROOT`             | `.var/media` | where media files are stored (the gateway's root) |
/// | `INGEST_ALLOWED_HOSTS`   | `127.0.0.1:8090,localhost:8090` | hosts results may be downloaded from (`host` or `host:port`, comma-separated); add RunPod's result host when using RunPod |
/// | `INGEST_MAX_BYTES`       | `52428800` (50 MB) | largest result accepted |
/// | `INGEST_TIMEOUT_SECONDS` | `60`    | longest download |
/// | `INGEST_MAX_PIXELS`      | `100000000` | largest result (after upscaling) in pixels |
/// | `INGEST_RETRY_SECONDS`   | `300`   | how long after the backend finished a result host that does not answer (or answers 5xx / 429) is waited for before the job fails |
struct IngestorConfiguration: Sendable {
    var mediaRoot = URL(fileURLWithPath: ".var/media")
    var allowedHosts = ["127.0.0.1:8090", "localhost:8090"]
    var maxBytes = 50 << 20
    var timeout: Duration = .seconds(60)
    var maxPixels = 100_000_000
    var retryWindow: Duration = .seconds(300)

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> IngestorConfiguration {
        var configuration = IngestorConfiguration()
        if let root = environment["MEDIA_ROOT"], !root.isEmpty { configuration.mediaRoot = URL(fileURLWithPath: root) }
        if let hosts = environment["INGEST_ALLOWED_HOSTS"] {
            configuration.allowedHosts = hosts.split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        }
        configuration.maxBytes = (try environment.integer("INGEST_MAX_BYTES", in: 1024...(1 << 30))) ?? 50 << 20
        configuration.timeout = .seconds((try environment.integer("INGEST_TIMEOUT_SECONDS", in: 1...3600) ?? 60))
        configuration.maxPixels = (try environment.integer("INGEST_MAX_PIXELS", in: 1...1_000_000_000) ?? 100_000_000)
        configuration.retryWindow = .seconds((try environment.integer("INGEST_RETRY_SECONDS", in: 1...86_400) ?? 300))
        return configuration
    }

    /// Whether a result at `url` may be downloaded: http(s) from an allowed `host` or `host:port`.
    func allows(_ url: URL) -> Bool {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else { return false }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return allowedHosts.contains { $0 == "*" || $0 == host || $0 == "\(host):\(port)" }
    }
}
