import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// Several dispatchers share one global limit; a batch survives a service killed in its middle.
    @Suite("Scale-out and crashes under load", .timeLimit(.minutes(15)))
    struct ScaleOutTests {
        @Test func threeDispatchersNeverPutMoreThanTheLimitAtTheBackend() async throws {
            let standIn = try await RunPodStandIn(scenarios: ["slow": .init(jobs: [[.runFor(.milliseconds(1500))]])])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides(dispatcher: ["DISPATCH_POLL_MAX_MS": "200"])) { system in
                try system.launchInstance(of: "runpod-dispatcher", as: "dispatcher-2")
                try system.launchInstance(of: "runpod-dispatcher", as: "dispatcher-3")
                try await system.waitUntilHealthy("dispatcher-2")
                try await system.waitUntilHealthy("dispatcher-3")
                let put = try await system.call(
                    .PUT, "/api/ai-image/settings",
                    json: #"{"aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": "\#(RunPodBackendTests.apiKey)", "aiImageMaxConcurrent": 2}"#)
                #expect(put.status == 200, "\(put.text)")
                var ids: [String] = []
                for _ in 0..<9 { ids.append(try await system.upload(try Samples.bytes("dev05", "input.jpg"))) }
                let list = ids.map { "\"\($0)\"" }.joined(separator: ",")
                let created = try await system.call(
                    .POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(list)], "options": {"customInstructions": "case:slow"}}"#)
                let batchId = try #require(try created.json()["batchId"] as? String, "\(created.text)")
                let status = try await waitForBatch(system, batchId)
                #expect(status["status"] as? String == "COMPLETED", "\(status)\n\(system.logs())")
                #expect((status["counts"] as? [String: Int])?["COMPLETED"] == 9)
                // Every instance took part, and the backend never saw more than the limit at once.
                let busy = ["runpod-dispatcher", "dispatcher-2", "dispatcher-3"].filter {
                    system.process($0)?.log().contains("submitted") == true
                }
                #expect(busy.count >= 2, "the work spread over the instances: \(busy)")
                #expect(standIn.peakActive() <= 2, "peak \(standIn.peakActive()) jobs at the backend with aiImageMaxConcurrent 2")
                #expect(standIn.peakActive() == 2, "the limit is used")
            }
            await standIn.stop()
        }

        @Test func aBatchOfFiftyCompletesOnceEachThoughADispatcherAndAnIngestorAreKilled() async throws {
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "400", "LOCAL_ENGINE_CONCURRENCY": "8"]]) { system in
                try await system.updateSettings(["aiImageMaxConcurrent": "6"])
                var ids: [String] = []
                for _ in 0..<50 { ids.append(try await system.upload(try Samples.bytes("dev02", "input.jpg"))) }
                let list = ids.map { "\"\($0)\"" }.joined(separator: ",")
                let created = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(list)]}"#)
                let batchId = try #require(try created.json()["batchId"] as? String, "\(created.text)")

                try await waitUntilCompleted(system, batchId, atLeast: 10)
                await system.crash("runpod-dispatcher")
                try system.launch("runpod-dispatcher")
                try await waitUntilCompleted(system, batchId, atLeast: 25)
                await system.crash("result-ingestor")
                try system.launch("result-ingestor")

                let status = try await waitForBatch(system, batchId)
                #expect(status["status"] as? String == "COMPLETED", "\(status)\n\(system.logs())")
                #expect((status["counts"] as? [String: Int])?["COMPLETED"] == 50, "\(status["counts"] ?? "-")")
                for id in ids {
                    let versions = try #require(try await system.call(.GET, "/api/media/\(id)/versions").json()["versions"] as? [[String: Any]])
                    #expect(versions.count == 2, "media \(id): applied once, not \(versions.count - 1) times")
                }
            }
        }

        private func waitUntilCompleted(_ system: CycloramaSystem, _ batchId: String, atLeast count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline {
                let counts = try await system.call(.GET, "/api/ai-image/batch/\(batchId)").json()["counts"] as? [String: Int] ?? [:]
                if (counts["COMPLETED"] ?? 0) >= count { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw FixtureError(message: "batch \(batchId) never had \(count) completed jobs\n\(system.logs())")
        }

        private func waitForBatch(_ system: CycloramaSystem, _ batchId: String) async throws -> [String: Any] {
            let deadline = ContinuousClock.now + .seconds(300)
            var status: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                status = try await system.call(.GET, "/api/ai-image/batch/\(batchId)").json()
                if ["COMPLETED", "CANCELLED"].contains(status["status"] as? String ?? "") { return status }
                try await Task.sleep(for: .milliseconds(250))
            }
            return status
        }
    }
}
