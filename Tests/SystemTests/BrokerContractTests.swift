import Foundation
import Messaging
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// Another system publishes straight onto the broker (no gateway) and hears back where it asked.
    @Suite("Broker contract", .timeLimit(.minutes(10)))
    struct BrokerContractTests {
        @Test func aRequestPublishedOnTheBrokerGetsItsTerminalEventAtReplyTo() async throws {
            try await CycloramaSystem.run { system in
                let mediaId = try #require(UUID(uuidString: try await system.upload(try Samples.bytes("dev09", "input.jpg"))))
                let replies = BrokerProbe.replyQueue()
                let probe = try await BrokerProbe(queues: [replies], url: system.amqpURL)
                let request = RequestGeneration(
                    jobId: UUID(), mediaId: mediaId, options: GenerationOptions(shadowStyle: .minimal),
                    replyTo: ReplyAddress(exchange: "", routingKey: replies.name), requestedBy: "erp-sync")
                try await probe.connection.publish(request)

                let delivery = try #require(
                    try await probe.first(on: replies.name, timeout: .seconds(120)),
                    "nothing arrived at replyTo\n\(system.logs())")
                let terminal = try MessageDecoder.decode(delivery.body)
                guard case .generationCompleted(let completed) = terminal else {
                    Issue.record("expected GenerationCompleted, got \(terminal.type)")
                    await probe.close()
                    return
                }
                #expect(completed.jobId == request.jobId)
                #expect(completed.correlationId == request.correlationId)
                #expect(completed.options.shadowStyle == .minimal)
                // The job is in the ledger like any other, and the media shows the result.
                let status = try await system.call(.GET, "/api/ai-image/status/\(request.jobId.uuidString.lowercased())").json()
                #expect(status["status"] as? String == "COMPLETED", "\(status)")
                #expect((status["media"] as? [String: Any])?["currentVersionId"] as? String == completed.mediaVersionId.uuidString.lowercased())
                await probe.close()
            }
        }

        @Test func anInvalidRequestLandsInTheDeadLetterQueueWithTheReason() async throws {
            try await CycloramaSystem.run(without: ["runpod-dispatcher", "result-ingestor", "local-engine"]) { system in
                let probe = try await BrokerProbe(url: system.amqpURL)
                let marker = UUID().uuidString.lowercased()
                let body = """
                    {"type":"cyclorama.generation.request","schemaVersion":1,"messageId":"\(marker)","correlationId":"c-\(marker)",
                     "occurredAt":"2026-11-29T10:15:30.123Z","jobId":"\(UUID().uuidString)","mediaId":"\(UUID().uuidString)",
                     "kind":"single","options":{"upscale":3}}
                    """
                try await probe.publish(Array(body.utf8), exchange: Routing.Exchange.commands, routingKey: Routing.Key.generationRequest)
                let dead = try #require(
                    try await probe.deadLettered(from: Routing.Queue.generationRequests, containing: marker, timeout: .seconds(30)),
                    "nothing dead-lettered\n\(system.logs())")
                let reason = try #require(dead.headers[Routing.Header.reason])
                #expect(reason.contains("upscale"), "\(reason)")
                await probe.close()
            }
        }
    }
}
