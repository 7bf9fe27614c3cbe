import Foundation
import Imaging

/// The samples README's metrics over every scene of the sample sets: run A (transparent, no
/// shadow) and run B (white, soft shadow), both with watermark removal on, set beside the
/// untouched input's scores. Per scene, then per background kind, then against the targets.
enum Quality {
    /// One scene's scores.
    struct Row {
        var scene: SampleScene
        var a: TransparentRunScore
        var b: WhiteRunScore
        var input: InputScore
        var milliseconds: (a: Int, b: Int)

        /// Dropped below the photo in run A or B (product region), or on the watermarked product.
        var worseThanInput: [String] { input.worse(a: a, b: b) }
    }

    static func report(_ pipeline: StudioShotPipeline, scenes: [SampleScene], saveTo folder: URL? = nil) throws {
        if let folder { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        print("\n## Quality on \(scenes.count) scenes (segmenter: \(pipeline.segmenter))")
        print("PSNR columns in dB; 'in' = the untouched input on the same region; edge = run B in 3 px around the outline")
        print("scene                                          IoU    MAE    BndF  PSNR-A  PSNR-B   in   | WM-A    in  | edge-B purity  shadow  msA   msB  worse")
        var rows: [Row] = []
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
            let row = Row(
                scene: scene, a: try scorer.transparentRun(RasterImage(decoding: a.encoded)),
                b: scorer.whiteRun(try RasterImage(decoding: b.encoded)), input: try scorer.inputScore(),
                milliseconds: (msA, msB))
            rows.append(row)
            print(String(format: "%-45@ %.3f  %.4f %.3f  %@  %@ %@ | %@ %@ | %@  %.4f %5.1f  %4d  %4d  %@",
                         scene.name as NSString, row.a.iou, row.a.alphaMAE, row.a.boundaryF, fmt(row.a.productPSNR),
                         fmt(row.b.productPSNR), fmt(row.input.productPSNR), fmt(row.a.watermarkResidual),
                         fmt(row.input.watermarkPSNR), fmt(row.b.edgePSNR), row.b.purity, row.b.shadowPresence,
                         msA, msB, row.worseThanInput.joined(separator: ",") as NSString))
        }
        summary(rows)
    }

    static func summary(_ rows: [Row]) {
        print("\n### By background kind (opaque products; glass apart)")
        print("kind                 scenes  IoU   BndF  PSNR-A  PSNR-B   in   | WM-A   in  | edge-B purity")
        let kinds = Dictionary(grouping: rows.filter { !$0.scene.isGlass }, by: \.scene.backgroundKind)
        for kind in kinds.keys.sorted() { line(kind, kinds[kind]!) }
        line("all opaque", rows.filter { !$0.scene.isGlass })
        line("glass", rows.filter(\.scene.isGlass))
        line("all", rows)

        let opaque = rows.filter { !$0.scene.isGlass }
        let ious = opaque.map(\.a.iou), worst = opaque.min { $0.a.iou < $1.a.iou }
        let worse = opaque.filter { !$0.worseThanInput.isEmpty }
        let impure = rows.filter { $0.b.purity < 0.99 }
        print("\n### Against the targets (opaque products)")
        print(String(format: "mean IoU %.3f (>= 0.97), worst %.3f %@ (>= 0.90); boundary F %.3f (>= 0.88)",
                     mean(ious), worst?.a.iou ?? .nan, (worst?.scene.name ?? "") as NSString,
                     mean(opaque.map(\.a.boundaryF))))
        print(String(format: "product PSNR A %.1f dB, B %.1f dB (>= 33); watermark on product %.1f dB (>= 28)",
                     mean(opaque.compactMap(\.a.productPSNR)), mean(opaque.compactMap(\.b.productPSNR)),
                     mean(opaque.compactMap(\.a.watermarkResidual))))
        print("worse than the input (A/B product, WM on product): \(worse.count) of \(opaque.count)"
              + (worse.isEmpty ? "" : ": " + worse.map { "\($0.scene.name) \($0.worseThanInput.joined(separator: ","))" }
                  .joined(separator: "; ")))
        print("purity below 0.99: \(impure.count)" + (impure.isEmpty ? "" : ": " + impure.map(\.scene.name).joined(separator: ", ")))
        let time = rows.map { Double($0.milliseconds.b) }.sorted()
        print(String(format: "run B time: median %.0f ms, max %.0f ms", time[time.count / 2], time.last ?? .nan))
    }

    static func line(_ label: String, _ rows: [Row]) {
        guard !rows.isEmpty else { return }
        print(String(format: "%-20@ %3d   %.3f %.3f  %@  %@ %@ | %@ %@ | %@  %.4f",
                     label as NSString, rows.count, mean(rows.map(\.a.iou)), mean(rows.map(\.a.boundaryF)),
                     fmt(meanOrNil(rows.compactMap(\.a.productPSNR))), fmt(meanOrNil(rows.compactMap(\.b.productPSNR))),
                     fmt(meanOrNil(rows.compactMap(\.input.productPSNR))),
                     fmt(meanOrNil(rows.compactMap(\.a.watermarkResidual))),
                     fmt(meanOrNil(rows.compactMap(\.input.watermarkPSNR))), fmt(meanOrNil(rows.compactMap(\.b.edgePSNR))),
                     mean(rows.map(\.b.purity))))
    }

    static func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
    static func meanOrNil(_ values: [Double]) -> Double? { values.isEmpty ? nil : mean(values) }

    static func fmt(_ value: Double?) -> NSString {
        value.map { String(format: "%5.1f", $0) as NSString } ?? "    -"
    }
}

/// The watermark stage on its own, per scene: whether it found a tiled overlay, and the error
/// against clean.png where the overlay lies and where it crosses the opaque product, before and
/// after. `--save` writes each scene's photo after the stage (`<scene>-W.png`).
enum WatermarkStage {
    static func report(scenes: [SampleScene], saveTo folder: URL? = nil) throws {
        if let folder { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        print("\n## Watermark stage on \(scenes.count) scenes (PSNR in dB against clean.png, before -> after)")
        print("scene                                          kind           found  overlay          on product       ms")
        for scene in scenes {
            let scorer = try SampleScorer(scene: scene)
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            var cleaned = input
            let start = DispatchTime.now().uptimeNanoseconds
            let found = try StudioShotPipeline.removeTiledWatermark(&cleaned, width: scene.width, height: scene.height)
            let ms = milliseconds(since: start)
            if let folder {
                let png = try ImageCodec.encode(cleaned, width: scene.width, height: scene.height, bands: 3, format: .png)
                try Data(png).write(to: folder.appendingPathComponent("\(scene.name)-W.png"))
            }
            let overlay = scene.watermark.map { $0 >= 13 }
            func pair(_ region: [Bool]) -> NSString {
                "\(Quality.fmt(scorer.psnr(input, over: region))) -> \(Quality.fmt(scorer.psnr(cleaned, over: region)))" as NSString
            }
            print(String(format: "%-45@ %-14@ %@    %@   %@   %4d", scene.name as NSString, scene.watermarkKind as NSString,
                         (found ? "yes" : "no ") as NSString, pair(overlay), pair(scorer.watermarkOnProduct), ms))
        }
    }
}
