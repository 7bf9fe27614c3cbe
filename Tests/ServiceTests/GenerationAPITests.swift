import Database
import Foundation
import Testing
import TestSupport

/// `POST /api/ai-image/generate` and its friends as far as the gateway takes them: refusals, the
/// idempotency of every POST, a retry after an attempt died half-way. The gateway and the
/// settings-service run in process on a broker virtual host of their own; nothing consumes the
/// requests (the flows that run them are `SystemSuites.GenerationFlowTests`).
@Suite("Generation requests", .timeLimit(.minutes(3)))
struct GenerationAPITests {
    @Test func errorsNameWhatWasWrong() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let contract = try await APIContract.load(from: gateway)
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let generate = "/api/ai-image/generate/\(mediaId)"

            let unknown = try await gateway.call(.POST, "/api/ai-image/generate/\(UUID().uuidString.lowercased())", json: "{}")
            #expect(unknown.status == 404)
            #expect(unknown.error?.code == "not_found")
            contract.check(unknown, "post", "/api/ai-image/generate/{mediaId}")

            let shadow = try await gateway.call(.POST, generate, json: #"{"shadowStyle": "spooky"}"#)
            #expect(shadow.status == 400)
            #expect(shadow.error?.message.contains("shadowStyle") == true, "\(shadow.text)")
            contract.check(shadow, "post", "/api/ai-image/generate/{mediaId}")

            let color = try await gateway.call(.POST, generate, json: ##"{"backgroundColor": "#GGHHII"}"##)
            #expect(color.status == 400)
            #expect(color.error?.message.contains("backgroundColor") == true, "\(color.text)")

            let upscale = try await gateway.call(.POST, generate, json: #"{"upscale": 3}"#)
            #expect(upscale.status == 400)
            #expect(upscale.error?.message.contains("upscale") == true, "\(upscale.text)")

            let typo = try await gateway.call(.POST, generate, json: #"{"shadowstyle": "soft"}"#)
            #expect(typo.status == 400)
            #expect(typo.error?.message.contains("shadowstyle") == true, "\(typo.text)")

            let noToken = try await gateway.call(.POST, generate, body: Array("{}".utf8), token: "")
            #expect(noToken.status == 401)
            #expect(noToken.error?.code == "unauthorized")
            contract.check(noToken, "post", "/api/ai-image/generate/{mediaId}")

            let missingJob = try await gateway.call(.GET, "/api/ai-image/status/\(UUID().uuidString.lowercased())")
            #expect(missingJob.status == 404)
            contract.check(missingJob, "get", "/api/ai-image/status/{jobId}")

            // A media item that is not an image (another system's document) cannot be generated.
            let documentId = try await SystemDatabase.withClient(gateway.database.url) { client in
                try await MediaStore(client: client).create(
                    collection: "DOCUMENTS", originalFilename: "spec.pdf",
                    file: StoredFile(path: "aa/bb/spec.pdf", mimeType: "application/pdf", width: 1, height: 1, bytes: 10,
                                     sha256: String(repeating: "a", count: 64))).id
            }
            let notImage = try await gateway.call(.POST, "/api/ai-image/generate/\(documentId.uuidString.lowercased())", json: "{}")
            #expect(notImage.status == 400)
            #expect(notImage.error?.code == "not_an_image", "\(notImage.text)")
            #expect(notImage.error?.message.contains("application/pdf") == true)

            // Nothing above started a job: nothing reached the broker's dispatch stage.
            let jobs = try await gateway.jobCount()
            #expect(jobs == 0, "refused requests leave no job behind")
        }
    }

    @Test func aRequestRetriedAfterItsFirstAttemptDiedHalfWayFindsTheJobItCreated() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let key = "order-\(UUID().uuidString)"
            let first = try await gateway.call(
                .POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: [("Idempotency-Key", key)])
            let jobId = try #require(try first.json()["jobId"] as? String)
            // The first attempt's process died after creating the job and before storing its answer:
            // its claim is left unfinished (and old enough to be taken over).
            try await SystemDatabase.withClient(gateway.database.url) { client in
                try await client.query("UPDATE idempotency_records SET status_code = NULL, response_body = NULL, created_at = now() - interval '2 minutes'")
            }
            let again = try await gateway.call(
                .POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: [("Idempotency-Key", key)])
            #expect(again.status == 202, "\(again.text)")
            #expect(try again.json()["jobId"] as? String == jobId, "the retry answers the job the first attempt created")
            #expect(try await gateway.jobCount() == 1, "and starts no second one")
            // A batch likewise.
            let batchKey = [("Idempotency-Key", "batch-\(UUID().uuidString)")]
            let batch = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(mediaId)"]}"#, headers: batchKey)
            try await SystemDatabase.withClient(gateway.database.url) { client in
                try await client.query("UPDATE idempotency_records SET status_code = NULL, response_body = NULL, created_at = now() - interval '2 minutes'")
            }
            let batchAgain = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(mediaId)"]}"#, headers: batchKey)
            #expect(batchAgain.status == 202, "\(batchAgain.text)")
            #expect(try batchAgain.json()["batchId"] as? String == (try batch.json()["batchId"] as? String))
            #expect(try await gateway.jobCount() == 2, "one job for the request, one for the batch")
        }
    }

