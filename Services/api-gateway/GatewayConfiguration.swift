import Foundation
import ServiceSupport

/// Settings particular to the gateway, from environment variables.
///
/// | variable                     | default | meaning |
/// |------------------------------|---------|---------|
/// | `CYCLORAMA_ADMIN_TOKEN_FILE` | unset   | a file holding an admin API token; its SHA-256 is stored at start-up so the token works (`make up` writes `.var/admin-token`) |
/// | `MEDIA_ROOT`                 | `.var/media` | where media files are stored (content-addressed) |
/// | `MEDIA_URL_SECRET[_FILE]`    | `.var/media-url-secret` | the secret of the signed, token-free `/media/<id>/file` links backends fetch (shared with prompt-service) |
/// | `CYCLORAMA_MASTER_KEY[_FILE]` | `.var/master-key` | the AES-GCM key secrets are sealed with (shared with settings-service and runpod-dispatcher) |
struct GatewayConfiguration: Sendable {
    var adminTokenFile: String?
    var mediaRoot: URL
    var signer: MediaURLSigner
    /// Seals the RunPod key before it goes to the settings-service (`CYCLORAMA_MASTER_KEY[_FILE]`).
    var secrets: SecretBox

    static func fromEnvironment(_ environment: EnvironmentVariables = .process) throws(ConfigurationError) -> GatewayConfiguration {
        GatewayConfiguration(
            adminTokenFile: environment["CYCLORAMA_ADMIN_TOKEN_FILE"],
            mediaRoot: URL(fileURLWithPath: environment["MEDIA_ROOT"] ?? ".var/media"),
            signer: try MediaURLSigner.fromEnvironment(environment),
            secrets: try SecretBox.fromEnvironment(environment))
    }
}
