import CImagingBridge
import Foundation

/// Turns a product photo into a studio shot: decode, watermark inversion, segmentation (U²-Net-p
/// or a classical fallback), matte refinement, shadow, composite, upscale, encode.
///
/// `render` blocks and is thread-safe: call it from a thread pool (one job per core), never from
/// Swift's cooperative executor. Bad input throws an ``ImagingError``; nothing in the input can
/// crash the process.
public final class StudioShotPipeline: Sendable {
    public let configuration: PipelineConfiguration
    private let model: SegmenterHandle?
    /// The model's name (its file name without `.onnx`: "u2netp", "u2net"; " at 320+448" follows
    /// when it runs at other sides than the default), or "classical (...)" with the reason no model
    /// is used. /health reports it.
    public let segmenter: String
    private let segmentations: SegmentationCache

    public init(configuration: PipelineConfiguration = PipelineConfiguration()) throws(ImagingError) {
        self.configuration = configuration
        segmentations = SegmentationCache(capacity: configuration.segmentationCacheEntries)
        guard CImagingBridge_initialize("cyclorama-imaging", Int32(configuration.threads)) == 0 else {
            throw ImagingError(.internal, "libvips failed to start")
        }
        guard let path = configuration.modelPath else {
            (model, segmenter) = (nil, "classical (no model configured)")
            return
        }
        guard FileManager.default.fileExists(atPath: path) else {
            (model, segmenter) = (nil, "classical (model not found at \(path))")
            return
        }
        var handle: OpaquePointer?
        try bridgeCall { error, size in
            let sides = configuration.inputSides.map(Int32.init)
            handle = CImagingBridge_segmenterCreate(path, sides, Int32(sides.count), error, size)
            return handle == nil ? Int32(CImagingBridgeStatusInternal.rawValue) : 0
        }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        // As the segmenter runs them: ascending, each once.
        let ran = Array(Set(configuration.inputSides)).sorted()
        let sides = ran.isEmpty || ran == PipelineConfiguration.defaultInputSides
            ? "" : " at " + ran.map(String.init).joined(separator: "+")
        (model, segmenter) = (handle.map(SegmenterHandle.init), name + sides)
    }

    /// Renders one studio shot. The output is the input's size times `request.upscale`, with the
    /// product where it was; a transparent background gives RGBA (except JPEG, flattened on white).
    public func render(_ request: StudioShotRequest) throws(ImagingError) -> StudioShotResult {
        var timings: [String: Int] = [:]
        try validate(request)
        // `rgb` is the only reference to the decoded pixels, so the watermark stage edits them in
        // place (a second reference would make that a 48 MB copy for a 16 MP photo).
        var (width, height, rgb) = (0, 0, [UInt8]())
        (width, height, rgb) = try timed("decode", &timings) { () throws(ImagingError) in
            // A framed output's size is the frame's, capped where it is laid out.
            try decode(request.image, upscale: request.frame == nil ? request.upscale : 1)
        }
        if request.removeWatermark {
            try timed("watermark", &timings) { () throws(ImagingError) in
                _ = try Self.removeTiledWatermark(&rgb, width: width, height: height)
            }
        }
        let side = model.map { Int(CImagingBridge_segmenterInputSize($0.pointer)) } ?? 320
        let (coarse, reused) = try timed("segment", &timings) { () throws(ImagingError) in
            try segment(rgb, width: width, height: height, side: side)
        }
        let alpha = try timed("refine", &timings) { () throws(ImagingError) in
            try refine(rgb, coarse: coarse, side: side, width: width, height: height)
        }
        let transparent = request.background == .transparent && request.outputFormat != .jpeg
        if let frame = request.frame {
            var framed = try renderFramed(
                request, frame: frame, rgb: rgb, alpha: alpha, width: width, height: height, transparent: transparent, timings: timings)
            framed.segmentationReused = reused
            return framed
        }
        let shadow: [UInt8]? = try request.shadow == .none ? nil : timed("shadow", &timings) {
            () throws(ImagingError) in
            try request.shadow.darkening(under: alpha, width: width, height: height)
        }
        var pixels = try timed("composite", &timings) { () throws(ImagingError) in
            try composite(rgb, alpha: alpha, shadow: shadow, background: request.background,
                          transparent: transparent, width: width, height: height)
        }
        let bands = transparent ? 4 : 3
        let factor = request.upscale
        if factor > 1 {
            pixels = try timed("upscale", &timings) { () throws(ImagingError) in
                try upscale(pixels, width: width, height: height, bands: bands, factor: factor)
            }
        }
        let encoded = try timed("encode", &timings) { () throws(ImagingError) in
            try encode(pixels, width: width * factor, height: height * factor, bands: bands,
                       format: request.outputFormat)
        }
        timings["total"] = timings.values.reduce(0, +)
        var result = StudioShotResult(
            encoded: encoded, width: width * factor, height: height * factor,
            format: request.outputFormat, hasAlpha: transparent, timings: timings)
        result.segmentationReused = reused
        return result
    }

