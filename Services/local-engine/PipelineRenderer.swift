import RunPod
import Foundation
import Imaging
import NIOPosix
import Shared

/// The real image work: Imaging's studio-shot pipeline, run on the engine's thread pool (it blocks in
/// libvips and OpenCV) so the cooperative executor never waits on it.
public struct PipelineRenderer: ImageRenderer {
    public let pipeline: StudioShotPipeline
    public let threadPool: NIOThreadPool

    /// Loads the segmentation model at `modelPath` (default: `LOCAL_ENGINE_MODEL`, see
    /// ``PipelineConfiguration``); without the file the pipeline falls back to its classical
    /// segmenter, which `/health` reports.
    public init(
        maxImageBytes: Int, modelPath: String = PipelineConfiguration.defaultModelPath,
        inputSides: [Int] = PipelineConfiguration.defaultInputSides, segmentationCacheEntries: Int = PipelineConfiguration.defaultSegmentationCacheEntries,
        threadPool: NIOThreadPool
    ) throws {
        var configuration = PipelineConfiguration(
            modelPath: modelPath, inputSides: inputSides, segmentationCacheEntries: segmentationCacheEntries)
        configuration.maxBytes = maxImageBytes
        pipeline = try StudioShotPipeline(configuration: configuration)
        self.threadPool = threadPool
    }

    public var description: EngineHealth.Renderer {
        let counts = pipeline.segmentationCounts
        return .init(
            mode: "pipeline", segmenter: pipeline.segmenter, simulatedLatencyMs: nil, segmentationsReused: counts.reused,
            segmentationsComputed: counts.computed)
    }

    public func render(_ image: [UInt8], options: StudioShotInput) async throws(JobFailure) -> RenderedImage {
        let request = StudioShotRequest(
            image: image, background: Self.background(options.background), shadow: Self.shadow(options.shadow),
            removeWatermark: options.removeWatermark, upscale: options.upscale, outputFormat: Self.format(options.outputFormat),
            frame: options.framing.map(StudioFrame.init))
        let pipeline = pipeline
        let outcome: Result<StudioShotResult, ImagingError>
        do {
            outcome = try await threadPool.runIfActive { () -> Result<StudioShotResult, ImagingError> in
                do throws(ImagingError) { return .success(try pipeline.render(request)) } catch { return .failure(error) }
            }
        } catch {
            throw JobFailure(.renderFailed, "the engine is shutting down")
        }
        switch outcome {
        case .success(let result):
            return RenderedImage(
                encoded: result.encoded, width: result.width, height: result.height, format: result.format.rawValue,
                timings: result.timings)
        case .failure(let error):
            let code: JobFailure.Code = error.code == .internal ? .renderFailed : .imageRejected
            throw JobFailure(code, error.code == .internal ? "rendering failed: \(error.message)" : "input.image: \(error.message)")
        }
    }

    static func background(_ background: StudioShotInput.Background) -> StudioBackground {
        switch background {
        case .transparent: .transparent
        case .color(let red, let green, let blue): .color(red: red, green: green, blue: blue)
        }
    }

    static func shadow(_ shadow: StudioShotInput.Shadow) -> ShadowPreset {
        switch shadow {
        case .none: ShadowPreset.none
        case .minimal: .minimal
        case .soft: .soft
        case .dramatic: .dramatic
        }
    }

    static func format(_ format: StudioShotInput.Format) -> OutputFormat {
        switch format {
        case .png: .png
        case .jpeg: .jpeg
        case .webp: .webp
        }
    }
}
