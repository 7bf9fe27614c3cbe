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
