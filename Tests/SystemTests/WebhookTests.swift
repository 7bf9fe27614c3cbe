import Crypto
import Database
import Foundation
import Messaging
import ServiceCore
import ServiceSupport
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// RunPod webhooks (RUNPOD.md): a per-submission token in the URL, checked by the gateway; the
    /// call is only a hint the dispatcher confirms with `/status`; forged and replayed calls refused;
    /// polling takes over when no call comes.
    @Suite("Webhooks", .timeLimit(.minutes(15)))
    struct WebhookTests {
        static let apiKey = RunPodBackendTests.apiKey
        static let route = "/api/ai-image/webhook/{jobId}/{token}"

        @Test func jobsFinishOnTheirWebhookAndForgedOrReplayedCallsAreRefused() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "held": .init(jobs: [[.holdUntilReleased]]),
                "twice": .init(jobs: [[.runFor(.milliseconds(300))]], webhookCalls: 2),
                "cancelled": .init(jobs: [[.holdUntilReleased]]),
            ])
            try await CycloramaSystem.run(overrides: [
                // Polling would start only after 10 minutes: within this test, only webhooks finish jobs.
                "runpod-dispatcher": ["RUNPOD_ENDPOINT_URL": standIn.endpointURL, "DISPATCH_WEBHOOK_WAIT_SECONDS": "600"],
                "result-ingestor": ["INGEST_ALLOWED_HOSTS": "\(standIn.hostAndPort),$ENGINE"],
                // The engine's benchmark mode, its jobs held when the test asks: the one cancelled below
                // is still rendering when the cancel arrives, however slow the machine (a real render
                // can end first).
                "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"],
            ]) { system in
                let contract = try await APIContract.load(from: system)
                let put = try await system.call(.PUT, "/api/ai-image/settings", json: """
                    {"aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": "\(Self.apiKey)",
                     "aiImageEnableWebhooks": true, "aiImageWebhookUrl": "\(system.gatewayURL)"}
                    """)
                #expect(put.status == 200, "\(put.text)")
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                func start(_ json: String) async throws -> String {
                    let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: json)
                    return try #require(try answer.json()["jobId"] as? String, "\(answer.status) \(answer.text)")
                }
                func post(_ url: String, _ body: String) async throws -> HTTPAnswer {
                    // No Authorization header: RunPod cannot send one.
                    try await HTTPProbe.send(.POST, url, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
                }

                // The submission carries a webhook URL with a fresh token; only its SHA-256 is stored.
                let held = try await start(#"{"customInstructions": "case:held"}"#)
                try await eventually("the held job reaches the stand-in") { !standIn.runs("held").isEmpty }
                let webhook = try #require(standIn.runs("held").first?.body["webhook"]?.stringValue)
                let prefix = "\(system.gatewayURL)/api/ai-image/webhook/\(held)/"
                #expect(webhook.hasPrefix(prefix), "\(webhook)")
                let token = String(webhook.dropFirst(prefix.count))
                #expect(token.count == 64 && token.allSatisfy(\.isHexDigit), "an unguessable token: \(token)")
                let stored = try await SystemDatabase.withClient(system.database.url) {
                    try await JobLedger(client: $0).webhookGuard(try #require(UUID(uuidString: held)))
                }
                let digest = Digest.sha256Hex(Data(token.utf8))
                #expect(stored?.tokenSHA256 == digest, "the ledger keeps the digest, not the token")

                // Forged calls: a wrong token, an unknown job. Refused, and nothing is asked of the backend.
                let claim = #"{"id": "held-0", "status": "COMPLETED", "output": {"image_url": "http://203.0.113.9/forged.png"}}"#
                let wrongToken = try await post(prefix + String(repeating: "0", count: 64), claim)
                #expect(wrongToken.status == 403)
                #expect(wrongToken.error?.code == "webhook_forbidden")
                contract.check(wrongToken, "post", Self.route)
                let otherJob = try await post("\(system.gatewayURL)/api/ai-image/webhook/\(UUID().uuidString.lowercased())/\(token)", claim)
                #expect(otherJob.status == 403, "a token is good for its own job only")
                let truncated = try await post(String(webhook.dropLast()), claim)
                #expect(truncated.status == 403)

                // A call with the right token is a hint: the dispatcher asks /status, which says the job
                // is still running, so the false claim of COMPLETED changes nothing.
                let hint = try await post(webhook, claim)
                #expect(hint.status == 200, "\(hint.text)")
                #expect(try hint.json()["received"] as? Bool == true)
                contract.check(hint, "post", Self.route)
                try await eventually("the dispatcher confirms with /status") { standIn.statusCalls("held") == 1 }
                try await Task.sleep(for: .seconds(1))
                let stillRunning = try await system.call(.GET, "/api/ai-image/status/\(held)").json()
                #expect(["SUBMITTED", "IN_PROGRESS"].contains(stillRunning["status"] as? String ?? "-"), "\(stillRunning)")
                #expect(standIn.downloads("held") == 0, "nothing was taken from the forged output")

                // The backend finishes and calls: the job completes without any polling.
                standIn.release("held")
                let heldDone = try await system.waitForTerminal(held)
                #expect(heldDone["status"] as? String == "COMPLETED", "\(heldDone)\n\(system.logs())")
                try await eventually("the webhook call was answered") { !standIn.webhookAnswers("held").isEmpty }
                #expect(standIn.webhookAnswers("held") == [200])
                #expect(standIn.statusCalls("held") == 2, "one /status per accepted call, no polling")

                // A cancel is seen while the job waits for its webhook (not only when the wait ends).
                try await Self.cancelWhileWaitingForTheWebhook(try await start(#"{"customInstructions": "case:cancelled"}"#), system, standIn)



                // A replay after the end is refused.
                let replay = try await post(webhook, claim)
                #expect(replay.status == 409)
                #expect(replay.error?.code == "webhook_replayed")
                contract.check(replay, "post", Self.route)

                // RunPod calling twice: the result is applied once.
                let twice = try await start(#"{"customInstructions": "case:twice"}"#)
                let twiceDone = try await system.waitForTerminal(twice)
                #expect(twiceDone["status"] as? String == "COMPLETED", "\(twiceDone)")
                try await eventually("both calls answered") { standIn.webhookAnswers("twice").count == 2 }
                let answers = standIn.webhookAnswers("twice")
                #expect(answers.first == 200 && [200, 409].contains(answers.last ?? 0), "\(answers)")
                #expect(standIn.downloads("twice") == 1, "downloaded once")

                // The local engine speaks the same protocol: its webhook call finishes a local job too.
                let local = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageBackend": "local"}"#)
                #expect(local.status == 200)
                let localDone = try await system.waitForTerminal(try await start("{}"))
                #expect(localDone["status"] as? String == "COMPLETED", "\(localDone)\n\(system.logs())")
                #expect(localDone["backend"] as? String == "local")

                // A local job cancelled while it renders: the engine's webhook call is refused (409) and
                // the engine logs that without the token.
                // Held at the engine, so only the dispatcher's cancel there ends it (the engine then
                // calls the webhook with CANCELLED).
                try system.holdEngineJobs()
                let cancelledLocal = try await start("{}")
                try await Self.waitUntilSubmitted(cancelledLocal, system)
                #expect(try await system.call(.POST, "/api/ai-image/jobs/\(cancelledLocal)/cancel").status == 200)
                try await Self.waitForLog("webhook not accepted", of: "local-engine", system)

                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 4, "the upload and three jobs, each applied once")

                // Refusals are logged; the token never is.
                let gatewayLog = system.process("api-gateway")?.log() ?? ""
                #expect(gatewayLog.contains("refused a forged webhook call"))
                #expect(gatewayLog.contains("refused a replayed webhook call"))
                for name in CycloramaSystem.serviceNames {
                    let log = system.process(name)?.log() ?? ""
                    #expect(!log.contains(token), "\(name) logged a webhook token")
                    #expect(!Self.containsWebhookURL(log), "\(name) logged a webhook URL with its token")
                }
            }
            await standIn.stop()
        }

        static func cancelWhileWaitingForTheWebhook(_ jobId: String, _ system: CycloramaSystem, _ standIn: RunPodStandIn) async throws {
            try await eventually("the job reaches the stand-in") { !standIn.runs("cancelled").isEmpty }
            let answer = try await system.call(.POST, "/api/ai-image/jobs/\(jobId)/cancel")
            #expect(answer.status == 200, "\(answer.text)")
            try await eventually("cancelled at the backend", timeout: .seconds(30)) { standIn.cancels().contains(standIn.jobId("cancelled", 0)) }
        }

        /// Whether `text` holds a webhook URL with its token (`…/webhook/<jobId>/<64 hex>`).
        static func containsWebhookURL(_ text: String) -> Bool {
            text.range(of: #"webhook/[0-9a-f-]{36}/[0-9a-f]{64}"#, options: .regularExpression) != nil
        }

        static func waitForLog(_ text: String, of service: String, _ system: CycloramaSystem) async throws {
            for _ in 0..<900 {
                if system.process(service)?.log().contains(text) == true { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw FixtureError(message: "\(service) never logged \"\(text)\"\n\(system.logs())")
        }

        static func waitUntilSubmitted(_ jobId: String, _ system: CycloramaSystem) async throws {
            for _ in 0..<600 {
                let status = try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String
                if ["SUBMITTED", "IN_PROGRESS"].contains(status ?? "") { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw FixtureError(message: "job \(jobId) never reached the engine")
        }

        @Test func whenNoWebhookComesPollingTakesOverAndBadNoticesAreDeadLettered() async throws {
            let standIn = try await RunPodStandIn(scenarios: ["silent": .init(jobs: [[.runFor(.milliseconds(300))]], webhookCalls: 0)])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides(dispatcher: ["DISPATCH_WEBHOOK_WAIT_SECONDS": "2"])) { system in
                try await system.updateSettings([
                    "aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": Self.apiKey,
                    "aiImageEnableWebhooks": "true", "aiImageWebhookUrl": system.gatewayURL,
                ])
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:silent"}"#)
                let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                #expect(standIn.runs("silent").first?.body["webhook"]?.stringValue != nil, "a webhook was asked for")
                // Polling alone (100 ms growing) would have asked several times during the 300 ms job; the
                // follower waited for the webhook instead, and asked once when the wait ran out.
                #expect(standIn.statusCalls("silent") == 1, "the result was found by the first poll after the wait")

                // A notice that does not validate goes to the dispatchers' shared dead-letter queue with the reason.
                let probe = try await BrokerProbe(url: system.amqpURL)
                let marker = UUID().uuidString.lowercased()
                let body = """
                    {"type":"cyclorama.backend.webhook","schemaVersion":1,"messageId":"\(marker)","correlationId":"c-\(marker)",
                     "occurredAt":"2026-11-29T10:15:30.123Z","backendStatus":"COMPLETED"}
                    """
                try await probe.publish(Array(body.utf8), exchange: Routing.Exchange.events, routingKey: Routing.Key.backendWebhook)
                let dead = try #require(
                    try await probe.deadLettered(from: Routing.Queue.webhookNotices, containing: marker, timeout: .seconds(30)),
                    "nothing dead-lettered\n\(system.logs())")
                #expect(dead.headers[Routing.Header.reason]?.contains("jobId") == true, "\(dead.headers)")
                await probe.close()
            }
            await standIn.stop()
        }
    }
}
