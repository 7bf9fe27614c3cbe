import Database
import Foundation
import Logging
import Messaging
import Shared

/// Ends generation jobs that cannot go on: the one way every service fails a job.
///
/// The terminal GenerationFailed goes to `cyclorama.events` (confirmed; the gateway's ledger
/// follows it) and to the requester's `replyTo` (best effort). The ledger keeps the first terminal
/// state, so ending a job twice is harmless; ``giveUp`` still checks it first, so that a
/// requester never hears "failed" after "completed".
public struct JobEnding: Sendable {
    let broker: AMQPConnection
    let ledger: JobLedger?
    let logger: Logger

    /// - Parameter ledger: read by ``giveUp`` to skip jobs that already ended; nil: always publish.
    public init(broker: AMQPConnection, ledger: JobLedger?, logger: Logger) {
        self.broker = broker
        self.ledger = ledger
        self.logger = logger
    }

    /// Publishes the job's GenerationFailed (events, then `replyTo`).
    public func fail(
        _ message: some JobMessage, code: FailureCode, reason: String, retryable: Bool, backendJobId: String? = nil
    ) async throws {
        logger.warning("job failed", metadata: ["jobId": "\(message.jobId)", "code": "\(code)", "reason": "\(reason)"])
        let failed = GenerationFailed(ending: message, code: code, reason: reason, retryable: retryable, backendJobId: backendJobId)
        try await broker.publishTerminal(failed, replyTo: message.replyTo, logger: logger)
    }

    /// The give-up step of a ``MessageConsumer`` of job messages: a message that is about to be
    /// dead-lettered ends its job (`retries_exhausted`, or `invalid_request` when the handler refused
    /// it), unless the ledger says the job has ended already.
    public func giveUp<M: JobMessage>(_ type: M.Type = M.self) -> @Sendable (M, GiveUp) async throws -> Void {
        { message, giveUp in
            if let ledger, let job = try await ledger.job(message.jobId), job.status.isTerminal {
                logger.info("given-up message's job had ended already", metadata: ["jobId": "\(message.jobId)", "status": "\(job.status.rawValue)"])
                return
            }
            try await fail(
                message, code: giveUp.exhausted ? .retriesExhausted : .invalidRequest,
                reason: "\(M.messageType.rawValue) given up: \(giveUp.reason)", retryable: true)
        }
    }
}
