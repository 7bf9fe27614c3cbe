import RunPod
import Shared
import Foundation
import Hummingbird
import Testing
import TestSupport

@testable import LocalEngine

/// Webhooks on terminal states, with RunPod's retries, to a real receiver inside the test.
@Suite("local-engine webhooks", .timeLimit(.minutes(2)))
struct WebhookTests {
    @Test func aCompletedJobIsPostedToItsWebhookAndRetriedAfterA500() async throws {
        // The receiver fails the first delivery and accepts the second.
        let receiver = try await TestHTTPServer { _, index in
            (index == 0 ? .internalServerError : .ok, [:], Array("ok".utf8))
        }
        defer { Task { await receiver.stop() } }
        let engine = try await EngineHarness(simulateMs: 50, environment: [
            "LOCAL_ENGINE_WEBHOOK_RETRY_SECONDS": "0.3", "LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:\(receiver.port)",
        ])
        defer { Task { await engine.stop() } }

        let hook = "\(receiver.url)/hooks/\(UUID().uuidString)"
        let input: [String: Any] = ["image": Samples.dataURI(Samples.tinyPNG), "shadow": "dramatic", "returnBase64": true]
        let id = try await engine.run(input, webhook: hook)
        let path = String(hook.dropFirst(receiver.url.count))
        let calls = await receiver.waitForRequests(2, path: path, timeout: .seconds(20))
        try #require(calls.count == 2, "expected 2 deliveries, got \(calls.count); log:\n\(engine.process.log())")
        #expect(calls[1].at - calls[0].at >= .milliseconds(280))
        #expect(calls.allSatisfy { $0.method == "POST" })

        let body = try JSONDecoder().decode(JobStatusBody.self, from: Data(calls[1].body))
        #expect(body.id == id && body.status == .completed)
        #expect(body.webhook == hook)
        #expect(body.output?.width == 2)
        #expect(body.output?.imageBase64 == Data(Samples.tinyPNG).base64EncodedString())
        #expect(body.delayTime != nil && body.executionTime != nil)
        // The input is echoed, with the data URI's payload elided.
        guard case .object(let echoed)? = body.input else { Issue.record("no input echoed"); return }
        #expect(echoed["shadow"] == .string("dramatic"))
        if case .string(let image)? = echoed["image"] { #expect(image.hasPrefix("data:image/png;base64,") && image.contains("elided")) }

        // Accepted on the second try: no third delivery.
        try await Task.sleep(for: .milliseconds(600))
        #expect(await receiver.received(path: path).count == 2)
    }

    @Test func aFailingReceiverGetsThreeAttemptsAndFailedJobsAreDeliveredToo() async throws {
        let receiver = try await TestHTTPServer { _, _ in (.serviceUnavailable, [:], []) }
        defer { Task { await receiver.stop() } }
        // 5 s a job: long enough that the cancel below reaches the queued job before the one ahead
        // of it ends, even on a loaded machine (at 1 s it sometimes ran and completed first).
        try await InProcessEngine.test(
            simulateMs: 5000,
            environment: ["LOCAL_ENGINE_WEBHOOK_RETRY_SECONDS": "0.2", "LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:\(receiver.port)"]
        ) { engine in

            let id = try await engine.run(["image": Samples.dataURI(Samples.tinyPNG), "shadow": "spooky"], webhook: "\(receiver.url)/failed")
            let calls = await receiver.waitForRequests(3, path: "/failed", timeout: .seconds(20))
            #expect(calls.count == 3)
            try await Task.sleep(for: .milliseconds(500))
            #expect(await receiver.received(path: "/failed").count == 3, "no more than 3 attempts")
            let body = try JSONDecoder().decode(JobStatusBody.self, from: Data(try #require(calls.first).body))
            #expect(body.id == id && body.status == .failed)
            #expect(body.error?.contains("input.shadow") == true)

            // Cancelled jobs are terminal too (this one waits behind a 5 s job).
            _ = try await engine.run(["image": Samples.dataURI(Samples.tinyPNG)])
            let queued = try await engine.run(["image": Samples.dataURI(Samples.tinyPNG)], webhook: "\(receiver.url)/cancelled")
            _ = try await engine.call(.POST, "/cancel/\(queued)")
            let cancelled = await receiver.waitForRequests(1, path: "/cancelled", timeout: .seconds(20))
            let cancelledBody = try JSONDecoder().decode(JobStatusBody.self, from: Data(try #require(cancelled.first).body))
            #expect(cancelledBody.id == queued && cancelledBody.status == .cancelled)
        }
    }

    /// The engine POSTs to a job's webhook, so the webhook's host is checked at submission against
    /// LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS: anything else is a 400 and no job, so nothing is ever sent
    /// there (by default only the gateway, 127.0.0.1:8080 / localhost:8080, is allowed).
    @Test func aWebhookToAHostNotAllowedIsRefusedAtSubmission() async throws {
        let receiver = try await TestHTTPServer { _, _ in (.ok, [:], []) }
        defer { Task { await receiver.stop() } }
        try await InProcessEngine.test(simulateMs: 10, environment: ["LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:\(receiver.port)"]) { engine in
            let input: [String: Any] = ["image": Samples.dataURI(Samples.tinyPNG)]
            // Other ports and hosts, however spelled; none of them is ever contacted (refused from the URL).
            for hook in [
                "http://127.0.0.1:\(receiver.port + 1)/hook", "http://localhost:\(receiver.port)/hook", "http://127.0.0.2:\(receiver.port)/hook",
                "https://127.0.0.1/hook", "http://[::1]:\(receiver.port)/hook", "ftp://127.0.0.1:\(receiver.port)/hook",
            ] {
                let answer = try await engine.submit(input, webhook: hook)
                #expect(answer.status == 400, "\(hook): \(answer.text)")
                #expect(answer.text.contains("webhook"), "\(hook): \(answer.text)")
            }
            let health = try await engine.call(.GET, "/health").decode(EngineHealth.self)
            #expect(health.jobs.completed + health.jobs.failed + health.jobs.inQueue + health.jobs.inProgress == 0, "no job was made")
            // The allowed one is delivered.
            _ = try await engine.run(input, webhook: "\(receiver.url)/allowed")
            #expect(await receiver.waitForRequests(1, path: "/allowed", timeout: .seconds(20)).count == 1)
            #expect(await receiver.received(path: "/hook").isEmpty)
        }
    }
}
