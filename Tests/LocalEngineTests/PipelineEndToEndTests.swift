import Imaging
import RunPod
import Foundation
import Testing
import TestSupport

@testable import LocalEngine

/// The engine with the real image pipeline: a product photo in, a studio shot out, over HTTP.
@Suite("local-engine with the real pipeline", .timeLimit(.minutes(3)))
struct PipelineEndToEndTests {
    @Test func aProductPhotoBecomesATransparentPNGOfTheSameSize() async throws {
        let engine = try await EngineHarness(simulateMs: nil, concurrency: 1)
        defer { Task { await engine.stop() } }
        let health = try await engine.health()
        #expect(health.renderer.mode == "pipeline")
        let segmenter = health.renderer.segmenter
        #expect(segmenter == PipelineConfiguration.defaultModel || segmenter.hasPrefix("classical"), "\(segmenter)")

        let photo = try Samples.productJPEG
        let header = try ImageHeader(sniffing: photo)
        let reply = try await engine.submit(
            ["image": Samples.dataURI(photo, type: "image/jpeg"), "background": "transparent", "shadow": "soft"],
            path: "/runsync")
        let body = try reply.decode(JobStatusBody.self)
        try #require(body.status == .completed, "\(body.error ?? ""); log:\n\(engine.process.log().suffix(2000))")
        let output = try #require(body.output)
        #expect(output.format == "png")
        #expect(output.width == header.width && output.height == header.height)
        #expect(output.timings["segment"] != nil && output.timings["total"] != nil)

        let served = try await engine.call(.GET, output.imageURL)
        #expect(served.status == 200)
        let result = try ImageHeader(sniffing: served.body)
        #expect(result == ImageHeader(format: "png", width: header.width, height: header.height))
        // RGBA: PNG colour type 6.
        #expect(served.body.count > 25 && served.body[25] == 6)

        // The same photo again on white (a variation): its segmentation is reused, not computed again.
        #expect(try await engine.health().renderer.segmentationsComputed == 1)
        let variation = try await engine.submit(
            ["image": Samples.dataURI(photo, type: "image/jpeg"), "background": "#FFFFFF", "shadow": "soft"], path: "/runsync")
        let variationBody = try variation.decode(JobStatusBody.self)
        #expect(variationBody.status == .completed, "\(variationBody.error ?? "")")
        let counts = try await engine.health().renderer
        #expect(counts.segmentationsReused == 1 && counts.segmentationsComputed == 1, "\(counts)")
    }

    @Test func undecodableImagesFailClearlyAndTheEngineKeepsServing() async throws {
        let engine = try await EngineHarness(simulateMs: nil, concurrency: 1)
        defer { Task { await engine.stop() } }
        let photo = try Samples.productJPEG
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("text", Array("this is not an image at all\n".utf8)),
            ("truncated JPEG", Array(photo.prefix(photo.count / 3))),
        ]
        for (name, bytes) in cases {
            let body = try await engine.submit(["image": Samples.dataURI(bytes, type: "image/jpeg")], path: "/runsync").decode(JobStatusBody.self)
            #expect(body.status == .failed, "\(name): \(body.status)")
            #expect(body.error?.hasPrefix("input.image: ") == true, "\(name): \(body.error ?? "nil")")
        }
        let good = try await engine.submit(
            ["image": Samples.dataURI(Samples.tinyPNG), "upscale": 2, "outputFormat": "jpeg", "shadow": "none"], path: "/runsync"
        ).decode(JobStatusBody.self)
        #expect(good.status == .completed, "\(good.error ?? "")")
        #expect(good.output?.width == 4 && good.output?.format == "jpeg")
    }
}
