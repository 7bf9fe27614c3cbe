import Foundation
import Imaging
import Synchronization
import Testing

/// A photo rendered again with other options (variations, another background, a retry) reuses its
/// segmentation: the same studio shot, without the model's forward pass (docs/engine.md,
/// "Segmentation cache").
@Suite("Segmentation cache", .blockingWork)
struct SegmentationCacheTests {
    static func scene(_ prefix: String) throws -> SampleScene {
        try #require(Fixtures.scenes.first { $0.name.hasPrefix(prefix) })
    }

    @Test func aPhotoRenderedAgainReusesItsSegmentationAndGetsTheSameShot() throws {
        let cached = try StudioShotPipeline(configuration: PipelineConfiguration(segmentationCacheEntries: 2))
        let uncached = try StudioShotPipeline(configuration: PipelineConfiguration(segmentationCacheEntries: 0))
        let shoe = try Self.scene("dev09_dark_shoe")
        let white = try cached.render(StudioShotRequest(image: shoe.input, background: .white, shadow: .soft))
        #expect(!white.segmentationReused)
        let transparent = StudioShotRequest(image: shoe.input, background: .transparent, shadow: .none)
        let again = try cached.render(transparent)
        #expect(again.segmentationReused)
        #expect(cached.segmentationCounts == (1, 1))
        // Byte for byte what a pipeline that segments every time renders.
        let fresh = try uncached.render(transparent)
        #expect(!fresh.segmentationReused)
        #expect(again.encoded == fresh.encoded)
        #expect(uncached.segmentationCounts == (0, 0), "a pipeline without the cache counts nothing")

        // Other pixels are another photo: the watermark stage changes a photo with a tiled overlay,
        // so the same file with and without it is segmented twice.
        let tiled = try Self.scene("dev01")
        let cleaned = try cached.render(StudioShotRequest(image: tiled.input, removeWatermark: true))
        let asIs = try cached.render(StudioShotRequest(image: tiled.input, removeWatermark: false))
        #expect(!cleaned.segmentationReused && !asIs.segmentationReused)
        // Two entries: the shoe, least recently used, made room and is segmented again.
        #expect(try !cached.render(transparent).segmentationReused)
        #expect(cached.segmentationCounts == (1, 4))
    }

    @Test func rendersOfOnePhotoAtOnceRunTheModelOnce() throws {
        let pipeline = try StudioShotPipeline(configuration: PipelineConfiguration(segmentationCacheEntries: 4))
        let shoe = try Self.scene("dev09_dark_shoe")
        let shots = Mutex<[Result<StudioShotResult, ImagingError>]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { index in
            let request = StudioShotRequest(image: shoe.input, background: index == 0 ? .white : .transparent, shadow: .soft)
            let shot = Result { () throws(ImagingError) in try pipeline.render(request) }
            shots.withLock { $0.append(shot) }
        }
        let results = try shots.withLock { $0 }.map { try $0.get() }
        #expect(results.count == 3)
        #expect(results.filter(\.segmentationReused).count == 2)
        #expect(pipeline.segmentationCounts == (2, 1))
    }
}
