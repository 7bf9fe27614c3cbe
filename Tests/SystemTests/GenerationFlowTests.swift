import Database
import Foundation
import Imaging
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// The seed's core flow through all six processes on real servers: upload, generate on the local
    /// engine, the studio shot replaces the media, the history keeps the original, revert restores it.
    @Suite("One image, end to end", .timeLimit(.minutes(15)))
    struct GenerationFlowTests {
        @Test func uploadGenerateAndRevert() async throws {
            try await CycloramaSystem.run() { system in
                let contract = try await APIContract.load(from: system)
                let original = try Samples.bytes("dev02", "input.jpg")
                let meta = try JSONSerialization.jsonObject(with: Data(Samples.bytes("dev02", "meta.json"))) as? [String: Any]
                let box = try #require(meta?["product_bbox"] as? [Int])
                let mediaId = try await system.upload(original)

                let accepted = try await system.call(
                    .POST, "/api/ai-image/generate/\(mediaId)", json: ##"{"shadowStyle": "soft", "backgroundColor": "#FFFFFF"}"##)
                #expect(accepted.status == 202, "\(accepted.text)")
                contract.check(accepted, "post", "/api/ai-image/generate/{mediaId}")
                let body = try accepted.json()
                #expect(body["success"] as? Bool == true)
                #expect(body["status"] as? String == "QUEUED")
                #expect(body["message"] as? String == "Generation started")
                let jobId = try #require(body["jobId"] as? String)

                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                let statusAnswer = try await system.call(.GET, "/api/ai-image/status/\(jobId)")
                contract.check(statusAnswer, "get", "/api/ai-image/status/{jobId}")
                #expect(done["success"] as? Bool == true)
                #expect((done["generationTime"] as? Double).map { $0 > 0 } == true, "generationTime in seconds: \(done)")
                #expect(done["cost"] as? Double == 0, "the local engine is free")
                let media = try #require(done["media"] as? [String: Any])
                #expect(media["id"] as? String == mediaId)
                #expect(media["mimeType"] as? String == "image/png")

                // The media's file is now the studio shot: pure white away from the product.
                let file = try await system.call(.GET, "/api/media/\(mediaId)/file")
                #expect(file.status == 200)
                let shot = try RasterImage(decoding: file.body)
                #expect(shot.width == 1024 && shot.height == 1024, "same size as the upload")
                let white = shot.isUniform((255, 255, 255), awayFrom: box, margin: 48, above: box[3] - 96)
                #expect(white.ok && white.checked > 100_000, "background not pure white: \(white.first ?? "-") after \(white.checked) px")

                // The history holds the original; revert brings it back.
                let versions = try await system.call(.GET, "/api/media/\(mediaId)/versions")
                contract.check(versions, "get", "/api/media/{id}/versions")
                let list = try #require(try versions.json()["versions"] as? [[String: Any]])
                #expect(list.count == 2)
                #expect(list.first?["source"] as? String == "generation")
                #expect(list.first?["jobId"] as? String == jobId)
                let upload = try #require(list.last)
                #expect(upload["source"] as? String == "upload")
                let reverted = try await system.call(.POST, "/api/media/\(mediaId)/revert/\(try #require(upload["id"] as? String))")
                #expect(reverted.status == 200, "\(reverted.text)")
                contract.check(reverted, "post", "/api/media/{id}/revert/{versionId}")
                let restored = try await system.call(.GET, "/api/media/\(mediaId)/file")
                #expect(restored.body == original, "after revert the file is the uploaded one again")
            }
        }

        /// A result whose media went to the trash while it was made is applied all the same: the
        /// trash is undone within seconds as often as not, and the result is paid for (restored, the
        /// item shows it). One whose media was deleted for good meanwhile fails `media_not_found`,
        /// and the stored result, which no row refers to, is queued for the gateway's sweeper instead
        /// of staying on disk for ever.
        @Test func aResultForMediaDeletedMeanwhileFailsItsJobAndItsFileIsQueuedForErasure() async throws {
            try await CycloramaSystem.run(without: ["result-ingestor"]) { system in
                let trashed = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                let purged = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                var jobs: [String: String] = [:]
                for mediaId in [trashed, purged] {
                    let accepted = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}")
                    jobs[mediaId] = try #require(try accepted.json()["jobId"] as? String, "\(accepted.text)")
                }
                try await eventually("the engine is done and the results wait for the ingestor", timeout: .seconds(120)) {
                    for job in jobs.values where try await system.call(.GET, "/api/ai-image/status/\(job)").json()["status"] as? String != "DOWNLOADING" {
                        return false
                    }
                    return true
                }
                #expect(try await system.call(.DELETE, "/api/media/\(trashed)").status == 200)
                #expect(try await system.call(.DELETE, "/api/media/\(purged)").status == 200)
                #expect(try await system.call(.DELETE, "/api/media/\(purged)?permanently=true").status == 200)
                func queuedFiles() async throws -> Set<String> {
                    try await SystemDatabase.withClient(system.database.url) { client in
                        var queued: Set<String> = []
                        for try await path in try await client.query("SELECT path FROM purged_files").decode(String.self) { queued.insert(path) }
                        return queued
                    }
                }
                let queuedByThePurge = try await queuedFiles()
                try system.launch("result-ingestor")

                let kept = try await system.waitForTerminal(jobs[trashed]!)
                #expect(kept["status"] as? String == "COMPLETED", "in the trash, not gone: \(kept)")
                #expect(try await system.call(.GET, "/api/media/\(trashed)").status == 404, "still in the trash")
                #expect(try await system.call(.POST, "/api/media/\(trashed)/restore").status == 200)
                let versions = try await system.call(.GET, "/api/media/\(trashed)/versions").json()["versions"] as? [[String: Any]]
                #expect(versions?.count == 2 && versions?.first?["jobId"] as? String == jobs[trashed], "restored with its result: \(versions ?? [])")

                let ended = try await system.waitForTerminal(jobs[purged]!)
                #expect(ended["status"] as? String == "FAILED" && (ended["error"] as? [String: Any])?["code"] as? String == "media_not_found", "\(ended)")
                let referenced = try await SystemDatabase.withClient(system.database.url) { client in
                    var referenced: [String] = []
                    for try await path in try await client.query("""
                        SELECT file_path FROM media UNION SELECT file_path FROM media_versions
                        """).decode(String.self) { referenced.append(path) }
                    return referenced
                }
                // Beside what the purge queued (the photo, while the sweeper's grace runs): the
                // unapplied result, which no row refers to.
                let queued = try await queuedFiles().subtracting(queuedByThePurge)
                #expect(queued.count == 1 && queued.allSatisfy { !referenced.contains($0) }, "queued \(queued), in use \(referenced)")
                #expect(queued.allSatisfy { FileManager.default.fileExists(atPath: system.mediaRoot.appendingPathComponent($0).path) },
                        "kept until the sweeper's grace has passed")
                #expect(try await system.call(.POST, "/api/media/\(purged)/restore").status == 404, "deleted for good")
            }
        }

        /// A generate asked while `away` keeps the broker from the gateway: accepted (in the ledger,
        /// QUEUED: no 503 a client would retry while the job may run anyway) and answered soon —
        /// the intake waits a few seconds for the broker, not its whole publish timeout (30 s, when
        /// many HTTP clients give up and retry). Returns the job's id.
        func generateWhileTheBrokerIsAway(_ system: CycloramaSystem, away: () async -> Void) async throws -> String {
            let mediaId = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
            // A first request works (and the gateway now holds the settings it checks the budget with).
            #expect(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").status == 202)
            await away()
            let asked = ContinuousClock.now
            let accepted = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}")
            let waited = ContinuousClock.now - asked
            #expect(accepted.status == 202, "\(accepted.text)")
            // Well under the publish timeout (30 s): the answer does not wait for the broker.
            #expect(waited < .seconds(25), "answered after \(waited)")
            let jobId = try #require(try accepted.json()["jobId"] as? String)
            #expect(try await Self.jobCount(system) == 2)
            #expect(try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String == "QUEUED")
            return jobId
        }

        @Test func aRequestTheBrokerDoesNotTakeIsAcceptedAndPublishedOnceTheBrokerIsBack() async throws {
            try await CycloramaSystem.run(
                without: ["runpod-dispatcher", "result-ingestor", "local-engine"],
                overrides: ["api-gateway": ["JOB_REAPER_INTERVAL_SECONDS": "1", "JOB_OUTBOX_AFTER_SECONDS": "2"]]
            ) { system in
                // The broker goes away for this system: its virtual host is deleted (queues and all).
                let jobId = try await generateWhileTheBrokerIsAway(system) {
                    #expect(await ServerScript.run("vhost", "delete", system.vhost) == 0)
                }
                // The broker is back: the outbox publishes the request and the prompt-service takes it.
                #expect(await ServerScript.run("vhost", "add", system.vhost) == 0)
                try await eventually("the job moves on once the broker is back", timeout: .seconds(90)) {
                    try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String == "PROMPTING"
                }
                #expect(try await Self.jobCount(system) == 2, "one job per request, however often it was published")
            }
        }

        /// A broker the gateway cannot reach for a while (its rights in the virtual host taken away
        /// and its connection closed; the queues stay, as in a failover): the request is published
        /// as soon as the gateway is back on it — by the intake's own publishing, which goes on
        /// after the answer (the outbox is set to look only after an hour here, so it cannot be
        /// what publishes it).
        @Test func aRequestAnsweredWhileTheBrokerWasAwayIsPublishedWhenItIsBackWithoutTheOutbox() async throws {
            try await CycloramaSystem.run(
                without: ["runpod-dispatcher", "result-ingestor", "local-engine"],
                overrides: ["api-gateway": ["JOB_REAPER_INTERVAL_SECONDS": "1", "JOB_OUTBOX_AFTER_SECONDS": "3600"]]
            ) { system in
                let jobId = try await generateWhileTheBrokerIsAway(system) {
                    #expect(await ServerScript.run("rabbitmqctl", "-q", "clear_permissions", "-p", system.vhost, "api-gateway") == 0)
                    #expect(await ServerScript.run("rabbitmqctl", "-q", "close_all_connections", "--vhost", system.vhost, "test: the broker goes away") == 0)
                }
                // Back well within the connection's 30 s publish timeout: the rights again.
                #expect(await ServerScript.run("vhost", "add", system.vhost) == 0)
                do {
                    try await eventually("the request is published once the broker is back", timeout: .seconds(40)) {
                        try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String == "PROMPTING"
                    }
                } catch {
                    Issue.record("\(error)\n\(system.logs(lines: 30))")
                }
                #expect(system.process("api-gateway")?.log().contains("outbox: published") == false, "not by the outbox")
                #expect(try await Self.jobCount(system) == 2, "one job per request")
            }
        }

        @Test func progressStreamsAsServerSentEventsAndCancelStopsAJob() async throws {
            // A simulated engine whose jobs are held, so the job can be watched and cancelled while it
            // runs: the first job is held at the engine until the stream has said it is in progress
            // (were that never said, the job would stay held and the test time out).
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
                let contract = try await APIContract.load(from: system)
                let mediaId = try await system.upload(try Samples.bytes("dev03", "input.jpg"))

                try system.holdEngineJobs()
                let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                var released = false
                let stream = try await HTTPProbe.stream(
                    system.gatewayURL + "/api/ai-image/events?jobId=\(jobId)",
                    headers: [("Authorization", "Bearer \(system.token)")], timeout: .seconds(120)
                ) { said in
                    if !released, said.contains("event: in_progress") {
                        try system.releaseEngineJobs()
                        released = true
                    }
                }
                #expect(stream.status == 200)
                #expect(stream.header("content-type")?.hasPrefix("text/event-stream") == true)
                let events = stream.text.components(separatedBy: "\n\n").compactMap { block -> (name: String, data: String)? in
                    let lines = block.split(separator: "\n")
                    guard let name = lines.first(where: { $0.hasPrefix("event: ") }), let data = lines.first(where: { $0.hasPrefix("data: ") }) else { return nil }
                    return (String(name.dropFirst(7)), String(data.dropFirst(6)))
                }
                let names = events.map(\.name)
                #expect(names.last == "completed", "\(names)")
                #expect(names.contains("in_progress"), "\(names)")
                let order = ["queued", "prompting", "submitted", "in_progress", "downloading", "completed"]
                let ranks = names.compactMap { order.firstIndex(of: $0) }
                #expect(ranks == ranks.sorted(), "stages only move forward: \(names)")
                for event in events {
                    let violations = try contract.document.validate(json: Data(event.data.utf8), againstSchema: "JobEvent")
                    #expect(violations.isEmpty, "\(event.data): \(violations)")
                }
                let last = try #require(events.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.data.utf8)) as? [String: Any] })
                #expect((last["media"] as? [String: Any])?["id"] as? String == mediaId, "the completed event carries the media")

                // Cancel: a second job, cancelled while the engine works on it (held there).
                try system.holdEngineJobs()
                let failures = BrokerProbe.listeningQueue(exchange: Routing.Exchange.events, routingKey: Routing.Key.generationFailed)
                let probe = try await BrokerProbe(queues: [failures], url: system.amqpURL)
                let second = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                let cancelled = try await system.call(.POST, "/api/ai-image/jobs/\(second)/cancel")
                #expect(cancelled.status == 200, "\(cancelled.text)")
                contract.check(cancelled, "post", "/api/ai-image/jobs/{jobId}/cancel")
                #expect(try cancelled.json()["status"] as? String == "CANCELLED")
                let again = try await system.call(.POST, "/api/ai-image/jobs/\(second)/cancel")
                #expect(again.status == 200, "cancelling twice is harmless")
                let finished = try await system.call(.POST, "/api/ai-image/jobs/\(jobId)/cancel")
                #expect(finished.status == 409)
                #expect(finished.error?.code == "job_finished")
                contract.check(finished, "post", "/api/ai-image/jobs/{jobId}/cancel")
                let status = try await system.waitForTerminal(second)
                #expect(status["status"] as? String == "CANCELLED")
                // Broker listeners hear the end too: GenerationFailed with code `cancelled`.
                let terminal = try await probe.first(on: failures.name, timeout: .seconds(30)) {
                    String(decoding: $0.body, as: UTF8.self).lowercased().contains(second)
                }
                let failed = try terminal.map { try MessageDecoder.decode(GenerationFailed.self, from: $0.body) }
                #expect(failed?.code == .cancelled, "\(String(describing: failed))\n\(system.logs())")
                await probe.close()
                #expect((status["error"] as? [String: Any])?["code"] as? String == "cancelled")
                // The cancelled job's result never exists, so it never replaces the media: let the
                // engine go, and once it holds nothing, it completed the first job only.
                try system.releaseEngineJobs()
                var jobs: [String: Any] = [:]
                try await eventually("the engine holds nothing: \(jobs)") {
                    jobs = try await system.engineHealth().json()["jobs"] as? [String: Any] ?? [:]
                    return jobs["inProgress"] as? Int == 0 && jobs["inQueue"] as? Int == 0
                }
                #expect(jobs["completed"] as? Int == 1, "the first job only: \(jobs)")
                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 2, "the upload and the first job's result only: \(versions.map { $0["jobId"] ?? "-" })")
            }
        }

        static func jobCount(_ system: CycloramaSystem) async throws -> Int {
            try await SystemDatabase.jobCount(system.database.url)
        }
    }
}
