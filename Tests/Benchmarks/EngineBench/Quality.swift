import Foundation
import Imaging

/// The samples README's metrics over every dev scene: run A (transparent, no shadow) and run B
/// (white, soft shadow), both with watermark removal on.
enum Quality {
    static func report(_ pipeline: StudioShotPipeline, scenes: [SampleScene], saveTo folder: URL? = nil) throws {
        if let folder { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        print("\n## Quality on \(scenes.count) dev scenes (segmenter: \(pipeline.segmenter))")
        print("scene                                          IoU    MAE    BndF   PSNR-A  WM-res  input-WM  purity PSNR-B  shadow   msA   msB")
        var ious: [Double] = [], maes: [Double] = [], bfs: [Double] = [], purities: [Double] = []
        var psnrA: [Double] = [], residuals: [Double] = [], inputResiduals: [Double] = [], shadows: [Double] = []
        for scene in scenes {
            let scorer = try SampleScorer(scene: scene)
            var start = DispatchTime.now().uptimeNanoseconds
            let a = try pipeline.render(StudioShotRequest(image: scene.input, background: .transparent, shadow: .none))
            let msA = milliseconds(since: start)
            start = DispatchTime.now().uptimeNanoseconds
            let b = try pipeline.render(StudioShotRequest(image: scene.input, background: .white, shadow: .soft))
            let msB = milliseconds(since: start)
            if let folder {
                try Data(a.encoded).write(to: folder.appendingPathComponent("\(scene.name)-A.png"))
                try Data(b.encoded).write(to: folder.appendingPathComponent("\(scene.name)-B.png"))
            }
            let runA = try scorer.transparentRun(RasterImage(decoding: a.encoded))
            let runB = scorer.whiteRun(try RasterImage(decoding: b.encoded))
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            let inputResidual = scorer.psnr(input, over: scorer.watermarkOnProduct)
            ious.append(runA.iou); maes.append(runA.alphaMAE); bfs.append(runA.boundaryF); purities.append(runB.purity)
            shadows.append(runB.shadowPresence)
            if let v = runA.productPSNR { psnrA.append(v) }
            if let v = runA.watermarkResidual, let i = inputResidual { residuals.append(v); inputResiduals.append(i) }
            print(String(format: "%-45@ %.3f  %.4f %.3f  %@  %@  %@    %.4f %@  %5.1f  %4d  %4d",
                         scene.name as NSString, runA.iou, runA.alphaMAE, runA.boundaryF, fmt(runA.productPSNR),
                         fmt(runA.watermarkResidual), fmt(inputResidual), runB.purity, fmt(runB.productPSNR),
                         runB.shadowPresence, msA, msB))
        }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
        print(String(format: "mean: IoU %.3f (min %.3f), alpha MAE %.4f, boundary F %.3f, product PSNR %.1f dB, "
                        + "watermark residual %.1f dB (input %.1f dB), purity %.4f (min %.4f), shadow %.1f (min %.1f)",
                     mean(ious), ious.min() ?? 0, mean(maes), mean(bfs), mean(psnrA), mean(residuals),
                     mean(inputResiduals), mean(purities), purities.min() ?? 0, mean(shadows), shadows.min() ?? 0))
    }

    static func fmt(_ value: Double?) -> NSString {
        value.map { String(format: "%6.1f", $0) as NSString } ?? "     -"
    }
}
