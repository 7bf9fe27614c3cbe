import CImagingBridge

/// An encoded image small enough to travel inside a request.
public struct FittedImage: Sendable, Equatable {
    public var bytes: [UInt8]
    /// `image/png`, `image/jpeg` or `image/webp`.
    public var mediaType: String
    public var width: Int
    public var height: Int
    /// False when the original bytes were already within the limits and are sent as they are.
    public var reencoded: Bool
}

extension ImageCodec {
    /// A thumbnail (``CImagingBridge_thumbnail``): the long side at most `maxSide`, never enlarged,
    /// upright, the first frame; PNG when it has transparency, else JPEG. JPEG and WebP shrink while
    /// loading, so a large photo is never decoded whole.
    public static func thumbnail(_ data: [UInt8], maxSide: Int, maxPixels: Int) throws(ImagingError) -> FittedImage {
        try fit(data, maxSide: maxSide, maxPixels: maxPixels, format: nil)
    }

    /// The image re-encoded as `format` with the long side at most `maxSide` (never enlarged),
    /// upright, the first frame, without metadata; a transparent image saved as JPEG is flattened
    /// onto white. Nil `format`: PNG when it has transparency, else JPEG (a thumbnail's rule).
    public static func fit(_ data: [UInt8], maxSide: Int, maxPixels: Int, format: OutputFormat?) throws(ImagingError) -> FittedImage {
        guard !data.isEmpty else { throw ImagingError(.emptyInput, "0 bytes is not an image") }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var encoded: UnsafeMutablePointer<UInt8>?
        var length = 0
        var width: Int32 = 0, height: Int32 = 0, written: Int32 = 0
        let asked: Int32 = switch format {
        case nil: -1
        case .png: Int32(CImagingBridgeFormatPNG.rawValue)
        case .jpeg: Int32(CImagingBridgeFormatJPEG.rawValue)
        case .webp: Int32(CImagingBridgeFormatWebP.rawValue)
        }
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_thumbnail(
                    bytes.baseAddress!, bytes.count, Int32(clamping: maxSide), maxPixels, asked, &encoded, &length, &width, &height,
                    &written, $0, $1)
            }
        }
        let mediaType = switch CImagingBridgeFormat(rawValue: UInt32(written)) {
        case CImagingBridgeFormatPNG: "image/png"
        case CImagingBridgeFormatWebP: "image/webp"
        default: "image/jpeg"
        }
        return FittedImage(
            bytes: takeBuffer(encoded, count: length), mediaType: mediaType, width: Int(width), height: Int(height), reencoded: true)
    }

    /// How ``resize(_:width:height:bands:toWidth:height:fit:)`` fills the new size.
    public enum ResizeFit: Sendable {
        /// Each axis scaled on its own (the caller kept the aspect, or wants it changed).
        case stretch
        /// One scale for both axes, the smallest that covers the new size; the centre is kept and
        /// what sticks out cropped.
        case cover
    }

    /// Resizes to `newWidth` x `newHeight` with Lanczos-3 (smaller or larger), premultiplied when
    /// there is alpha.
    public static func resize(
        _ pixels: [UInt8], width: Int, height: Int, bands: Int, toWidth newWidth: Int, height newHeight: Int, fit: ResizeFit = .stretch
    ) throws(ImagingError) -> [UInt8] {
        guard bands == 3 || bands == 4, pixels.count == width * height * bands else {
            throw ImagingError(.unsupported, "expected \(width)x\(height)x\(bands) bytes, got \(pixels.count)")
        }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var output: UnsafeMutablePointer<UInt8>?
        try pixels.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_resize(input.baseAddress!, Int32(width), Int32(height), Int32(bands), Int32(newWidth), Int32(newHeight),
                                      fit == .cover ? 1 : 0, &output, $0, $1)
            }
        }
        return takeBuffer(output, count: newWidth * newHeight * bands)
    }

    /// The photo as it may travel inline (a `data:` URI in a request body): the original bytes when
    /// they are a PNG, JPEG or WebP whose long side is at most `maxSide` and whose size is at most
    /// `maxBytes`; otherwise decoded (EXIF orientation applied), shrunk so the long side is at most
    /// `maxSide`, and encoded — PNG when it has transparency, else JPEG at quality 92 — shrinking
    /// by a fifth again while it is over `maxBytes`. The aspect ratio is always kept.
    public static func fit(_ data: [UInt8], maxSide: Int, maxBytes: Int, maxPixels: Int) throws(ImagingError) -> FittedImage {
        guard maxSide >= 16, maxBytes >= 1024 else { throw ImagingError(.unsupported, "cannot fit an image into \(maxSide) px and \(maxBytes) bytes") }
        guard !data.isEmpty else { throw ImagingError(.emptyInput, "0 bytes is not an image") }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var width: Int32 = 0, height: Int32 = 0
        var loader = [CChar](repeating: 0, count: 64)
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try loader.withUnsafeMutableBufferPointer { (name) throws(ImagingError) in
                try bridgeCall { CImagingBridge_probe(bytes.baseAddress!, bytes.count, &width, &height, name.baseAddress, name.count, $0, $1) }
            }
        }
        // The loader's type name, e.g. VipsForeignLoadJpegBuffer.
        let loaderName = loader.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.lowercased()
        let mediaType = ["jpeg", "png", "webp"].first { loaderName.contains("load\($0)") || loaderName.contains("loads\($0)") }
            .map { "image/\($0)" }
        if let mediaType, data.count <= maxBytes, max(Int(width), Int(height)) <= maxSide {
            return FittedImage(bytes: data, mediaType: mediaType, width: Int(width), height: Int(height), reencoded: false)
        }
        let decoded = try decode(data, maxPixels: maxPixels, keepAlpha: true)
        var side = min(maxSide, max(decoded.width, decoded.height))
        while true {
            let scale = Double(side) / Double(max(decoded.width, decoded.height))
            let newWidth = max(1, min(decoded.width, Int((Double(decoded.width) * scale).rounded())))
            let newHeight = max(1, min(decoded.height, Int((Double(decoded.height) * scale).rounded())))
            let pixels = newWidth == decoded.width && newHeight == decoded.height
                ? decoded.pixels
                : try resize(decoded.pixels, width: decoded.width, height: decoded.height, bands: decoded.bands,
                                toWidth: newWidth, height: newHeight)
            let format: OutputFormat = decoded.bands == 4 ? .png : .jpeg
            let encoded = try encode(pixels, width: newWidth, height: newHeight, bands: decoded.bands, format: format)
            if encoded.count <= maxBytes {
                return FittedImage(
                    bytes: encoded, mediaType: "image/\(format.rawValue)", width: newWidth, height: newHeight, reencoded: true)
            }
            guard side > 64 else {
                throw ImagingError(.tooLarge, "the image does not fit in \(maxBytes) bytes even at \(newWidth)x\(newHeight)")
            }
            side = side * 4 / 5
        }
    }
}