    /// The product of a photo, cut out as a studio shot cuts it (decode, watermark removal when
    /// asked, segmentation, refinement, the edge-cleaning composite): what the fidelity guard
    /// compares and restores (docs/fidelity.md).
    public func cutOut(_ image: [UInt8], removeWatermark: Bool) throws(ImagingError) -> ProductCutout {
        try validate(StudioShotRequest(image: image))
        var (width, height, rgb) = try decode(image, upscale: 1)
        if removeWatermark { _ = try Self.removeTiledWatermark(&rgb, width: width, height: height) }
        let side = model.map { Int(CImagingBridge_segmenterInputSize($0.pointer)) } ?? 320
        let coarse = try segment(rgb, width: width, height: height, side: side).map
        let alpha = try refine(rgb, coarse: coarse, side: side, width: width, height: height)
        let layer = try composite(rgb, alpha: alpha, shadow: nil, background: .transparent, transparent: true, width: width, height: height)
        return ProductCutout(width: width, height: height, rgb: rgb, alpha: alpha, layer: layer)
    }

    /// The framed path: the product cut out at the photo's size (edge colours cleaned), then scaled
    /// and placed on the frame's canvas, where its shadow is drawn (docs/framing.md).
    private func renderFramed(
        _ request: StudioShotRequest, frame: StudioFrame, rgb: [UInt8], alpha: [UInt8], width: Int, height: Int,
        transparent: Bool, timings: [String: Int]
    ) throws(ImagingError) -> StudioShotResult {
        var timings = timings
        let layer = try timed("composite", &timings) { () throws(ImagingError) in
            try composite(rgb, alpha: alpha, shadow: nil, background: .transparent, transparent: true, width: width, height: height)
        }
        let framed = try timed("frame", &timings) { () throws(ImagingError) in
            try StudioFraming.frame(
                layer: layer, alpha: alpha, rgb: rgb, width: width, height: height, frame: frame, shadow: request.shadow,
                background: request.background, transparent: transparent, upscale: request.upscale,
                maxOutputPixels: configuration.maxOutputPixels)
        }
        let bands = transparent ? 4 : 3
        let encoded = try timed("encode", &timings) { () throws(ImagingError) in
            try encode(framed.pixels, width: framed.width, height: framed.height, bands: bands, format: request.outputFormat)
        }
        timings["total"] = timings.values.reduce(0, +)
        return StudioShotResult(
            encoded: encoded, width: framed.width, height: framed.height, format: request.outputFormat, hasAlpha: transparent,
            timings: timings)
    }

    // MARK: Stages

    private func validate(_ request: StudioShotRequest) throws(ImagingError) {
        if request.image.isEmpty { throw ImagingError(.emptyInput, "the image is empty (0 bytes)") }
        if request.image.count > configuration.maxBytes {
            throw ImagingError(
                .tooLarge,
                "image is \(megabytes(request.image.count)) MB; at most \(megabytes(configuration.maxBytes)) MB")
        }
        guard [1, 2, 4].contains(request.upscale) else {
            throw ImagingError(.unsupported, "upscale must be 1, 2 or 4, not \(request.upscale)")
        }
        if let frame = request.frame {
            guard (0.5...0.95).contains(frame.fill), frame.aspect.map({ $0 > 0 && $0.isFinite }) ?? true,
                  (frame.minSide ?? 1) >= 1, (frame.maxSide ?? 1) >= 1 else {
                throw ImagingError(.unsupported, "framing: fill must be 0.5–0.95, the aspect and the sides positive")
            }
        }
    }

