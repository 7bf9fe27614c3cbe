import Foundation
import HTTPTypes
import Testing
import TestSupport

extension SystemSuites {
    /// HTTP notifications (docs/notifications.md) through the running system: a job or batch asked
    /// for with a `notifyUrl` (or the `aiImageNotifyUrl` default) POSTs its terminal event, signed,
    /// to a receiver on loopback that fails first; every attempt shows in the API.
    @Suite("Notifications", .timeLimit(.minutes(15)))
    struct NotificationTests {
        static let secret = "whsec_system-test-secret-0123456789"

        @Test func jobsAndBatchesNotifyTheirReceiverSignedAndRetried() async throws {
            // The first POST to each path fails; the next is taken.
            let receiver = try await TestHTTPServer { _, index in (index == 0 ? .badGateway : .noContent, [:], []) }
            defer { Task { await receiver.stop() } }
            try await CycloramaSystem.run(overrides: [
                "api-gateway": [
                    "NOTIFY_ALLOWED_HOSTS": "127.0.0.1:\(receiver.port)", "NOTIFY_INTERVAL_MILLISECONDS": "100",
                    "NOTIFY_RETRY_FIRST_SECONDS": "0.2",
                ],
                "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"],
            ]) { system in
                let contract = try await APIContract.load(from: system)
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                func generate(_ body: String) async throws -> HTTPAnswer {
                    let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: body)
                    contract.check(answer, "post", "/api/ai-image/generate/{mediaId}")
                    return answer
                }
                let single = "\(receiver.url)/hooks/single?shop=7"

                // Nothing unsigned: no secret, no job.
                let unsigned = try await generate(#"{"notifyUrl": "\#(single)"}"#)
                #expect(unsigned.status == 409 && unsigned.text.contains("notify_secret_missing"), "\(unsigned.status) \(unsigned.text)")
                // A default address no job could use is refused where it is set.
                let fallback = "\(receiver.url)/hooks/default"
                for (json, code) in [
                    (#"{"aiImageNotifyUrl": "\#(fallback)"}"#, "notify_secret_missing"),
                    (#"{"aiImageNotifyUrl": "http://10.0.0.5/", "aiImageNotifySecret": "\#(Self.secret)"}"#, "notify_url_refused"),
                ] {
                    let refused = try await system.call(.PUT, "/api/ai-image/settings", json: json)
                    #expect(refused.status == 409 && refused.text.contains(code), "\(json): \(refused.status) \(refused.text)")
                    contract.check(refused, "put", "/api/ai-image/settings")
                }
                let put = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageNotifySecret": "\#(Self.secret)"}"#)
                #expect(put.status == 200, "\(put.text)")
                let settings = try #require(try put.json()["settings"] as? [String: String])
                #expect(settings["aiImageNotifySecret"] == "whsec_…6789", "masked: \(settings["aiImageNotifySecret"] ?? "none")")
                #expect(!put.text.contains(Self.secret))

                // Addresses refused before anything is accepted (and before any connect).
                for (url, status, code) in [
                    ("http://10.0.0.5/hooks", 422, "notify_url_refused"), ("http://localhost:\(receiver.port)/", 422, "notify_url_refused"),
                    ("http://127.0.0.1:9/x", 422, "notify_url_refused"), ("ftp://127.0.0.1/x", 400, "invalid_field"),
                ] {
                    let refused = try await generate(#"{"notifyUrl": "\#(url)"}"#)
                    #expect(refused.status == status && refused.text.contains(code), "\(url): \(refused.status) \(refused.text)")
                }
                let wrongType = try await generate(#"{"notifyUrl": 7}"#)
                #expect(wrongType.status == 400 && wrongType.text.contains("notifyUrl must be a string"), "\(wrongType.text)")

                // One job: the first POST fails, the second is taken; the job and its attempts show it.
                let started = try await generate(#"{"shadowStyle": "soft", "notifyUrl": "\#(single)"}"#)
                #expect(started.status == 202, "\(started.text)")
                let jobId = try #require(try started.json()["jobId"] as? String)
                var notification: [String: Any] = [:]
                try await eventually("the job's notification is delivered", timeout: .seconds(120)) {
                    let answer = try await system.call(.GET, "/api/ai-image/jobs/\(jobId)/notification")
                    contract.check(answer, "get", "/api/ai-image/jobs/{jobId}/notification")
                    notification = try answer.json()
                    return notification["status"] as? String == "DELIVERED"
                }
                let attempts = try #require(notification["attempts"] as? [[String: Any]])
                #expect(attempts.compactMap { $0["statusCode"] as? Int } == [502, 204], "\(attempts)")
                #expect(attempts.first?["error"] as? String == "the receiver answered HTTP 502")
                #expect(notification["event"] as? String == "job.completed")
                #expect(notification["url"] as? String == single)
                let posts = await receiver.received(path: "/hooks/single")
                #expect(posts.count == 2)
                let delivered = try #require(posts.last)
                let signature = try #require(delivered.headers[HTTPField.Name("Cyclorama-Signature")!])
                #expect(NotificationSignatureCheck.verify(signature, body: delivered.body, secret: Self.secret), "\(signature)")
                #expect(delivered.headers[HTTPField.Name("Cyclorama-Notification-Id")!] == notification["id"] as? String)
                let event = try #require(try JSONSerialization.jsonObject(with: Data(delivered.body)) as? [String: Any])
                #expect(event["type"] as? String == "job.completed")
                let job = try #require(event["job"] as? [String: Any])
                #expect(job["jobId"] as? String == jobId && job["status"] as? String == "COMPLETED")
                #expect((job["media"] as? [String: Any])?["id"] as? String == mediaId, "the result travels with it")
                let status = try await system.call(.GET, "/api/ai-image/status/\(jobId)")
                contract.check(status, "get", "/api/ai-image/status/{jobId}")
                #expect(try status.json()["notifyUrl"] as? String == single)

                // The default from the settings reaches every item of a batch; an empty notifyUrl opts out.
                #expect(try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageNotifyUrl": "\#(fallback)"}"#).status == 200)
                let clearing = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageNotifySecret": ""}"#)
                #expect(clearing.status == 409 && clearing.text.contains("notify_secret_missing"), "the secret stays while a default needs it")
                let other = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                let batch = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(mediaId)", "\#(other)"]}"#)
                #expect(batch.status == 202, "\(batch.text)")
                let batchId = try #require(try batch.json()["batchId"] as? String)
                let quiet = try await generate(#"{"notifyUrl": ""}"#)
                let quietId = try #require(try quiet.json()["jobId"] as? String)
                let items = await receiver.waitForRequests(3, path: "/hooks/default", timeout: .seconds(120))
                #expect(items.count == 3, "one failed POST, then one per item")
                let bodies = try items.dropFirst().map { try #require(try JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any]) }
                #expect(bodies.allSatisfy { ($0["job"] as? [String: Any])?["batchId"] as? String == batchId }, "\(bodies)")
                try await eventually("the quiet job ends", timeout: .seconds(120)) {
                    try await system.call(.GET, "/api/ai-image/status/\(quietId)").json()["status"] as? String == "COMPLETED"
                }
                let none = try await system.call(.GET, "/api/ai-image/jobs/\(quietId)/notification")
                #expect(none.status == 404 && none.text.contains("no_notification"), "\(none.text)")
                contract.check(none, "get", "/api/ai-image/jobs/{jobId}/notification")
                #expect(await receiver.received(path: "/hooks/single").count == 2, "nothing more to the first job's address")
            }
        }
    }
}
