import RunPod
import Shared
import Foundation
import Timing

/// Everything the engine knows about one job; lives inside ``JobStore``.
struct JobRecord: Sendable {
    let id: String
    let endpointId: String
    /// `scheme://host[:port]` that `output.image_url` starts with.
    let baseURL: String
    let webhook: String?
    let policy: JobPolicy
    /// Bytes of the submitted body, counted against the queue's byte budget while queued.
    let requestBytes: Int
    /// The input as sent; dropped once the job can no longer be retried (it may hold a 10 MB data URI).
    var input: JSONValue?
    /// The validated input, or why it is invalid.
    var options: Result<StudioShotInput, JobFailure>
    var status: JobStatus = .inQueue
    var attempt = 1
    var submittedAt: ContinuousClock.Instant
    var startedAt: ContinuousClock.Instant?
    var finishedAt: ContinuousClock.Instant?
    var result: RenderedSummary?
    var error: String?
    /// Stops the running attempt's work (its task); set while IN_PROGRESS.
    var abort: (@Sendable () -> Void)?
    /// The submission's `Idempotency-Key`, if it had one.
    var idempotencyKey: String?
    /// What `/stream` hands out, in order (`{"output": ...}` chunks: the stages the attempt reached,
    /// then its final output), and how many of them were handed out already.
    var stream: [JSONValue] = []
    var streamed = 0

    /// The result file, when COMPLETED.
    var resultKey: ResultKey? {
        guard status == .completed, let result else { return nil }
        return ResultKey(id: id, attempt: attempt, format: result.format)
    }

    /// The result file to inline as `output.image_base64`, when the job asked for it.
    var inlineImage: ResultKey? { result?.returnBase64 == true ? resultKey : nil }

    /// What `/status` shows; `output.image_base64` is filled in by the caller from the result file.
    func statusBody(workerId: String) -> JobStatusBody {
        var body = JobStatusBody(id: id, status: status)
        if let startedAt {
            body.delayTime = (startedAt - submittedAt).wholeMilliseconds
            body.workerId = workerId
            if let finishedAt { body.executionTime = (finishedAt - startedAt).wholeMilliseconds }
        } else if let finishedAt {
            body.delayTime = (finishedAt - submittedAt).wholeMilliseconds
            body.executionTime = 0
        }
        if status == .completed, let result {
            body.output = StudioShotOutput(
                imageURL: "\(baseURL)/v2/\(Self.pathEscaped(endpointId))/results/\(id).\(result.format)",
                imageBase64: nil, width: result.width, height: result.height, format: result.format,
                cost: 0, timings: result.timings)
        }
        body.error = error
        return body
    }

    /// The status body plus what RunPod's webhook adds: `input` (a data URI's payload elided) and `webhook`.
    func webhookBody(workerId: String) -> JobStatusBody {
        var body = statusBody(workerId: workerId)
        body.webhook = webhook
        if case .object(var fields)? = input {
            if case .string(let image)? = fields["image"], image.hasPrefix("data:"), let comma = image.firstIndex(of: ",") {
                fields["image"] = .string("\(image[...comma])...(\(image.utf8.count) characters elided)")
            }
            body.input = .object(fields)
        } else {
            body.input = input
        }
        return body
    }

    /// Whether the job has outlived `policy.ttl` (queued or running) or the result retention (finished).
    func isExpired(at now: ContinuousClock.Instant, resultTTL: Duration) -> Bool {
        if let finishedAt, status.isTerminal { return now - finishedAt >= resultTTL }
        return now - submittedAt >= .milliseconds(policy.ttl)
    }

    static func pathEscaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }
}

/// A finished render, without the pixels (those are in ``ResultFiles``).
struct RenderedSummary: Sendable, Equatable {
    var width: Int
    var height: Int
    var format: String
    var timings: [String: Int]
    /// Whether `/status` inlines the image as `output.image_base64`.
    var returnBase64: Bool
}

/// A job handed to a worker.
struct JobTicket: Sendable {
    let id: String
    let attempt: Int
    let options: Result<StudioShotInput, JobFailure>
    let executionTimeout: Duration
}

/// A status body and, when the image must be inlined, the result file to read.
public struct JobView: Sendable {
    public var body: JobStatusBody
    /// Set when `output.image_base64` must be filled from this result file.
    public var inlineImage: ResultKey?
}
