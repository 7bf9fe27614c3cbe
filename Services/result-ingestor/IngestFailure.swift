import Shared

/// Why a result cannot be used. A `transient` one (the result host does not answer, or answers
/// 5xx / 429) is waited for until ``IngestorConfiguration/retryWindow`` after the backend finished;
/// `expired` means the backend no longer has it (404 / 410).
struct IngestFailure: Error, CustomStringConvertible {
    var reason: String
    var transient: Bool
    var expired = false
    /// The job's failure code when it is not `invalid_output` (or `result_expired`).
    var code: FailureCode? = nil
    var description: String { reason }
}
