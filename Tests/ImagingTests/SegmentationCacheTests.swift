import Foundation
import Synchronization
import Testing

@testable import Imaging

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
        #expect(uncached.segmentationCounts == (0, 1), "without the cache every segmentation is computed")

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

    /// The cache alone, with a segmenter that is held until told: a render that comes while the
    /// same pixels are being segmented waits for that map; when that segmentation fails, the
    /// waiting render segments them itself. Maps beyond the byte budget go, least recent first.
    @Test func aRenderWaitsForTheSameSegmentationAndComputesItsOwnWhenThatFails() throws {
        let cache = SegmentationCache(capacity: 4)
        let pixels: [UInt8] = [1, 2, 3, 4, 5, 6]
        for failing in [false, true] {
            let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchGroup()
            let first = Mutex<Result<(map: [Float], reused: Bool), ImagingError>?>(nil)
            let key: [UInt8] = pixels + [failing ? 1 : 0]
            DispatchQueue.global().async(group: done) {
                let result = Result { () throws(ImagingError) in
                    try cache.map(for: key, width: 2, height: 1) { () throws(ImagingError) -> [Float] in
                        started.signal()
                        release.wait()
                        if failing { throw ImagingError(.internal, "the segmenter failed") }
                        return [0.25]
                    }
                }
                first.withLock { $0 = result }
            }
            started.wait()
            let second = Mutex<(map: [Float], reused: Bool)?>(nil)
            DispatchQueue.global().async(group: done) {
                let result = try? cache.map(for: key, width: 2, height: 1) { () throws(ImagingError) -> [Float] in [0.75] }
                second.withLock { $0 = result }
            }
            // The second render is waiting (it cannot finish while the first one's map is held).
            #expect(done.wait(timeout: .now() + .milliseconds(300)) == .timedOut)
            release.signal()
            #expect(done.wait(timeout: .now() + .seconds(30)) == .success)
            let waited = try #require(second.withLock { $0 })
            if failing {
                #expect(throws: ImagingError.self) { try first.withLock { $0 }?.get() }
                #expect(waited.map == [0.75] && !waited.reused, "it computed its own map")
            } else {
                #expect(try first.withLock { $0 }?.get().map == [0.25])
                #expect(waited.map == [0.25] && waited.reused, "it took the first render's map")
            }
        }
        #expect(cache.counts == (1, 3))
        // A map of 40 MB, then another: both over 64 MB, so the older one goes.
        let large = [Float](repeating: 0, count: 10 << 20)
        _ = try cache.map(for: [9], width: 1, height: 1) { () throws(ImagingError) -> [Float] in large }
        _ = try cache.map(for: [10], width: 1, height: 1) { () throws(ImagingError) -> [Float] in large }
        #expect(try cache.map(for: [10], width: 1, height: 1) { () throws(ImagingError) -> [Float] in [] }.reused)
        #expect(try !cache.map(for: [9], width: 1, height: 1) { () throws(ImagingError) -> [Float] in [] }.reused)
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
