import Foundation

/// How the studio-shot pipeline is set up.
///
/// - `modelPath`: the segmentation model's ONNX file (U²-Net-p, U²-Net or another model with their
///   320² input and outputs). Default: from env `LOCAL_ENGINE_MODEL` (``modelPath(for:)``), else
///   the default model (``defaultModel``) under `<repo>/.var/models/` (what `scripts/fetch-model.sh`
///   installs). `nil` or a missing file selects the classical segmenter.
/// - `inputSides`: the sides the model is run at (one forward pass each; the saliency maps are
///   averaged). Default ``defaultInputSides``; the engine reads `LOCAL_ENGINE_SIDES` with
///   ``inputSides(for:)``.
/// - `maxPixels`: largest accepted input, in pixels (default 40 MP), checked from the header.
/// - `maxBytes`: largest accepted encoded input (default 25 MiB).
/// - `maxOutputPixels`: largest result after upscaling (default 64 MP).
/// - `threads`: worker threads libvips and OpenCV may use per operation (process-wide; default:
///   the number of cores; 0 keeps the libraries' defaults).
/// - `segmentationCacheEntries`: how many photos' segmentations are kept, so a photo rendered again
///   with other options skips the model (default ``defaultSegmentationCacheEntries``, ~0.4 MB each
///   at 320², at most 64 MB in all; 0 turns it off; the engine reads `LOCAL_ENGINE_SEGMENTATION_CACHE`).
public struct PipelineConfiguration: Sendable {
    public var modelPath: String?
    public var inputSides: [Int]
    public var maxPixels: Int
    public var maxBytes: Int
    public var maxOutputPixels: Int
    public var threads: Int
    public var segmentationCacheEntries: Int

    public init(
        modelPath: String? = PipelineConfiguration.defaultModelPath,
        inputSides: [Int] = PipelineConfiguration.defaultInputSides,
        maxPixels: Int = 40_000_000, maxBytes: Int = 25 << 20, maxOutputPixels: Int = 64_000_000,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        segmentationCacheEntries: Int = PipelineConfiguration.defaultSegmentationCacheEntries
    ) {
        self.modelPath = modelPath
        self.inputSides = inputSides
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
        self.maxOutputPixels = maxOutputPixels
        self.threads = threads
        self.segmentationCacheEntries = segmentationCacheEntries
    }

    /// Photos whose segmentation a pipeline keeps unless set (docs/engine.md, stage 3).
    public static let defaultSegmentationCacheEntries = 16

    /// The model used when `LOCAL_ENGINE_MODEL` names none: chosen by quality per second on the
    /// 36 sample scenes (docs/engine.md, "Choosing the model").
    public static let defaultModel = "u2netp"
    /// Every model `scripts/fetch-model.sh` can fetch by name (`--list`; ModelSettingTests checks that
    /// the two agree). Any other ONNX file with U²-Net's input and outputs works given by path.
    public static let knownModels = ["u2netp", "u2net"]

    /// `LOCAL_ENGINE_MODEL` resolved by ``modelPath(for:)``, else the default model.
    public static var defaultModelPath: String {
        let environment = ProcessInfo.processInfo.environment
        return modelPath(for: environment["LOCAL_ENGINE_MODEL"] ?? "", directory: environment["LOCAL_ENGINE_MODEL_DIR"])
    }

    /// The sides the model runs at unless set: the side U²-Net-p and U²-Net were trained and
    /// declared at. Other sides and two-side ensembles are measured in docs/engine.md ("Input
    /// sides"); none is better within the time and memory budgets without making some scenes worse.
    public static let defaultInputSides = [320]

    /// A sides setting ("320", "320,448"): sides from 128 to 1024, multiples of 32 (U²-Net halves
    /// its maps five times), at most three; sorted, repeats dropped. Empty means the default.
    public static func inputSides(for setting: String) throws(ImagingError) -> [Int] {
        if setting.trimmingCharacters(in: .whitespaces).isEmpty { return defaultInputSides }
        let parts = setting.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var sides: [Int] = []
        for part in parts {
            guard let side = Int(part), (128...1024).contains(side), side % 32 == 0 else {
                throw ImagingError(.unsupported, "an input side must be a multiple of 32 from 128 to 1024, not \"\(part)\"")
            }
            if !sides.contains(side) { sides.append(side) }
        }
        guard sides.count <= 3 else { throw ImagingError(.unsupported, "at most three input sides, not \(sides.count)") }
        return sides.sorted()
    }

    /// A model setting as a file: a value with a `/` or ending in `.onnx` is a path, taken as
    /// given; any other value is a model's name (`u2netp`, `u2net`), found as `<name>.onnx` in
    /// `directory` (default `<repo>/.var/models`, where `scripts/fetch-model.sh` puts the models;
    /// the repository is found from this source file's location, which holds for the binaries
    /// `make` builds and for tests). Empty means the default model.
    public static func modelPath(for setting: String, directory: String? = nil) -> String {
        let value = setting.trimmingCharacters(in: .whitespaces)
        if value.contains("/") || value.hasSuffix(".onnx") { return value }
        let folder = directory.flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".var/models")
        return folder.appendingPathComponent("\(value.isEmpty ? defaultModel : value).onnx").path
    }
}
