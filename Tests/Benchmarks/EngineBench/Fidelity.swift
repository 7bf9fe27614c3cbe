import Foundation
import Imaging

/// The fidelity guard's calibration and cost (docs/fidelity.md): every sample scene against each
/// kind of synthetic result, the scores per kind, what the threshold decides, and the guard's time.
enum Fidelity {
    static func report(_ pipeline: StudioShotPipeline, scenes: [SampleScene], saveTo folder: URL?) throws {
        print("\n## Fidelity guard: scores of synthetic results against their photos (threshold \(FidelityGuard.threshold))")
        var scores: [SyntheticResult: [(String, FidelityReport)]] = [:]
        var times: [Int] = []
        for scene in scenes where !scene.isGlass {
            let photo = try pipeline.cutOut(scene.input, removeWatermark: true)
            for kind in SyntheticResult.allCases {
                let encoded = try kind.render(scene)
                let start = DispatchTime.now().uptimeNanoseconds
                let result = try pipeline.cutOut(encoded, removeWatermark: false)
                let report = FidelityGuard.compare(photo, result)
                times.append(milliseconds(since: start))
                if let folder, !kind.isFaithful {
                    // The changed result and what restore makes of it, for a look.
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    try Data(encoded).write(to: folder.appendingPathComponent("\(scene.name)-\(kind.rawValue).png"))
                    guard let restored = FidelityGuard.restore(photo, into: result, background: (255, 255, 255)) else { continue }
                    try Data(try ImageCodec.encode(restored, width: result.width, height: result.height, bands: 3, format: .png))
                        .write(to: folder.appendingPathComponent("\(scene.name)-\(kind.rawValue)-restored.png"))
                }
                scores[kind, default: []].append((scene.name, report))
            }
        }
        print("  kind           min    median  max    kept  restored (score < threshold)")
        for kind in SyntheticResult.allCases {
            let values = (scores[kind] ?? []).map(\.1.score).sorted()
            guard !values.isEmpty else { continue }
            let flagged = values.filter { $0 < FidelityGuard.threshold }.count
            print(String(format: "  %-13@  %.3f  %.3f   %.3f  %4d  %4d%@", kind.rawValue as NSString, values.first!, values[values.count / 2],
                         values.last!, values.count - flagged, flagged, (kind.isFaithful ? flagged : values.count - flagged) > 0 ? "  <- wrong" : ""))
        }
        for kind in SyntheticResult.allCases {
            let sorted = (scores[kind] ?? []).map(\.1.score).sorted().map { String(format: "%.2f", $0) }
            print("  \(kind.rawValue): \(sorted.joined(separator: " "))")
        }
        for kind in SyntheticResult.allCases {
            for (scene, report) in scores[kind] ?? [] where (report.score < FidelityGuard.threshold) == kind.isFaithful {
                print("  wrong: \(kind.rawValue) of \(scene): \(report.description)")
            }
        }
        times.sort()
        print("  guard per 1024² result (segment the result, compare): median \(times[times.count / 2]) ms; the photo's cut-out is the same again")
    }
}
