import Foundation
import Imaging
import Synchronization
import Testing

/// `LOCAL_ENGINE_SIDES`: the segmentation model run at other input sides than the 320 its file
/// declares (the declared side is rewritten in the model's bytes before OpenCV reads it), alone or
/// as an ensemble whose maps are averaged (docs/engine.md, "Input sides").
@Suite(.blockingWork) struct InputSideTests {
    @Test func theSettingIsReadAsSortedSides() throws {
        #expect(try PipelineConfiguration.inputSides(for: "") == PipelineConfiguration.defaultInputSides)
        #expect(try PipelineConfiguration.inputSides(for: "384") == [384])
        #expect(try PipelineConfiguration.inputSides(for: " 448, 320 ,448") == [320, 448])
        #expect(try PipelineConfiguration.inputSides(for: "128,1024") == [128, 1024])
    }

    @Test(arguments: ["300", "96", "1056", "abc", "320,", "320;448", "-320", "256,320,384,448"])
    func aMalformedSettingIsRefusedWithTheReason(_ setting: String) {
        #expect {
            _ = try PipelineConfiguration.inputSides(for: setting)
        } throws: { error in
            let message = (error as? ImagingError)?.message ?? ""
            return message.contains("input side") && (message.contains("multiple of 32") || message.contains("at most three"))
        }
    }

    /// The same model at 384 and as a 320+448 ensemble: it runs (OpenCV 4.6 refuses any side but
    /// the declared one unless the file declares it), cuts out the product as well as at 320, and
    /// its matte is not the 320 one (the other side really ran).
    @Test(arguments: [[384], [320, 448]])
    func theModelRunsAtOtherSides(_ sides: [Int]) throws {
        let pipeline = try StudioShotPipeline(configuration: PipelineConfiguration(inputSides: sides))
        #expect(pipeline.segmenter == "\(PipelineConfiguration.defaultModel) at \(sides.map(String.init).joined(separator: "+"))")
        let scene = try #require(Fixtures.scenes.first { $0.name.hasPrefix("dev09_dark_shoe") })
        let scorer = try SampleScorer(scene: scene)
        let request = StudioShotRequest(image: scene.input, background: .transparent, shadow: .none)
        let other = try scorer.transparentRun(try RasterImage(decoding: pipeline.render(request).encoded))
        #expect(other.iou >= 0.97, "IoU at \(sides): \(other.iou)")
        let alpha = try pipeline.cutOut(scene.input, removeWatermark: true).alpha
        let declared = try Fixtures.pipeline.cutOut(scene.input, removeWatermark: true).alpha
        #expect(alpha.count == declared.count)
        #expect(alpha != declared, "the matte at \(sides) is the 320 one")
    }

    /// Jobs that overlap each borrow a net of every side; the pool grows by reading the model again
    /// (with its side rewritten) and both get the matte one job alone gets. Without the segmentation
    /// cache, which would have the overlapping jobs of one photo wait for the first one's map.
    @Test func overlappingJobsEachGetANetAtEverySide() throws {
        // Sides given out of order and twice run once each, ascending, and are named so.
        let pipeline = try StudioShotPipeline(
            configuration: PipelineConfiguration(inputSides: [448, 320, 448], segmentationCacheEntries: 0))
        #expect(pipeline.segmenter == "\(PipelineConfiguration.defaultModel) at 320+448")
        let scene = try #require(Fixtures.scenes.first { $0.name.hasPrefix("dev09_dark_shoe") })
        let alone = try pipeline.cutOut(scene.input, removeWatermark: false).alpha
        let mattes = Mutex<[Result<[UInt8], ImagingError>]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let matte = Result { () throws(ImagingError) in try pipeline.cutOut(scene.input, removeWatermark: false).alpha }
            mattes.withLock { $0.append(matte) }
        }
        let results = mattes.withLock { $0 }
        #expect(results.count == 3)
        for result in results { #expect(try result.get() == alone) }
    }

    /// A model file whose bytes cannot be walked to a 3x320x320 input is refused when it loads,
    /// with the reason, not at the first job.
    @Test func aModelThatCannotBeRewrittenIsRefusedWithTheReason() throws {
        let model = try Data(contentsOf: URL(fileURLWithPath: PipelineConfiguration.modelPath(for: "")))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("input-sides-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let truncated = folder.appendingPathComponent("truncated.onnx")
        try model.prefix(model.count / 2).write(to: truncated)
        let noInput = folder.appendingPathComponent("garbage.onnx")
        try Data("not a model at all, just text".utf8).write(to: noInput)
        for (file, reason) in [(truncated, "truncated"), (noInput, "unknown wire type")] {
            #expect {
                _ = try StudioShotPipeline(configuration: PipelineConfiguration(modelPath: file.path, inputSides: [448]))
            } throws: { error in
                let message = (error as? ImagingError)?.message ?? ""
                return message.contains("loading the segmentation model") && message.contains(reason)
            }
        }
    }
}
