import Database
import ServiceCore

extension JobLedger {
    /// `JOB_QUEUE_DEADLINE_SECONDS`: how long an accepted job may wait to be submitted to a backend
    /// before the reaper ends it `timed_out` (nil: unset, ``defaultQueueDeadline``). Read by every
    /// service that writes ledger rows (the gateway at intake, the prompt-service for a job published
    /// straight onto the broker), so give them the same value.
    public static func queueDeadline(_ environment: EnvironmentVariables) throws(ConfigurationError) -> Duration? {
        try environment.integer("JOB_QUEUE_DEADLINE_SECONDS", in: 10...(30 * 86_400)).map { .seconds($0) }
    }
}