    private func decode(_ data: [UInt8], upscale factor: Int) throws(ImagingError) -> (Int, Int, [UInt8]) {
        var width: Int32 = 0, height: Int32 = 0
        // Header first: refuse oversized results before a single pixel is decoded.
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall { CImagingBridge_probe(bytes.baseAddress!, bytes.count, &width, &height, nil, 0, $0, $1) }
        }
        let outputPixels = Int(width) * Int(height) * factor * factor
        if Int(width) * Int(height) <= configuration.maxPixels, outputPixels > configuration.maxOutputPixels {
            throw ImagingError(
                .tooLarge,
                "upscaled image would be \(Int(width) * factor)x\(Int(height) * factor) "
                    + "(\(megapixels(outputPixels)) MP); at most \(megapixels(configuration.maxOutputPixels)) MP")
        }
        var pixels: UnsafeMutablePointer<UInt8>?
        var bands: Int32 = 3
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_decode(bytes.baseAddress!, bytes.count, configuration.maxPixels, 0,
                                      &pixels, &width, &height, &bands, $0, $1)
            }
        }
        let rgb = takeBuffer(pixels, count: Int(width) * Int(height) * Int(bands))
        return (Int(width), Int(height), rgb)
    }

    /// Finds a tiled semi-transparent overlay (text or a logo repeated over the photo) and inverts
    /// its blend in place; returns whether one was found. Untouched when none is (docs/engine.md).
    public static func removeTiledWatermark(_ rgb: inout [UInt8], width: Int, height: Int) throws(ImagingError) -> Bool {
        guard rgb.count == width * height * 3 else {
            throw ImagingError(.unsupported, "expected \(width)x\(height) RGB pixels, got \(rgb.count) bytes")
        }
        var found: Int32 = 0
        try rgb.withUnsafeMutableBufferPointer { (pixels) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_removeTiledWatermark(pixels.baseAddress!, Int32(width), Int32(height), &found, $0, $1)
            }
        }
        return found == 1
    }

    /// How many renders reused a photo's segmentation and how many ran the segmenter
    /// (``PipelineConfiguration/segmentationCacheEntries``).
    public var segmentationCounts: (reused: Int, computed: Int) {
        let counts = segmentations.counts
        return (counts.hits, counts.misses)
    }

    /// The coarse map at `side`², from the cache when the same pixels were segmented lately.
    private func segment(_ rgb: [UInt8], width: Int, height: Int, side: Int) throws(ImagingError)
        -> (map: [Float], reused: Bool)
    {
        try segmentations.map(for: rgb, width: width, height: height) { () throws(ImagingError) in
            try runSegmenter(rgb, width: width, height: height, side: side)
        }
    }

    private func runSegmenter(_ rgb: [UInt8], width: Int, height: Int, side: Int) throws(ImagingError) -> [Float] {
        var coarse = [Float](repeating: 0, count: side * side)
        try rgb.withUnsafeBufferPointer { (pixels) throws(ImagingError) in
            try coarse.withUnsafeMutableBufferPointer { (map) throws(ImagingError) in
                try bridgeCall {
                    if let model {
                        CImagingBridge_segment(model.pointer, pixels.baseAddress!, Int32(width), Int32(height),
                                               map.baseAddress!, $0, $1)
                    } else {
                        CImagingBridge_segmentClassical(pixels.baseAddress!, Int32(width), Int32(height),
                                                        Int32(side), map.baseAddress!, $0, $1)
                    }
                }
            }
        }
        return coarse
    }

    private func refine(_ rgb: [UInt8], coarse: [Float], side: Int, width: Int, height: Int)
        throws(ImagingError) -> [UInt8]
    {
        var alpha = [UInt8](repeating: 0, count: width * height)
        try rgb.withUnsafeBufferPointer { (pixels) throws(ImagingError) in
            try coarse.withUnsafeBufferPointer { (map) throws(ImagingError) in
                try alpha.withUnsafeMutableBufferPointer { (out) throws(ImagingError) in
                    try bridgeCall {
                        CImagingBridge_refineMatte(pixels.baseAddress!, Int32(width), Int32(height), map.baseAddress!,
                                                   Int32(side), out.baseAddress!, $0, $1)
                    }
                }
            }
        }
        return alpha
    }

    private func composite(
        _ rgb: [UInt8], alpha: [UInt8], shadow: [UInt8]?, background: StudioBackground, transparent: Bool,
        width: Int, height: Int
    ) throws(ImagingError) -> [UInt8] {
        var (red, green, blue): (UInt8, UInt8, UInt8) = (255, 255, 255)
        if case .color(let r, let g, let b) = background { (red, green, blue) = (r, g, b) }
        var output = [UInt8](repeating: 0, count: width * height * (transparent ? 4 : 3))
        try rgb.withUnsafeBufferPointer { (pixels) throws(ImagingError) in
            try alpha.withUnsafeBufferPointer { (matte) throws(ImagingError) in
                try output.withUnsafeMutableBufferPointer { (out) throws(ImagingError) in
                    let outBase = out.baseAddress!
                    try bridgeCall { error, size in
                        let call = { (shadowPointer: UnsafePointer<UInt8>?) in
                            CImagingBridge_composite(
                                pixels.baseAddress!, matte.baseAddress!, shadowPointer, Int32(width), Int32(height),
                                transparent ? 1 : 0, red, green, blue, outBase, error, size)
                        }
                        guard let shadow else { return call(nil) }
                        return shadow.withUnsafeBufferPointer { call($0.baseAddress) }
                    }
                }
            }
        }
        return output
    }

    private func upscale(_ pixels: [UInt8], width: Int, height: Int, bands: Int, factor: Int)
        throws(ImagingError) -> [UInt8]
    {
        let outputPixels = width * factor * height * factor
        guard outputPixels <= configuration.maxOutputPixels else {
            throw ImagingError(
                .tooLarge,
                "upscaled image would be \(width * factor)x\(height * factor) (\(megapixels(outputPixels)) MP); "
                    + "at most \(megapixels(configuration.maxOutputPixels)) MP")
        }
        return try ImageCodec.upscale(pixels, width: width, height: height, bands: bands, factor: factor)
    }

    private func encode(_ pixels: [UInt8], width: Int, height: Int, bands: Int, format: OutputFormat)
        throws(ImagingError) -> [UInt8]
    {
        try ImageCodec.encode(pixels, width: width, height: height, bands: bands, format: format)
    }
}

