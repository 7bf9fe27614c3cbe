import Foundation
import Logging
import Messaging
import ServiceSupport
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// Another system publishes straight onto the broker (no gateway) and hears back where it asked.
    @Suite("Broker contract", .timeLimit(.minutes(15)))
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

        /// A result is applied only to the media its accepted job names: a message that claims another
        /// media, or a job nobody accepted, is dead-lettered with the reason and changes nothing.
        @Test func aForgedResultChangesNoMediaAndEndsNoJob() async throws {
            // No dispatcher: the real job stays open while the forged results arrive.
            try await CycloramaSystem.run(without: ["runpod-dispatcher"]) { system in
                let victim = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                let owner = try await system.upload(try Samples.bytes("dev09", "input.jpg"))
                let jobId = try #require(
                    try await system.call(.POST, "/api/ai-image/generate/\(owner)", json: "{}").json()["jobId"] as? String)
                let probe = try await BrokerProbe(url: system.amqpURL)
                let engineResult = "http://127.0.0.1:\(system.ports["local-engine"]!)/v2/cyclorama-studio/results/x.png"
                func forged(_ job: UUID) throws -> GenerationRendered {
                    GenerationRendered(
                        jobId: job, mediaId: try #require(UUID(uuidString: victim)), kind: .single, backend: .local,
                        backendJobId: "forged", outputUrl: engineResult, cost: 0, executionTimeMs: 1,
                        options: ResolvedGenerationOptions(
                            shadowStyle: .soft, backgroundColor: BackgroundColor("#ffffff")!, removeWatermark: false, upscale: .x1))
                }
                let otherMediasJob = try forged(try #require(UUID(uuidString: jobId)))
                let unknownJob = try forged(UUID())
                try await probe.connection.publish(otherMediasJob)
                try await probe.connection.publish(unknownJob)

                // Both at once: a search for one would hold the other, prefetched, until the probe closes.
                let markers = [otherMediasJob.jobId.uuidString, unknownJob.jobId.uuidString]
                let dead = try await probe.collect(
                    2, on: QueueDeclaration(name: Routing.Queue.generationRendered).deadLetterQueueName, timeout: .seconds(30)
                ) { delivery in markers.contains { String(decoding: delivery.body, as: UTF8.self).contains($0) } }
                for (message, expected) in [
                    (otherMediasJob, "is for media \(owner), not \(victim)"),
                    (unknownJob, "no job \(unknownJob.jobId.uuidString.lowercased()) in the ledger"),
                ] {
                    let letter = try #require(
                        dead.first { String(decoding: $0.body, as: UTF8.self).contains(message.jobId.uuidString) },
                        "not dead-lettered\n\(system.logs())")
                    let reason = try #require(letter.headers[Routing.Header.reason])
                    #expect(reason.contains(expected), "\(reason)")
                }
                let versions = try await system.call(.GET, "/api/media/\(victim)/versions").json()["versions"] as? [[String: Any]]
                #expect(versions?.count == 1, "the victim kept its photo")
                let status = try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()["status"] as? String
                #expect(!["FAILED", "COMPLETED", "CANCELLED"].contains(status ?? ""), "the real job is left alone: \(status ?? "-")")
                let unknown = try await system.call(.GET, "/api/ai-image/status/\(unknownJob.jobId.uuidString.lowercased())")
                #expect(unknown.status == 404, "a forged result creates no job: \(unknown.text)")
                await probe.close()
            }
        }

        /// `settings.changed` is a hint: a service asks the settings-service again, so a SettingsChanged
        /// that someone else publishes on the events exchange changes no service's settings.
        @Test func aForgedSettingsChangedChangesNoServicesSettings() async throws {
            try await CycloramaSystem.run(without: ["runpod-dispatcher", "result-ingestor", "local-engine", "prompt-service", "api-gateway"]) { system in
                let replyQueue = SettingsClient.makeReplyQueue(serviceName: "test-reader")
                let probe = try await BrokerProbe(queues: [replyQueue], url: system.amqpURL)
                let client = SettingsClient(broker: probe.connection, replyQueue: replyQueue, logger: Logger(label: "test.settings"))
                let reader = Task { try await client.run() }
                defer { reader.cancel() }
                let genuine = try await client.settings()
                #expect(genuine["aiImageMaxConcurrent"] != nil, "\(genuine)")
                var forgedValues = genuine
                forgedValues["aiImageMaxConcurrent"] = genuine["aiImageMaxConcurrent"] == "9" ? "8" : "9"
                forgedValues["aiImageWebhookUrl"] = "https://attacker.example/hook"
                forgedValues["aiImageEnableWebhooks"] = "true"
                let forged = SettingsChanged(changedKeys: ["aiImageMaxConcurrent", "aiImageWebhookUrl"], settings: forgedValues)
                try await probe.publish(
                    try MessageCoding.encode(forged), exchange: Routing.Exchange.events, routingKey: Routing.Key.settingsChanged,
                    type: MessageType.settingsChanged.rawValue)
                // The event reaches the client within milliseconds; for two seconds every read must
                // still be the settings-service's (before the fix, the forged values from the first
                // read after the event on).
                let end = ContinuousClock.now + .seconds(2)
                var reads = 0
                // Two seconds and at least five reads (on a loaded machine one read can take seconds).
                while ContinuousClock.now < end || reads < 5 {
                    let seen = try await client.settings()
                    reads += 1
                    #expect(seen["aiImageMaxConcurrent"] == genuine["aiImageMaxConcurrent"], "\(seen)")
                    #expect(seen["aiImageWebhookUrl"] == genuine["aiImageWebhookUrl"], "\(seen)")
                    if seen != genuine { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(reads >= 5)
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

        /// A request that fails validation but says where to answer is answered there: GenerationFailed
        /// `invalid_request` with the reason, at once. It never becomes a job, and it is dead-lettered.
        @Test func anInvalidRequestWithReplyToIsAnsweredThereWithTheReason() async throws {
            try await CycloramaSystem.run(without: ["runpod-dispatcher", "result-ingestor", "local-engine"]) { system in
                let replies = BrokerProbe.replyQueue()
                let probe = try await BrokerProbe(queues: [replies], url: system.amqpURL)
                let jobId = UUID().uuidString.lowercased(), mediaId = UUID().uuidString.lowercased(), marker = UUID().uuidString.lowercased()
                let body = """
                    {"type":"cyclorama.generation.request","schemaVersion":1,"messageId":"\(marker)","correlationId":"c-\(marker)",
                     "occurredAt":"2026-11-29T10:15:30.123Z","jobId":"\(jobId)","mediaId":"\(mediaId)",
                     "kind":"single","options":{"shadowStyle":"spooky"},"replyTo":{"exchange":"","routingKey":"\(replies.name)"}}
                    """
                try await probe.publish(Array(body.utf8), exchange: Routing.Exchange.commands, routingKey: Routing.Key.generationRequest)
                let answer = try #require(
                    try await probe.first(on: replies.name, timeout: .seconds(30)), "no refusal at replyTo\n\(system.logs())")
                guard case .generationFailed(let failed) = try MessageDecoder.decode(answer.body) else {
                    Issue.record("expected GenerationFailed: \(String(decoding: answer.body, as: UTF8.self))")
                    await probe.close()
                    return
                }
                #expect(failed.jobId.uuidString.lowercased() == jobId && failed.mediaId.uuidString.lowercased() == mediaId)
                #expect(failed.correlationId == "c-\(marker)" && failed.code == .invalidRequest && !failed.retryable)
                #expect(failed.reason.contains("shadowStyle"), "\(failed.reason)")
                let dead = try #require(try await probe.deadLettered(from: Routing.Queue.generationRequests, containing: marker, timeout: .seconds(30)))
                #expect(dead.headers[Routing.Header.reason]?.contains("shadowStyle") == true)
                #expect(try await system.call(.GET, "/api/ai-image/status/\(jobId)").status == 404, "never a job")

                // An invalid copy that names an accepted job is not answered: that job ends once, on its own.
                let photo = try await system.upload(try Samples.bytes("dev03", "input.jpg"))
                let accepted = try #require(
                    try await system.call(.POST, "/api/ai-image/generate/\(photo)", json: "{}").json()["jobId"] as? String)
                let copy = UUID().uuidString.lowercased()
                let forged = body.replacingOccurrences(of: jobId, with: accepted).replacingOccurrences(of: marker, with: copy)
                try await probe.publish(Array(forged.utf8), exchange: Routing.Exchange.commands, routingKey: Routing.Key.generationRequest)
                let refused = try #require(try await probe.deadLettered(from: Routing.Queue.generationRequests, containing: copy, timeout: .seconds(30)))
                #expect(refused.headers[Routing.Header.reason]?.contains("not answered") == true, "\(refused.headers)")
                #expect(try await probe.first(on: replies.name, timeout: .seconds(2)) == nil, "no refusal for an accepted job")
                await probe.close()
            }
        }
    }
}
