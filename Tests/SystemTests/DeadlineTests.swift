import Foundation
import Messaging
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// The gateway's reaper ends every job still open past its deadline (docs/reliability.md, I1),
    /// and tells the requester at `replyTo`.
    @Suite("Deadlines", .timeLimit(.minutes(15)))
    struct DeadlineTests {
        @Test func aJobStillOpenAtItsDeadlineIsEndedTimedOutAndTheRequesterHearsOfIt() async throws {
            // No dispatcher: every job waits in the dispatch queue (PROMPTING) past a short queue deadline.
            try await CycloramaSystem.run(
                without: ["runpod-dispatcher", "result-ingestor", "local-engine"],
                overrides: [
                    "api-gateway": ["JOB_QUEUE_DEADLINE_SECONDS": "10", "JOB_REAPER_INTERVAL_SECONDS": "1"],
                    // It writes the ledger row (and so the deadline) of the job published on the broker.
                    "prompt-service": ["JOB_QUEUE_DEADLINE_SECONDS": "10"],
                ]
            ) { system in
                let mediaId = try await system.upload(try Samples.bytes("dev03", "input.jpg"))
                let viaAPI = try #require(
                    try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                // Another system's request on the broker, with a replyTo.
                let replies = BrokerProbe.replyQueue()
                let probe = try await BrokerProbe(queues: [replies], url: system.amqpURL)
                let request = RequestGeneration(
                    jobId: UUID(), mediaId: try #require(UUID(uuidString: mediaId)),
                    replyTo: ReplyAddress(exchange: "", routingKey: replies.name), requestedBy: "erp-sync")
                try await probe.connection.publish(request)

                let ended = try await system.waitForTerminal(viaAPI, timeout: .seconds(60))
                #expect(ended["status"] as? String == "FAILED", "\(ended)")
                let error = try #require(ended["error"] as? [String: Any])
                #expect(error["code"] as? String == "timed_out")
                #expect((error["message"] as? String)?.contains("JOB_QUEUE_DEADLINE_SECONDS") == true, "\(error)")

                // The broker job's requester hears it at its replyTo (recorded from the job's first event).
                let delivery = try #require(try await probe.first(on: replies.name, timeout: .seconds(60)), "nothing at replyTo\n\(system.logs())")
                let failed = try MessageDecoder.decode(GenerationFailed.self, from: delivery.body)
                #expect(failed.jobId == request.jobId)
                #expect(failed.code == .timedOut)
                let status = try await system.waitForTerminal(request.jobId.uuidString.lowercased(), timeout: .seconds(30))
                #expect(status["status"] as? String == "FAILED")
                await probe.close()
            }
        }
    }
}
