import Foundation
import Imaging
import Testing
import TestSupport

extension SystemSuites {
    /// Catalog framing through the running system on the local engine: the default from the
    /// settings, an explicit frame, a batch and variations each give the frame asked for.
    @Suite("Catalog framing, end to end", .timeLimit(.minutes(15)))
    struct FramingFlowTests {
        /// The media's current file, decoded.
        static func picture(_ system: CycloramaSystem, _ mediaId: String) async throws -> RasterImage {
            let file = try await system.call(.GET, "/api/media/\(mediaId)/file")
            #expect(file.status == 200)
            return try RasterImage(decoding: file.body)
        }

        @Test func everyWayOfAskingGetsTheFrameAskedFor() async throws {
            try await CycloramaSystem.run { system in
                let contract = try await APIContract.load(from: system)
                let single = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                let explicit = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                let batched = try await system.upload(try Samples.bytes("dev09", "input.jpg"))
                let varied = try await system.upload(try Samples.bytes("dev03", "input.jpg"))

                // The settings' default applies to a job that names no frame.
                let settings = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageDefaultFraming": "google", "aiImageAbTestEnabled": true}"#)
                #expect(settings.status == 200, "\(settings.text)")
                let refused = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageDefaultFraming": "etsy"}"#)
                #expect(refused.status == 400 && refused.text.contains("aiImageDefaultFraming"), "\(refused.text)")
                let byDefault = try await system.call(.POST, "/api/ai-image/generate/\(single)", json: "{}")
                #expect(byDefault.status == 202, "\(byDefault.text)")

                let portrait = try await system.call(
                    .POST, "/api/ai-image/generate/\(explicit)",
                    json: #"{"framing": {"aspect": "4:5", "fill": 0.7, "align": "bottom", "minSide": 1000, "maxSide": 1000}}"#)
                #expect(portrait.status == 202, "\(portrait.text)")
                contract.check(portrait, "post", "/api/ai-image/generate/{mediaId}")
                let wrong = try await system.call(.POST, "/api/ai-image/generate/\(explicit)", json: #"{"framing": {"fill": 2}}"#)
                #expect(wrong.status == 400 && (try? wrong.json()["error"] as? [String: Any])?["code"] as? String == "invalid_field", "\(wrong.text)")
                contract.check(wrong, "post", "/api/ai-image/generate/{mediaId}")

                let batch = try await system.call(
                    .POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(batched)"], "options": {"framing": "shopify"}}"#)
                #expect(batch.status == 202, "\(batch.text)")
                let batchJob = try #require((try batch.json()["jobs"] as? [[String: Any]])?.first?["jobId"] as? String)

                let variations = try await system.call(.POST, "/api/ai-image/variations/\(varied)", json: #"{"framing": "amazon"}"#)
                #expect(variations.status == 202, "\(variations.text)")
                contract.check(variations, "post", "/api/ai-image/variations/{mediaId}")
                let candidates = try #require(try variations.json()["variations"] as? [[String: Any]])

                for answer in [byDefault, portrait] {
                    let jobId = try #require(try answer.json()["jobId"] as? String)
                    let done = try await system.waitForTerminal(jobId, timeout: .seconds(240))
                    #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                }
                let google = try await Self.picture(system, single)
                #expect(google.width == google.height && (1500...2000).contains(google.width), "google: \(google.width)x\(google.height)")
                let framed = try await Self.picture(system, explicit)
                #expect(framed.width == 800 && framed.height == 1000, "4:5 at 1000: \(framed.width)x\(framed.height)")

                let batchDone = try await system.waitForTerminal(batchJob, timeout: .seconds(240))
                #expect(batchDone["status"] as? String == "COMPLETED", "\(batchDone)\n\(system.logs())")
                let shopify = try await Self.picture(system, batched)
                #expect(shopify.width == 2048 && shopify.height == 2048, "shopify: \(shopify.width)x\(shopify.height)")

                for candidate in candidates {
                    let done = try await system.waitForTerminal(try #require(candidate["jobId"] as? String), timeout: .seconds(240))
                    #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                }
                let sets = try #require(try await system.call(.GET, "/api/ai-image/variations/\(varied)").json()["sets"] as? [[String: Any]])
                for candidate in try #require(sets.first?["variations"] as? [[String: Any]]) {
                    let image = try RasterImage(decoding: try await system.call(.GET, try #require(candidate["url"] as? String)).body)
                    #expect(image.width == image.height && (1600...2000).contains(image.width), "amazon candidate: \(image.width)x\(image.height)")
                }
            }
        }
    }
}
