import Foundation

/// A command or event that carries a whole generation job along: what is needed to end that job
/// with a terminal event wherever the message is when the job has to end (a consumer giving up, a
/// deadline, a cancel).
public protocol JobMessage: CycloramaMessage {
    var jobId: UUID { get }
    var mediaId: UUID { get }
    var kind: GenerationKind { get }
    var batchId: UUID? { get }
    var variationName: String? { get }
    /// Where the requester wants the terminal event as well.
    var replyTo: ReplyAddress? { get }
}

extension RequestGeneration: JobMessage {}
extension DispatchGeneration: JobMessage {}
extension GenerationRendered: JobMessage {}

extension GenerationFailed {
    /// The terminal failure of the job `message` belongs to. `reason` is cut to the 2000 characters
    /// the contract allows.
    public init(
        ending message: some JobMessage, code: FailureCode, reason: String, retryable: Bool, backendJobId: String? = nil
    ) {
        self.init(
            correlationId: message.correlationId, jobId: message.jobId, mediaId: message.mediaId, kind: message.kind,
            batchId: message.batchId, variationName: message.variationName, backendJobId: backendJobId,
            reason: String(reason.prefix(2000)), code: code, retryable: retryable)
    }
}