    @Test func idempotencyKeyReplaysTheFirstAnswer() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let contract = try await APIContract.load(from: gateway)
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let key = [("Idempotency-Key", "order-\(UUID().uuidString)")]
            let first = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"shadowStyle":"dramatic"}"#, headers: key)
            let again = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"shadowStyle":"dramatic"}"#, headers: key)
            #expect(first.status == 202)
            #expect(again.status == 202)
            #expect(again.header("Idempotent-Replayed") == "true")
            let firstJob = try first.json()["jobId"] as? String
            let againJob = try again.json()["jobId"] as? String
            #expect(firstJob != nil && firstJob == againJob, "a repeat answers the same job")
            contract.check(again, "post", "/api/ai-image/generate/{mediaId}")
            // Location names what was created, in the first answer and in its replay.
            #expect(first.header("Location") == "/api/ai-image/status/\(firstJob ?? "-")")
            #expect(again.header("Location") == first.header("Location"))

            let different = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"shadowStyle":"soft"}"#, headers: key)
            #expect(different.status == 409)
            #expect(different.error?.code == "idempotency_conflict")

            let jobs = try await gateway.jobCount()
            #expect(jobs == 1, "the repeat started nothing")

            // Every POST honours it: a repeated upload creates one media item.
            let uploadKey = [("Idempotency-Key", "upload-\(UUID().uuidString)"), ("Content-Type", "application/octet-stream")]
            let photo = try Samples.bytes("dev01", "input.jpg")
            let firstUpload = try await gateway.call(.POST, "/api/media?collection=DEDUP", body: photo, headers: uploadKey)
            let secondUpload = try await gateway.call(.POST, "/api/media?collection=DEDUP", body: photo, headers: uploadKey)
            #expect(firstUpload.status == 201 && secondUpload.status == 201)
            #expect(secondUpload.header("Idempotent-Replayed") == "true")
            let uploaded = try #require((try firstUpload.json()["media"] as? [String: Any])?["id"] as? String)
            #expect(firstUpload.header("Location") == "/api/media/\(uploaded)" && secondUpload.header("Location") == firstUpload.header("Location"))
            let batch = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(mediaId)"]}"#)
            #expect(batch.header("Location") == "/api/ai-image/batch/\(try batch.json()["batchId"] as? String ?? "-")", "\(batch.text)")
            let listed = try await gateway.call(.GET, "/api/media?collection=DEDUP").json()
            #expect(listed["total"] as? Int == 1, "one media item, not two")
            // The query is part of the request: the same bytes for another collection are another request.
            let elsewhere = try await gateway.call(.POST, "/api/media?collection=OTHER", body: photo, headers: uploadKey)
            #expect(elsewhere.status == 409 && elsewhere.error?.code == "idempotency_conflict", "\(elsewhere.text)")
        }
    }

    /// Keys belong to the caller: another API token using the same key (two systems keying by order
    /// number) gets its own job, never the other's answer. A refusal about the moment (generation
    /// turned off) is not remembered: the same request succeeds once it is turned on again.
    @Test func idempotencyKeysAreTheCallersAndMomentaryRefusalsAreNotRemembered() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let other = "second-system-\(UUID().uuidString)"
            try await SystemDatabase.withClient(gateway.database.url) { client in
                try await APITokenStore(client: client).ensure(token: other, name: "second system", role: "ADMIN")
            }
            let key = [("Idempotency-Key", "order-1001")]
            let mine = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: key)
            let theirs = try await gateway.call(
                .POST, "/api/ai-image/generate/\(mediaId)", body: Array("{}".utf8), headers: key + [("Content-Type", "application/json")],
                token: other)
            #expect(mine.status == 202 && theirs.status == 202, "\(mine.text) \(theirs.text)")
            #expect(theirs.header("Idempotent-Replayed") == nil, "not the other caller's answer")
            let (mineJob, theirJob) = (try mine.json()["jobId"] as? String, try theirs.json()["jobId"] as? String)
            #expect(mineJob != nil && theirJob != nil && mineJob != theirJob, "\(String(describing: mineJob)) \(String(describing: theirJob))")
            #expect(try await gateway.jobCount() == 2)

            let off = try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": false}"#)
            #expect(off.status == 200, "\(off.text)")
            let laterKey = [("Idempotency-Key", "order-1002")]
            let refused = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: laterKey)
            #expect(refused.status == 409 && refused.error?.code == "generation_disabled", "\(refused.text)")
            #expect(try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": true}"#).status == 200)
            let accepted = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: laterKey)
            #expect(accepted.status == 202 && accepted.header("Idempotent-Replayed") == nil, "\(accepted.text)")
        }
    }

    /// A script that keys its requests by SKU sends the same key the next day: that is a new
    /// request (its record expired after 24 h) and starts a new job. The ids of what a request
    /// creates came from the key alone until 2026-12-08, so the new request found the old job and
    /// answered with it, and nothing ran.
    @Test func aKeyUsedAgainAfterADayStartsANewJob() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let key = [("Idempotency-Key", "sku-42-\(UUID().uuidString)")]
            let first = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: key)
            let repeated = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: key)
            #expect(first.status == 202, "\(first.text)")
            #expect(repeated.header("Idempotent-Replayed") == "true", "a repeat within the day is the first answer")
            #expect(try repeated.json()["jobId"] as? String == first.json()["jobId"] as? String)

            try await SystemDatabase.withClient(gateway.database.url) { client in
                try await client.query("UPDATE idempotency_records SET created_at = now() - interval '25 hours'")
            }
            let nextDay = try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}", headers: key)
            #expect(nextDay.status == 202 && nextDay.header("Idempotent-Replayed") == nil, "\(nextDay.text)")
            let (firstJob, nextJob) = (try first.json()["jobId"] as? String, try nextDay.json()["jobId"] as? String)
            #expect(firstJob != nil && nextJob != nil && firstJob != nextJob, "a new job: \(String(describing: firstJob)) \(String(describing: nextJob))")
            #expect(try await gateway.jobCount() == 2)
        }
    }
}
