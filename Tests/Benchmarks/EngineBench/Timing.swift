import Foundation
import Imaging

enum Timing {
    /// A dev scene's 1024x1024 JPEG to a white, soft-shadow PNG: per-stage medians and the total.
    /// With `frame`, framed by that marketplace preset (docs/framing.md).
    static func studioShot(_ pipeline: StudioShotPipeline, scene: SampleScene, runs: Int, frame: (name: String, frame: StudioFrame)? = nil) throws {
        let request = StudioShotRequest(image: scene.input, background: .white, shadow: .soft, frame: frame?.frame)
        _ = try pipeline.render(request) // warm-up: the first call loads nothing lazily, but caches warm
        var stages: [String: [Int]] = [:]
        var totals: [Int] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try pipeline.render(request)
            totals.append(milliseconds(since: start))
            for (stage, ms) in result.timings where stage != "total" { stages[stage, default: []].append(ms) }
        }
        let framed = frame.map { ", framed \($0.name)" } ?? ""
        let output = frame == nil ? "" : " (\(try pipeline.render(request).width) px square)"
        print("\n## \(scene.width)x\(scene.height) JPEG -> white, soft shadow, PNG\(framed)\(output): \(scene.name), watermark "
              + "\(scene.watermarkKind) (median of \(runs) runs)")
        let order = ["decode", "watermark", "segment", "refine", "shadow", "composite", "frame", "upscale", "encode"]
        for stage in order where stages[stage] != nil {
            print(String(format: "  %-10@ %5d ms", stage as NSString, median(stages[stage]!)))
        }
        print(String(format: "  %-10@ %5d ms (min %d, max %d; target <= 700)", "total" as NSString, median(totals),
                     totals.min() ?? 0, totals.max() ?? 0))
    }

    /// Four variations of one photo (white soft, transparent, a colour with a dramatic shadow, white
    /// minimal), as a variations request asks the engine for them one after another: the four
    /// renders with and without the segmentation cache, each run on another scene so the cache
    /// starts cold for each photo (median over `runs` photos).
    static func variations(uncached: StudioShotPipeline, cached: StudioShotPipeline, scenes: [SampleScene], runs: Int) throws {
        let options: [(StudioBackground, ShadowPreset)] = [
            (.white, .soft), (.transparent, .none), (.color(red: 240, green: 236, blue: 228), .dramatic), (.white, .minimal),
        ]
        var totals: [String: [Int]] = [:]
        for scene in scenes.prefix(max(1, runs)) {
            for (name, pipeline) in [("without", uncached), ("with", cached)] {
                let start = DispatchTime.now().uptimeNanoseconds
                for (background, shadow) in options {
                    _ = try pipeline.render(StudioShotRequest(image: scene.input, background: background, shadow: shadow))
                }
                totals[name, default: []].append(milliseconds(since: start))
            }
        }
        let photos = min(max(1, runs), scenes.count)
        print("\n## 4 variations of one photo (white soft, transparent, colour dramatic, white minimal; median over \(photos) photos)")
        print("  without the segmentation cache  \(median(totals["without"] ?? [])) ms")
        print("  with it                         \(median(totals["with"] ?? [])) ms")
    }

    /// 2x upscale of a 1024x1024 RGB image (the upscale stage alone).
    static func upscale(_ input: [UInt8], runs: Int) throws {
        let image = try RasterImage(decoding: input)
        let rgb = image.rgbAsStored()
        var times: [Int] = []
        for _ in 0..<(runs + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try ImageCodec.upscale(rgb, width: image.width, height: image.height, bands: 3, factor: 2)
            times.append(milliseconds(since: start))
        }
        times.removeFirst()
        print("\n## 2x upscale of \(image.width)x\(image.height) RGB (median of \(runs) runs)")
        print("  upscale    \(median(times)) ms (target <= 250)")
    }
}
