import Foundation
import Testing
import TestSupport

/// `POST /api/ai-image/batch`'s refusals, against the gateway and the settings-service run in
/// process (the batches that run are `SystemSuites.BatchTests`).
@Suite("Batch refusals", .timeLimit(.minutes(3)))
struct BatchAPITests {
    @Test func badBatchesAreRefusedWithTheReason() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let contract = try await APIContract.load(from: gateway)
            let known = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            let (missing1, missing2) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
            let unknown = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(known)", "\#(missing1)", "\#(missing2)"]}"#)
            #expect(unknown.status == 404 && unknown.error?.code == "unknown_media", "\(unknown.text)")
            contract.check(unknown, "post", "/api/ai-image/batch")
            #expect(unknown.error?.message.contains(missing1) == true && unknown.error?.message.contains(missing2) == true, "\(unknown.text)")
            #expect(unknown.error?.message.contains(known) == false)

            let many = (0...500).map { _ in "\"\(UUID().uuidString)\"" }.joined(separator: ",")
            let tooMany = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(many)]}"#)
            #expect(tooMany.status == 400)
            #expect(tooMany.error?.message.contains("500") == true, "\(tooMany.text)")

            let badOptions = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(known)"], "options": {"upscale": 3}}"#)
            #expect(badOptions.status == 400)
            #expect(badOptions.error?.message.hasPrefix("options.upscale") == true, "\(badOptions.text)")

            let empty = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": []}"#)
            #expect(empty.status == 400)
            let notUUID = try await gateway.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["abc"]}"#)
            #expect(notUUID.error?.message.contains("mediaIds[0]") == true)
            #expect(try await gateway.jobCount() == 0, "nothing was queued")
        }
    }
}