/// Runs one stage and records its wall time in milliseconds.
private func timed<T>(_ stage: String, _ timings: inout [String: Int], _ body: () throws(ImagingError) -> T)
    throws(ImagingError) -> T
{
    let start = DispatchTime.now().uptimeNanoseconds
    defer { timings[stage] = Int((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) }
    return try body()
}

private func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / Double(1 << 20)) }
private func megapixels(_ pixels: Int) -> String { String(format: "%.1f", Double(pixels) / 1e6) }

extension ShadowPreset {
    /// The background's darkening (0 = none, 255 = black) this shadow casts under the matte `alpha`.
    func darkening(under alpha: [UInt8], width: Int, height: Int) throws(ImagingError) -> [UInt8] {
        var darkening = [UInt8](repeating: 0, count: width * height)
        try alpha.withUnsafeBufferPointer { (matte) throws(ImagingError) in
            try darkening.withUnsafeMutableBufferPointer { (out) throws(ImagingError) in
                try bridgeCall {
                    CImagingBridge_renderShadow(matte.baseAddress!, Int32(width), Int32(height), bridgeValue, out.baseAddress!, $0, $1)
                }
            }
        }
        return darkening
    }

    var bridgeValue: CImagingBridgeShadow {
        switch self {
        case .none: CImagingBridgeShadowNone
        case .minimal: CImagingBridgeShadowMinimal
        case .soft: CImagingBridgeShadowSoft
        case .dramatic: CImagingBridgeShadowDramatic
        }
    }
}

extension OutputFormat {
    var bridgeValue: CImagingBridgeFormat {
        switch self {
        case .png: CImagingBridgeFormatPNG
        case .jpeg: CImagingBridgeFormatJPEG
        case .webp: CImagingBridgeFormatWebP
        }
    }
}
