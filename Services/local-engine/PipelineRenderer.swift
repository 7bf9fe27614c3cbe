import Foundation
import Imaging
import NIOPosix

/// The real image work: Imaging's studio-shot pipeline, run on a dedicated thread pool (it blocks in
/// libvips and OpenCV) so the cooperative executor never waits on it.
///
/// Placeholder until the Imaging library's pipeline lands: every job fails with a clear reason.
public struct PipelineRenderer: ImageRenderer {
    public var threadPool: NIOThreadPool

    public init(modelPath: String?, threadPool: NIOThreadPool) throws {
        self.threadPool = threadPool
    }

    public var description: EngineHealth.Renderer { .init(mode: "pipeline", segmenter: "unavailable", simulatedLatencyMs: nil) }

    public func render(_ image: [UInt8], options: StudioShotInput) async throws(JobFailure) -> RenderedImage {
        _ = try ImageHeader(sniffing: image)
        throw JobFailure(.renderFailed, "the image pipeline is not available in this build")
    }
}
