import Foundation
import ServiceCore

/// The Redis keys services share about generation jobs. One place, so writer and reader agree.
public enum JobKeys {
    /// Set (by the gateway) when someone cancelled the job; the dispatcher then cancels it at the backend.
    public static func cancelled(_ jobId: UUID) -> String { "cyclorama:job:\(jobId.uuidString.lowercased()):cancelled" }

    /// The dispatcher's record of a job it follows (``DispatchRecord`` JSON): which backend job it is.
    public static func dispatch(_ jobId: UUID) -> String { "cyclorama:job:\(jobId.uuidString.lowercased()):dispatch" }

    /// The token of the dispatcher instance following the job (short-lived, renewed while it follows).
    public static func owner(_ jobId: UUID) -> String { "cyclorama:job:\(jobId.uuidString.lowercased()):owner" }

    /// RunPod (or local engine) job id → `{mediaId, jobId, attempt}`, for webhooks and operators.
    public static func backendJob(_ backend: String, _ backendJobId: String) -> String {
        "cyclorama:backend-job:\(backend):\(backendJobId)"
    }

    /// The sorted set of leases of the global concurrency limit (member: job id, score: lease expiry in ms).
    public static let concurrencyLeases = "cyclorama:dispatch:leases"

    /// How long the cancel flag is kept.
    public static let cancelFlagLifetime: Duration = .seconds(7 * 24 * 3600)
}
