import Foundation
import RunPod
import Shared
import Testing

/// The one model of RunPod's protocol reads what RunPod sends, as RUNPOD.md records it.
@Suite("RunPod protocol model")
struct RunPodModelTests {
    private func decode(_ json: String) throws -> RunPodJob<JSONValue> {
        try JSONDecoder().decode(RunPodJob<JSONValue>.self, from: Data(json.utf8))
    }

    @Test func aFailedJobsReasonIsReadFromATextAJSONTextOrAnObject() throws {
        let plain = try decode(#"{"id": "a", "status": "FAILED", "error": "CUDA out of memory"}"#)
        #expect(plain.failureReason == "CUDA out of memory")
        let nested = try decode(#"{"id": "a", "status": "FAILED", "error": "{\"error_type\": \"x\", \"error_message\": \"Invalid image URL\"}"}"#)
        #expect(nested.failureReason == "Invalid image URL")
        let object = try decode(#"{"id": "a", "status": "FAILED", "error": {"error_type": "x", "error_message": "bad input"}}"#)
        #expect(object.failureReason == "bad input")
        let none = try decode(#"{"id": "a", "status": "TIMED_OUT"}"#)
        #expect(none.failureReason == "the backend reported TIMED_OUT without a reason")
    }

    @Test func statusesAreAnOpenSetWithRunningAsInProgress() throws {
        #expect(try decode(#"{"id": "a", "status": "RUNNING"}"#).status.isRunning)
        #expect(try decode(#"{"id": "a", "status": "IN_PROGRESS", "output": {"progress": "4/10"}}"#).progress == "4/10")
        let unknown = try decode(#"{"id": "a", "status": "PAUSED_BY_OPERATOR"}"#)
        #expect(unknown.status.rawValue == "PAUSED_BY_OPERATOR" && !unknown.status.isTerminal && !unknown.status.isRunning)
        for terminal in ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] {
            #expect(RunPodJobStatus(rawValue: terminal).isTerminal, "\(terminal)")
        }
        #expect(!RunPodJobStatus.inQueue.isTerminal)
    }

    @Test func theResultIsImageURLOrResult() throws {
        #expect(try decode(#"{"id": "a", "status": "COMPLETED", "output": {"image_url": "https://image.runpod.ai/x.png", "cost": 0.025}}"#)
            .resultURL == "https://image.runpod.ai/x.png")
        #expect(try decode(#"{"id": "a", "status": "COMPLETED", "output": {"result": "https://r/x.png"}}"#).resultURL == "https://r/x.png")
        #expect(try decode(#"{"id": "a", "status": "COMPLETED", "output": null}"#).resultURL == nil)
    }

    @Test func aPolicyFollowsTheDeadlineButNeverFallsBelowRunPodsMinimums() {
        let long = RunPodPolicy(deadline: .seconds(900))
        #expect(long.executionTimeout == 900_000 && long.ttl == 900_000 && long.refusal == nil)
        let short = RunPodPolicy(deadline: .seconds(6))
        #expect(short.executionTimeout == 6_000 && short.ttl == 10_000 && short.refusal == nil)
        let tiny = RunPodPolicy(deadline: .milliseconds(1500))
        #expect(tiny.executionTimeout == 6_000 && tiny.ttl == 10_000 && tiny.refusal == nil)
        // RunPod wants more than 5 s: exactly 5 s is refused, so a 5-second deadline sends 6 s.
        #expect(RunPodPolicy(deadline: .seconds(5)).executionTimeout == 6_000)
        #expect(RunPodPolicy(executionTimeout: 5_000, ttl: 60_000).refusal?.contains("executionTimeout") == true)
        #expect(RunPodPolicy(executionTimeout: 5_001, ttl: 60_000).refusal == nil)
        #expect(RunPodPolicy(executionTimeout: 60_000, ttl: 9_999).refusal?.contains("ttl") == true)
    }
}
