import Foundation
import Logging
import Redis
import ServiceSupport
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// `kill -9` of a service in the middle of a job loses nothing and does nothing twice.
    @Suite("Crashes", .timeLimit(.minutes(15)))
    struct CrashTests {
        @Test func aDispatcherKilledWhileTheJobIsAtTheBackendReattachesAndTheJobCompletesOnce() async throws {
            // The engine in its benchmark mode holds the job until the new dispatcher has re-attached
            // to it, so the kill lands while it is there however slowly the job's status reaches the
            // test (timed jobs made a window: 8 s was too narrow).
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
                try system.holdEngineJobs()
                let mediaId = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                try await waitForStatus(system, jobId, in: ["SUBMITTED", "IN_PROGRESS"])

                await system.crash("runpod-dispatcher")
                try system.launch("runpod-dispatcher")
                try await system.waitUntilHealthy("runpod-dispatcher")
                try await eventually("the new dispatcher re-attached to the held job", timeout: .seconds(90)) {
                    system.process("runpod-dispatcher")?.log(ownOnly: true).contains("re-attaching") == true
                }
                try system.releaseEngineJobs()

                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 2, "one new version")
                #expect(versions.filter { $0["jobId"] as? String == jobId }.count == 1)
                // Submitted once: the new instance re-attached to the engine's job instead of sending it again.
                let health = try await system.engineHealth().json()
                let jobs = try #require(health["jobs"] as? [String: Any])
                let total = ["completed", "failed", "inProgress", "inQueue"].compactMap { jobs[$0] as? Int }.reduce(0, +)
                #expect(total == 1, "the engine saw exactly one job: \(jobs)\n\(system.logs())")
                #expect(system.process("runpod-dispatcher")?.log(ownOnly: true).contains("re-attaching") == true, "the new dispatcher re-attached")
            }
        }

        @Test func anIngestorKilledDuringTheDownloadCompletesTheJobOnceWithOneNewVersion() async throws {
            // A RunPod stand-in whose first result download hangs, so the ingestor is killed mid-download.
            let standIn = try await RunPodStandIn(scenarios: [
                "slow": .init(jobs: [[.inProgress("1/2"), .completed(["image_url": "$RESULT", "cost": 0.025])]], firstDownloadDelay: .seconds(20))
            ])
            try await CycloramaSystem.run(
                without: ["local-engine"],
                overrides: standIn.overrides()
            ) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": RunPodBackendTests.apiKey])
                let mediaId = try await system.upload(try Samples.bytes("dev04", "input.jpg"))
                let jobId = try #require(
                    try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:slow"}"#)
                        .json()["jobId"] as? String)
                let deadline = ContinuousClock.now + .seconds(60)
                while standIn.downloads("slow") == 0 {
                    guard ContinuousClock.now < deadline else { throw FixtureError(message: "no download started\n\(system.logs())") }
                    try await Task.sleep(for: .milliseconds(50))
                }
                await system.crash("result-ingestor")
                try system.launch("result-ingestor")
                try await system.waitUntilHealthy("result-ingestor")

                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                #expect(standIn.downloads("slow") == 2, "downloaded again after the crash")
                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 2, "exactly one new version: \(versions.map { $0["source"] ?? "-" })")
                #expect(standIn.runs("slow").count == 1, "submitted once")
            }
            await standIn.stop()
        }

        /// A deploy stops the dispatcher (SIGTERM) while a `/run` to RunPod waits for its answer. The
        /// shutdown hands the job back, but the `/run` is not cut short: a request cancelled in
        /// flight may have reached RunPod all the same, and its answer, recorded, is what lets the
        /// next dispatcher follow the job. Before 2026-12-08 the call was cancelled, and without
        /// webhooks the job ended `submission_unconfirmed` while RunPod ran it.
        @Test func aDispatcherStoppedWhileItsRunAwaitsTheAnswerRecordsItAndTheJobCompletesOnce() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "deploy": .init(jobs: [[.inProgress("1/2"), .completed(["image_url": "$RESULT", "cost": 0.025])]])
            ])
            // The shutdown's grace (3 s in tests) bounds how long the answer may take: long enough
            // here that a busy machine's second or two before the test lets it go do not matter.
            try await CycloramaSystem.run(
                without: ["local-engine"],
                overrides: standIn.overrides(dispatcher: ["SHUTDOWN_GRACE_SECONDS": "30"])
            ) { system in
                // No webhooks: nothing but the record says where the job is.
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": RunPodBackendTests.apiKey])
                let mediaId = try await system.upload(try Samples.bytes("dev04", "input.jpg"))
                standIn.inject { $0.holdRunAnswers = true }
                let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:deploy"}"#)
                let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.status) \(answer.text)")
                try await eventually("the /run reached the stand-in", timeout: .seconds(60)) { standIn.runs("deploy").count == 1 }

                let dispatcher = try #require(system.process("runpod-dispatcher"))
                let stopped = Task { await dispatcher.stop(signal: SIGTERM, timeout: .seconds(45)) }
                // The answer is let go once the shutdown reached the follow (its cancel is logged), and
                // later than the job's ownership would last unrenewed (10 s): the ownership is kept
                // while the answer is awaited, or its record could not be saved.
                try await eventually("the shutdown reached the follow while /run is out", timeout: .seconds(20)) {
                    dispatcher.log(ownOnly: true).contains("shutting down while /run is out")
                }
                try await Task.sleep(for: .seconds(12))
                standIn.inject { $0.holdRunAnswers = false }
                let exit = await stopped.value
                #expect(exit != nil, "the dispatcher exited")
                #expect(dispatcher.log(ownOnly: true).contains("[RunPodDispatcher] submitted"), "the answer was recorded on the way out\n\(dispatcher.log(ownOnly: true))")

                try system.launch("runpod-dispatcher")
                try await system.waitUntilHealthy("runpod-dispatcher")
                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                #expect(standIn.runs("deploy").count == 1, "sent once")
                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 2, "one new version")
            }
            await standIn.stop()
        }

        /// A cancel is written to the ledger first and then flagged in Redis, which is how a running
        /// follower hears of it. A cancel made while Redis was away (or a flag Redis lost) has no
        /// flag: the dispatcher that takes the dispatch afterwards must still not submit it.
        @Test func aJobCancelledWithoutItsRedisFlagIsNeverSubmitted() async throws {
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
                await system.crash("runpod-dispatcher")
                let mediaId = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                let job = try #require(UUID(uuidString: jobId))
                // The prompt-service made the dispatch; nobody takes it while the dispatcher is down.
                try await waitForStatus(system, jobId, in: ["PROMPTING"])
                let cancel = try await system.call(.POST, "/api/ai-image/jobs/\(jobId)/cancel", json: "{}")
                #expect(cancel.status == 200, "\(cancel.text)")
                let redis = RedisClient(configuration: try RedisConfiguration(url: system.servers.redisURL), logger: Logger(label: "test.redis"))
                #expect(try await redis.delete(JobKeys.cancelled(job)) == 1, "the gateway flagged the cancel")

                try system.launch("runpod-dispatcher")
                try await system.waitUntilHealthy("runpod-dispatcher")
                try await eventually("the dispatcher took the dispatch and ended it", timeout: .seconds(60)) {
                    (try? await redis.get(JobKeys.dispatch(job)))??.contains("\"finished\":true") == true
                }
                let health = try await system.engineHealth().json()
                let jobs = try #require(health["jobs"] as? [String: Any])
                let total = ["completed", "failed", "inProgress", "inQueue"].compactMap { jobs[$0] as? Int }.reduce(0, +)
                #expect(total == 0, "nothing was submitted: \(jobs)\n\(system.logs())")
                #expect(try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String == "CANCELLED")
            }
        }

        private func waitForStatus(_ system: CycloramaSystem, _ jobId: String, in wanted: Set<String>) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            var last = ""
            while ContinuousClock.now < deadline {
                last = (try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String) ?? ""
                if wanted.contains(last) { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw FixtureError(message: "job \(jobId) never reached \(wanted); last \(last)\n\(system.logs())")
        }
    }
}
