// engine-bench: stage timings, upscale time, peak memory and sample-set quality of the local
// engine's image pipeline. `make bench-engine` runs it in release.
//
//   engine-bench [all|timing|framing|upscale|memory|quality|watermark|fidelity] [--runs N] [--samples DIR[,DIR...]] [--save DIR]
//
// The samples default to ../shared/samples/dev and dev2 beside the repository (36 scenes).
// --save writes each scene's quality renders (and, with `framing`, every preset's render of every fourth scene) (<scene>-A.png transparent, <scene>-B.png white) for a look;
// `watermark` (not part of all) scores the watermark stage alone and saves <scene>-W.png.
import Foundation
import Imaging
import Shared

@main
struct EngineBench {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--memory-child" { return try MemoryProbe.child(arguments: Array(arguments.dropFirst())) }
        let runs = Int(option("--runs", in: &arguments) ?? "") ?? 7
        let samples = option("--samples", in: &arguments).map {
            $0.split(separator: ",").map { URL(fileURLWithPath: String($0)) }
        } ?? SampleScene.folders(besideRepository: repositoryRoot)
        let save = option("--save", in: &arguments).map { URL(fileURLWithPath: $0) }
        let mode = arguments.first ?? "all"
        let pipeline = try StudioShotPipeline(configuration: try benchConfiguration())
        print("engine-bench: segmenter \(pipeline.segmenter), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let scenes = try SampleScene.loadAll(from: samples)
        guard let first = scenes.first else {
            throw BenchError("no scenes under \(samples.map(\.path).joined(separator: ", "))")
        }
        if mode == "all" || mode == "timing" {
            // With a tiled watermark (the watermark stage does its full work) and without one.
            try Timing.studioShot(pipeline, scene: first, runs: runs)
            if let plain = scenes.first(where: { $0.watermarkKind == "none" }) {
                try Timing.studioShot(pipeline, scene: plain, runs: runs)
            }
            try Timing.variations(
                uncached: pipeline, cached: try StudioShotPipeline(configuration: try benchConfiguration(segmentationCacheEntries: 16)),
                scenes: scenes, runs: runs)
        }
        if mode == "all" || mode == "framing" {
            // Each marketplace preset on a watermark-free scene (docs/framing.md).
            let plain = scenes.first(where: { $0.watermarkKind == "none" }) ?? first
            for preset in FramingPreset.allCases {
                guard let spec = preset.spec else { continue }
                try Timing.studioShot(pipeline, scene: plain, runs: runs, frame: (preset.rawValue, StudioFrame(spec)))
            }
            // The contact sheet's pictures (docs/framing.md): every preset on every fourth scene.
            if let save {
                try FileManager.default.createDirectory(at: save, withIntermediateDirectories: true)
                for scene in stride(from: 0, to: scenes.count, by: 4).map({ scenes[$0] }) {
                    try Data(scene.input).write(to: save.appendingPathComponent("\(scene.name)-photo.jpg"))
                    for preset in FramingPreset.allCases {
                        let request = StudioShotRequest(
                            image: scene.input, background: .white, shadow: .soft, frame: preset.spec.map(StudioFrame.init))
                        try Data(try pipeline.render(request).encoded).write(to: save.appendingPathComponent("\(scene.name)-\(preset.rawValue).png"))
                    }
                }
            }
        }
        if mode == "all" || mode == "upscale" { try Timing.upscale(first.input, runs: runs) }
        if mode == "all" || mode == "memory" { try MemoryProbe.parent(scene: first) }
        if mode == "all" || mode == "quality" { try Quality.report(pipeline, scenes: scenes, saveTo: save) }
        if mode == "watermark" { try WatermarkStage.report(scenes: scenes, saveTo: save) }
        if mode == "all" || mode == "fidelity" { try Fidelity.report(pipeline, scenes: scenes, saveTo: save) }
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    static func option(_ name: String, in arguments: inout [String]) -> String? {
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        defer { arguments.removeSubrange(index...(index + 1)) }
        return arguments[index + 1]
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func median(_ values: [Int]) -> Int {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

func milliseconds(since start: UInt64) -> Int { Int((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) }

/// The pipeline the engine would run: `LOCAL_ENGINE_MODEL` (read by ``PipelineConfiguration``) and
/// `LOCAL_ENGINE_SIDES`, refused when malformed as the engine refuses it. Without the segmentation
/// cache (or with `segmentationCacheEntries`): the bench renders the same photo again and again, and
/// each render is to cost what a new photo costs.
func benchConfiguration(segmentationCacheEntries: Int = 0) throws -> PipelineConfiguration {
    let sides = ProcessInfo.processInfo.environment["LOCAL_ENGINE_SIDES"] ?? ""
    return PipelineConfiguration(
        inputSides: try PipelineConfiguration.inputSides(for: sides), segmentationCacheEntries: segmentationCacheEntries)
}
