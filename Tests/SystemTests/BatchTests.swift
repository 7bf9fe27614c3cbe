import Database
import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// `POST /api/ai-image/batch` and friends through the running system on the local engine.
    @Suite("Batches", .timeLimit(.minutes(15)))
    struct BatchTests {
        @Test func everyItemIsQueuedAndTheBatchFinishes() async throws {
            try await CycloramaSystem.run { system in
                let contract = try await APIContract.load(from: system)
                var ids: [String] = []
                for scene in ["dev02", "dev05", "dev09"] { ids.append(try await system.upload(try Samples.bytes(scene, "input.jpg"))) }
                let body = #"{"mediaIds": ["\#(ids[0])", "\#(ids[1])", "\#(ids[2])", "\#(ids[0])"], "options": {"shadowStyle": "minimal"}}"#
                let created = try await system.call(.POST, "/api/ai-image/batch", json: body)
                #expect(created.status == 202, "\(created.text)")
                contract.check(created, "post", "/api/ai-image/batch")
                let answer = try created.json()
                let batchId = try #require(answer["batchId"] as? String)
                let jobs = try #require(answer["jobs"] as? [[String: Any]])
                #expect(jobs.count == 3, "the duplicate id is removed")
                #expect(Set(jobs.compactMap { $0["mediaId"] as? String }) == Set(ids))
                #expect(answer["remainingInQueue"] as? Int == 3)

                // Follow it as Server-Sent Events until it is done.
                let stream = try await HTTPProbe.send(
                    .GET, system.gatewayURL + "/api/ai-image/events?batchId=\(batchId)",
                    headers: [("Authorization", "Bearer \(system.token)")], timeout: .seconds(180))
                #expect(stream.status == 200)
                let blocks = stream.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
                let items = blocks.filter { $0.hasPrefix("event: item") }
                let summaries = blocks.filter { $0.hasPrefix("event: batch") }
                #expect(items.filter { $0.contains("\"status\":\"COMPLETED\"") }.count == 3, "an item event per finished job")
                #expect(summaries.last?.contains("\"status\":\"COMPLETED\"") == true, "\(summaries.last ?? "no summary")")

                let deadline = ContinuousClock.now + .seconds(180)
                var status: [String: Any] = [:]
                while ContinuousClock.now < deadline {
                    let answer = try await system.call(.GET, "/api/ai-image/batch/\(batchId)")
                    contract.check(answer, "get", "/api/ai-image/batch/{batchId}")
                    status = try answer.json()
                    if status["status"] as? String == "COMPLETED" { break }
                    try await Task.sleep(for: .milliseconds(500))
                }
                #expect(status["status"] as? String == "COMPLETED", "\(status)\n\(system.logs())")
                #expect((status["counts"] as? [String: Int])?["COMPLETED"] == 3, "\(status)")
                #expect(status["remainingInQueue"] as? Int == 0)
                #expect(status["cost"] as? Double == 0)
                for id in ids {
                    let versions = try #require(try await system.call(.GET, "/api/media/\(id)/versions").json()["versions"] as? [[String: Any]])
                    #expect(versions.count == 2, "each media got its studio shot once")
                }
                let unknownBatch = try await system.call(.GET, "/api/ai-image/batch/\(UUID().uuidString.lowercased())")
                #expect(unknownBatch.status == 404)
                contract.check(unknownBatch, "get", "/api/ai-image/batch/{batchId}")
            }
        }

        @Test func cancellingABatchStopsWhatHasNotFinished() async throws {
            // Runs are held at the engine: the cancel reaches one before it could end.
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
                try await system.updateSettings(["aiImageMaxConcurrent": "1"])
                try system.holdEngineJobs()
                var ids: [String] = []
                for scene in ["dev02", "dev05", "dev09"] { ids.append(try await system.upload(try Samples.bytes(scene, "input.jpg"))) }
                let created = try await system.call(
                    .POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(ids[0])", "\#(ids[1])", "\#(ids[2])"]}"#)
                let batchId = try #require(try created.json()["batchId"] as? String)
                // Wait until one item is at the engine (one at a time: the others wait for a slot).
                try await eventually("an item of the batch at the engine") {
                    let counts = try await system.call(.GET, "/api/ai-image/batch/\(batchId)").json()["counts"] as? [String: Int] ?? [:]
                    return (counts["SUBMITTED"] ?? 0) + (counts["IN_PROGRESS"] ?? 0) > 0
                }
                let cancelled = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/cancel")
                #expect(cancelled.status == 200, "\(cancelled.text)")
                let status = try cancelled.json()
                #expect(status["status"] as? String == "CANCELLED")
                #expect((status["counts"] as? [String: Int])?["CANCELLED"] == 3, "\(status)")
                // The run at the engine is stopped, not left to finish: its result never exists, so no
                // media can be replaced by a cancelled job.
                var jobs: [String: Any] = [:]
                try await eventually("the engine ends the cancelled run: \(jobs)") {
                    jobs = try await system.engineHealth().json()["jobs"] as? [String: Any] ?? [:]
                    return jobs["inProgress"] as? Int == 0 && jobs["inQueue"] as? Int == 0 && (jobs["cancelled"] as? Int ?? 0) >= 1
                }
                #expect(jobs["completed"] as? Int == 0, "\(jobs)")
                for id in ids {
                    let versions = try #require(try await system.call(.GET, "/api/media/\(id)/versions").json()["versions"] as? [[String: Any]])
                    #expect(versions.count == 1, "\(id) kept its original only")
                }
            }
        }

        /// Issue 21's batches panel and retry: batches are listed newest first with their counts; a
        /// retry is a new batch of only the items that did not succeed (deleted ones left out), with
        /// the batch's options; a batch with nothing to retry says so.
        @Test func batchesAreListedAndWhatDidNotSucceedIsRetried() async throws {
            // The engine's jobs are held until the retries were asked for: none of the first batch can
            // end before it is cancelled, and the second batch's are still open when it is retried.
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
                try await system.updateSettings(["aiImageMaxConcurrent": "1"])
                try system.holdEngineJobs()
                var ids: [String] = []
                for (scene, name) in [("dev02", "bottle.jpg"), ("dev05", "box.jpg"), ("dev09", "shoe.jpg")] {
                    let id = try await system.upload(try Samples.bytes(scene, "input.jpg"))
                    #expect(try await system.call(.PATCH, "/api/media/\(id)", json: #"{"originalName": "\#(name)"}"#).status == 200)
                    ids.append(id)
                }
                let created = try await system.call(.POST, "/api/ai-image/batch", json: """
                    {"mediaIds": ["\(ids[0])", "\(ids[1])", "\(ids[2])"], "options": {"shadowStyle": "dramatic", "upscale": 1}}
                    """)
                let first = try #require(try created.json()["batchId"] as? String)
                let cancelled = try await system.call(.POST, "/api/ai-image/batch/\(first)/cancel").json()
                #expect((cancelled["counts"] as? [String: Int])?["CANCELLED"] == 3, "\(cancelled)")
                let names = (cancelled["items"] as? [[String: Any]])?.compactMap { $0["originalName"] as? String }
                #expect(names.map(Set.init) == ["bottle.jpg", "box.jpg", "shoe.jpg"], "the items' names: \(cancelled)")
                #expect(try await system.call(.DELETE, "/api/media/\(ids[2])").status == 200)

                let retried = try await system.call(.POST, "/api/ai-image/batch/\(first)/retry")
                #expect(retried.status == 202, "\(retried.text)")
                let second = try #require(try retried.json()["batchId"] as? String)
                #expect(second != first && retried.header("location") == "/api/ai-image/batch/\(second)")
                let retriedIds = (try retried.json()["jobs"] as? [[String: Any]])?.compactMap { $0["mediaId"] as? String }
                #expect(retriedIds.map(Set.init) == Set(ids.prefix(2)), "the shoe was deleted: \(retried.text)")
                let shadows = try await SystemDatabase.withClient(system.database.url) { client in
                    var found: [String] = []
                    for try await shadow in try await client.query(
                        "SELECT options->>'shadowStyle' FROM generation_jobs WHERE batch_id = \(UUID(uuidString: second)!)").decode(String.self) {
                        found.append(shadow)
                    }
                    return found
                }
                #expect(shadows == ["dramatic", "dramatic"], "the batch's own options")
                #expect(try await system.call(.POST, "/api/ai-image/batch/\(second)/retry").error?.code == "nothing_to_retry",
                        "nothing failed (yet) in the new batch")
                // Retried once: a second retry of the first batch would pay twice.
                let again = try await system.call(.POST, "/api/ai-image/batch/\(first)/retry")
                #expect(again.status == 409 && again.error?.code == "already_retried" && again.error?.message.contains(second) == true, "\(again.text)")
                #expect(try await system.call(.GET, "/api/ai-image/batch/\(first)").json()["retriedBy"] as? String == second)
                try system.releaseEngineJobs()
                let deadline = ContinuousClock.now + .seconds(120)
                var done: [String: Any] = [:]
                while ContinuousClock.now < deadline {
                    done = try await system.call(.GET, "/api/ai-image/batch/\(second)").json()
                    if done["status"] as? String == "COMPLETED" { break }
                    try await Task.sleep(for: .milliseconds(250))
                }
                #expect((done["counts"] as? [String: Int])?["COMPLETED"] == 2, "\(done)")

                let list = try await system.call(.GET, "/api/ai-image/batches?pageSize=10").json()
                let items = try #require(list["items"] as? [[String: Any]])
                #expect(list["total"] as? Int == 2 && items.map { $0["batchId"] as? String } == [second, first], "newest first: \(list)")
                #expect(items.first?["status"] as? String == "COMPLETED" && (items.first?["counts"] as? [String: Int]) == ["COMPLETED": 2])
                #expect(items.last?["status"] as? String == "CANCELLED" && (items.last?["counts"] as? [String: Int]) == ["CANCELLED": 3])
                #expect(try await system.call(.GET, "/api/ai-image/batches?pageSize=0").status == 400)
                #expect(try await system.call(.POST, "/api/ai-image/batch/\(UUID().uuidString)/retry").status == 404)
            }
        }

        @Test func aJobWhoseRequestNeverReachedTheBrokerIsPublishedByTheOutboxSweep() async throws {
            try await CycloramaSystem.run(overrides: ["api-gateway": ["JOB_REAPER_INTERVAL_SECONDS": "1"]]) { system in
                let mediaId = try #require(UUID(uuidString: try await system.upload(try Samples.bytes("dev05", "input.jpg"))))
                // As if the gateway died between writing the ledger row and publishing: a QUEUED row, a minute old.
                let jobId = UUID()
                try await SystemDatabase.withClient(system.database.url) { client in
                    try await JobLedger(client: client).insert(NewJob(id: jobId, mediaId: mediaId, optionsJSON: #"{"shadowStyle":"soft"}"#, correlationId: "outbox-test"))
                    try await client.query("UPDATE generation_jobs SET updated_at = now() - interval '5 minutes' WHERE id = \(jobId)")
                }
                let done = try await system.waitForTerminal(jobId.uuidString.lowercased(), timeout: .seconds(120))
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                #expect(system.process("api-gateway")?.log().contains("outbox") == true)
            }
        }
    }
}
