import Foundation
import Logging
import Redis
import ServiceSupport
import Testing
import TestSupport

/// Redis loses its data (a replaced instance, a failover to a replica that lagged, `FLUSHALL`)
/// while RunPod jobs are out, and the dispatcher that followed them dies: whoever takes the jobs
/// next must not submit them again — a second paid run (docs/reliability.md, "A submission is
/// recorded before it is sent"). The ledger keeps a copy of each RunPod job's record. Before
/// 2026-12-08 the record lived in Redis alone, and both jobs below were sent to RunPod twice.
@Suite("Redis loses its data while RunPod jobs are out", .timeLimit(.minutes(5)))
struct RedisWipeTests {
    @Test func jobsAtRunPodAreFollowedOrEndedButNeverSentTwice() async throws {
        // Its own Redis, past the fault lanes' ports and the other fault tests' servers.
        let scenarios: [String: RunPodStandIn.Scenario] = [
            "accepted": .init(jobs: [[.holdUntilReleased]]),
            "unanswered": .init(jobs: [[.holdUntilReleased]]),
        ]
        try await RunPodOnItsOwnRedis.run("redis-wipe", place: 3, scenarios: scenarios) { system, standIn, redis in
            let store = RedisClient(configuration: try RedisConfiguration(url: redis.servers.redisURL), logger: Logger(label: "test.redis"))
            defer { Task { await store.shutdown() } }

            // One job RunPod accepted, its id in the record.
            let firstMedia = try await system.upload(try Samples.bytes("dev04", "input.jpg"))
            let accepted = try await generate(system, firstMedia, scenario: "accepted")
            try await eventually("the accepted job's id is in its record", timeout: .seconds(60)) {
                (try? await store.get(JobKeys.dispatch(accepted)))??.contains("backendJobId") == true
            }
            // One whose /run reached RunPod and whose answer never came back: only the intent is recorded.
            standIn.inject { $0.holdRunAnswers = true }
            let secondMedia = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
            let unanswered = try await generate(system, secondMedia, scenario: "unanswered")
            try await eventually("the second /run reached the stand-in", timeout: .seconds(60)) { standIn.runs("unanswered").count == 1 }

            await system.crash("runpod-dispatcher")
            #expect(try await store.command(["FLUSHALL"]) == .status("OK"), "Redis emptied")
            #expect(try await store.get(JobKeys.dispatch(accepted)) == nil)
            standIn.inject { $0.holdRunAnswers = false }
            try system.launch("runpod-dispatcher")
            try await system.waitUntilHealthy("runpod-dispatcher")
            standIn.release("accepted")

            let done = try await system.waitForTerminal(accepted.uuidString)
            #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
            #expect(standIn.runs("accepted").count == 1, "the accepted job was followed, not sent again")
            let versions = try #require(try await system.call(.GET, "/api/media/\(firstMedia)/versions").json()["versions"] as? [[String: Any]])
            #expect(versions.count == 2, "one new version")

            // Nothing names the unanswered run (no webhooks): it ends saying so, and is not sent twice.
            let lost = try await system.waitForTerminal(unanswered.uuidString)
            #expect(lost["status"] as? String == "FAILED", "\(lost)")
            #expect((lost["error"] as? [String: Any])?["code"] as? String == "submission_unconfirmed", "\(lost)")
            #expect(standIn.runs("unanswered").count == 1, "the unanswered job was not sent again")
            let log = try #require(system.process("runpod-dispatcher")).log(ownOnly: true)
            #expect(log.components(separatedBy: "continuing from the copy").count - 1 == 2, "both records came from the ledger")
        }
    }

    private func generate(_ system: CycloramaSystem, _ mediaId: String, scenario: String) async throws -> UUID {
        let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(scenario)"}"#)
        let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.status) \(answer.text)")
        return try #require(UUID(uuidString: jobId))
    }
}
