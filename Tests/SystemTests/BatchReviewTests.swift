import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// A batch whose results wait for review (`review`, `aiImageReviewBeforeReplace`), on the local engine.
    @Suite("Batch review", .timeLimit(.minutes(15)))
    struct BatchReviewTests {
        @Test func resultsWaitAndOnlyApprovedOnesReplaceTheImages() async throws {
            try await CycloramaSystem.run { system in
                let contract = try await APIContract.load(from: system)
                var ids: [String] = []
                for scene in ["dev02", "dev05", "dev09"] { ids.append(try await system.upload(try Samples.bytes(scene, "input.jpg"))) }
                var originals: [String: String] = [:]
                for id in ids { originals[id] = try await Self.sha(of: id, in: system) }

                let created = try await system.call(.POST, "/api/ai-image/batch", json: """
                    {"mediaIds": ["\(ids[0])", "\(ids[1])", "\(ids[2])"], "review": true}
                    """)
                #expect(created.status == 202, "\(created.text)")
                contract.check(created, "post", "/api/ai-image/batch")
                #expect(try created.json()["review"] as? Bool == true)
                let batchId = try #require(try created.json()["batchId"] as? String)
                let jobs = try #require(try created.json()["jobs"] as? [[String: Any]])
                let jobOf = Dictionary(uniqueKeysWithValues: jobs.compactMap { job in
                    (job["mediaId"] as? String).flatMap { media in (job["jobId"] as? String).map { (media, $0) } }
                })

                let done = try await Self.waitUntilFinished(batchId, in: system)
                #expect(done["review"] as? Bool == true && done["awaitingReview"] as? Int == 3, "\(done)")
                #expect((done["counts"] as? [String: Int])?["COMPLETED"] == 3, "the runs are done: \(done)\n\(system.logs())")
                let items = try #require(done["items"] as? [[String: Any]])
                #expect(items.allSatisfy { ($0["review"] as? [String: Any])?["state"] as? String == "waiting" }, "\(items)")
                // Nothing replaced yet: every image is the photo, and the library says what waits.
                for id in ids {
                    #expect(try await Self.sha(of: id, in: system) == originals[id], "media \(id) is untouched until approved")
                }
                let waiting = try await system.call(.GET, "/api/media?state=awaitingReview")
                contract.check(waiting, "get", "/api/media")
                #expect(Set((try waiting.json()["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []) == Set(ids))

                // The candidate, full size and small (cached: a revalidation is a 304).
                let review = try #require(items.first { $0["mediaId"] as? String == ids[0] }?["review"] as? [String: Any])
                let file = try await system.call(.GET, try #require(review["url"] as? String))
                #expect(file.status == 200 && file.header("content-type") == review["mimeType"] as? String && file.body.count == review["bytes"] as? Int)
                let thumbnail = try await system.call(.GET, try #require(review["thumbnailUrl"] as? String) + "?size=128")
                #expect(thumbnail.status == 200, "\(thumbnail.text)")
                let etag = try #require(thumbnail.header("etag"))
                #expect(try await system.call(.GET, (review["thumbnailUrl"] as? String ?? "") + "?size=128", headers: [("If-None-Match", etag)]).status == 304)

                // Approve one: it becomes the media's new version, the photo stays in the history.
                let approved = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: """
                    {"decision": "approve", "jobIds": ["\(jobOf[ids[0]]!)"]}
                    """)
                #expect(approved.status == 200, "\(approved.text)")
                contract.check(approved, "post", "/api/ai-image/batch/{batchId}/review")
                #expect(try approved.json()["decided"] as? Int == 1)
                #expect(try await Self.sha(of: ids[0], in: system) != originals[ids[0]])
                let versions = try #require(try await system.call(.GET, "/api/media/\(ids[0])/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 2 && versions.first?["source"] as? String == "generation", "\(versions)")
                #expect(try await system.call(.GET, "/api/media/\(ids[0])").json()["media"].flatMap { ($0 as? [String: Any])?["state"] as? String } == "processed")

                // Reject one: the media stays as it was; a decision is final.
                let rejected = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: """
                    {"decision": "reject", "jobIds": ["\(jobOf[ids[1]]!)"]}
                    """)
                #expect(try rejected.json()["decided"] as? Int == 1, "\(rejected.text)")
                #expect(try await Self.sha(of: ids[1], in: system) == originals[ids[1]])
                let turned = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: """
                    {"decision": "approve", "jobIds": ["\(jobOf[ids[1]]!)", "\(jobOf[ids[0]]!)"]}
                    """).json()
                #expect(turned["decided"] as? Int == 0 && turned["unchanged"] as? Int == 1, "\(turned)")
                let skipped = turned["skipped"] as? [[String: Any]]
                #expect(skipped?.count == 1 && skipped?.first?["jobId"] as? String == jobOf[ids[1]]
                        && (skipped?.first?["reason"] as? String)?.contains("rejected") == true, "\(turned)")
                #expect(try await Self.sha(of: ids[1], in: system) == originals[ids[1]], "a rejected result is never applied")

                // Approve all: a result whose image is in the trash waits until it is restored.
                #expect(try await system.call(.DELETE, "/api/media/\(ids[2])").status == 200)
                let inTrash = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: #"{"decision": "approve"}"#).json()
                #expect(inTrash["decided"] as? Int == 0 && (inTrash["skipped"] as? [[String: Any]])?.count == 1, "\(inTrash)")
                #expect(try await system.call(.POST, "/api/media/\(ids[2])/restore").status == 200)
                // An image that changed since its result was made (here: another job's result applied)
                // is not replaced by that older work.
                let other = try await system.call(.POST, "/api/ai-image/generate/\(ids[2])", json: #"{"shadowStyle": "none"}"#)
                let otherDone = try await system.waitForTerminal(try #require(try other.json()["jobId"] as? String, "\(other.text)"))
                #expect(otherDone["status"] as? String == "COMPLETED", "\(otherDone)")
                let newer = try await Self.sha(of: ids[2], in: system)
                #expect(newer != originals[ids[2]])
                let stale = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: #"{"decision": "approve"}"#).json()
                let staleSkip = (stale["skipped"] as? [[String: Any]])?.first
                #expect(stale["decided"] as? Int == 0 && (staleSkip?["reason"] as? String)?.contains("changed after this result was made") == true,
                        "\(stale)")
                let all = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: #"{"decision": "reject"}"#).json()
                #expect(all["decided"] as? Int == 1, "a stale result can still be rejected: \(all)")
                let after = try #require(all["batch"] as? [String: Any])
                #expect(after["awaitingReview"] as? Int == 0)
                let states = (after["items"] as? [[String: Any]])?.compactMap { ($0["review"] as? [String: Any])?["state"] as? String }
                #expect(states.map { $0.sorted() } == ["approved", "rejected", "rejected"], "\(after)")
                #expect(try await Self.sha(of: ids[2], in: system) == newer, "the newer image stays")
                let list = try await system.call(.GET, "/api/ai-image/batches")
                contract.check(list, "get", "/api/ai-image/batches")
                let summary = (try list.json()["items"] as? [[String: Any]])?.first
                #expect(summary?["review"] as? Bool == true && summary?["awaitingReview"] as? Int == 0, "\(list.text)")

                // Bad decisions.
                for (body, code) in [
                    (#"{"decision": "maybe"}"#, "invalid_field"), (#"{"decision": "approve", "jobIds": []}"#, "invalid_field"),
                    (#"{"decision": "approve", "jobIds": ["\#(UUID().uuidString)"]}"#, "invalid_field"), (#"{"approve": true}"#, "invalid_field"),
                    ("[]", "invalid_body"),
                ] {
                    let refused = try await system.call(.POST, "/api/ai-image/batch/\(batchId)/review", json: body)
                    #expect(refused.status == 400 && refused.error?.code == code, "\(body): \(refused.text)")
                    contract.check(refused, "post", "/api/ai-image/batch/{batchId}/review")
                }
                let unknown = try await system.call(.POST, "/api/ai-image/batch/\(UUID().uuidString)/review", json: #"{"decision": "approve"}"#)
                #expect(unknown.status == 404)
                #expect(try await system.call(.GET, "/api/ai-image/batch/\(batchId)/review/\(UUID().uuidString)/file").status == 404)

                // Without review (the setting's default, off): results replace the images as they come,
                // and there is nothing to decide.
                let plain = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(ids[1])"]}"#).json()
                #expect(plain["review"] as? Bool == false)
                let plainId = try #require(plain["batchId"] as? String)
                let notUnderReview = try await system.call(.POST, "/api/ai-image/batch/\(plainId)/review", json: #"{"decision": "approve"}"#)
                #expect(notUnderReview.status == 409 && notUnderReview.error?.code == "not_under_review", "\(notUnderReview.text)")
                _ = try await Self.waitUntilFinished(plainId, in: system)
                #expect(try await Self.sha(of: ids[1], in: system) != originals[ids[1]], "applied without review")

                // The setting makes review the default for batches that do not say. Changed through the
                // API, as an admin does: the gateway keeps the answer as its settings, so the next
                // request sees it (a write into the database reaches the gateway, which read the
                // setting above, only once it takes the broadcast: under load, after the next request).
                let changed = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageReviewBeforeReplace": true}"#)
                #expect(changed.status == 200, "\(changed.text)")
                let byDefault = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(ids[0])"]}"#).json()
                #expect(byDefault["review"] as? Bool == true, "\(byDefault)")
                let optedOut = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(ids[2])"], "review": false}"#).json()
                #expect(optedOut["review"] as? Bool == false, "\(optedOut)")
                for batch in [byDefault, optedOut] {
                    _ = try await system.call(.POST, "/api/ai-image/batch/\(batch["batchId"] as? String ?? "")/cancel")
                }
            }
        }

        static func sha(of id: String, in system: CycloramaSystem) async throws -> String? {
            ((try await system.call(.GET, "/api/media/\(id)").json()["media"] as? [String: Any])?["sha256"] as? String)
        }

        static func waitUntilFinished(_ batchId: String, in system: CycloramaSystem) async throws -> [String: Any] {
            let deadline = ContinuousClock.now + .seconds(180)
            var status: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                status = try await system.call(.GET, "/api/ai-image/batch/\(batchId)").json()
                if status["status"] as? String == "COMPLETED" { return status }
                try await Task.sleep(for: .milliseconds(250))
            }
            throw FixtureError(message: "batch \(batchId) did not finish: \(status)\n\(system.logs())")
        }
    }
}
