import Foundation
import Testing
import TestSupport

/// Redis killed in the instant after RunPod accepted a `/run`, before the dispatcher saved the
/// backend's job id: the job is followed under that id and completes once (docs/reliability.md,
/// "A submission whose answer was lost"). Before, the follower gave up on the failed save; whoever
/// took the job next found only the intent, could not tell the job was out (no webhooks), and ended
/// it `submission_unconfirmed` while the stand-in ran it to its end unfollowed: what the fault
/// suite's `redis kill -9` round met once by chance.
@Suite("A submission accepted while Redis dies", .timeLimit(.minutes(5)))
struct AcceptedSubmissionTests {
    @Test func theAcceptedJobIsFollowedOnceRedisIsBack() async throws {
        // Its own Redis, past the fault lanes' ports and the database test's.
        let scenarios: [String: RunPodStandIn.Scenario] = [
            "answer": .init(jobs: [[.inProgress("1/2"), .completed(["image_url": "$RESULT", "cost": 0.025])]])
        ]
        try await RunPodOnItsOwnRedis.run("accepted-submission", place: 2, scenarios: scenarios) { system, standIn, redis in
            let mediaId = try await system.upload(try Samples.bytes("dev04", "input.jpg"))
            standIn.inject { $0.holdRunAnswers = true }
            let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:answer"}"#)
            let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.status) \(answer.text)")
            try await eventually("the /run reached the stand-in", timeout: .seconds(60)) { standIn.runs("answer").count == 1 }
            // The job exists at the backend; its answer goes out to a dispatcher whose Redis is gone.
            try await redis.kill(.redis)
            standIn.inject { $0.holdRunAnswers = false }
            let dispatcher = try #require(system.process("runpod-dispatcher"))
            try await eventually("the dispatcher could not record the accepted submission", timeout: .seconds(30)) {
                dispatcher.log().contains("could not record the accepted submission")
            }
            try await redis.start(.redis)

            let done = try await system.waitForTerminal(jobId)
            #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
            #expect(standIn.runs("answer").count == 1, "submitted once")
            let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
            #expect(versions.count == 2, "one new version")
        }
    }
}
