import Foundation

/// How the studio-shot pipeline is set up.
///
/// - `modelPath`: the U²-Net-p ONNX file. Default: env `LOCAL_ENGINE_MODEL`, else
///   `<repo>/.var/models/u2netp.onnx` (what `scripts/fetch-model.sh` installs). `nil` or a missing
///   file selects the classical segmenter.
/// - `maxPixels`: largest accepted input, in pixels (default 40 MP), checked from the header.
/// - `maxBytes`: largest accepted encoded input (default 25 MiB).
/// - `maxOutputPixels`: largest result after upscaling (default 64 MP).
/// - `threads`: worker threads libvips and OpenCV may use per operation (process-wide; default:
///   the number of cores; 0 keeps the libraries' defaults).
public struct PipelineConfiguration: Sendable {
    public var modelPath: String?
    public var maxPixels: Int
    public var maxBytes: Int
    public var maxOutputPixels: Int
    public var threads: Int

    public init(
        modelPath: String? = PipelineConfiguration.defaultModelPath,
        maxPixels: Int = 40_000_000, maxBytes: Int = 25 << 20, maxOutputPixels: Int = 64_000_000,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.modelPath = modelPath
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
        self.maxOutputPixels = maxOutputPixels
        self.threads = threads
    }

    /// `LOCAL_ENGINE_MODEL` when set, else `.var/models/u2netp.onnx` under the repository root
    /// (found from this source file's location, which holds for `swift run` and tests).
    public static var defaultModelPath: String {
        if let path = ProcessInfo.processInfo.environment["LOCAL_ENGINE_MODEL"], !path.isEmpty {
            return path
        }
        let repoRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repoRoot.appendingPathComponent(".var/models/u2netp.onnx").path
    }
}
