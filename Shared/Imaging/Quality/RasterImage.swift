import CImagingBridge

/// Decoded 8-bit pixels with their own band count (1 grey, 3 RGB, 4 RGBA), for scoring results.
public struct RasterImage: Sendable {
    public var width: Int
    public var height: Int
    public var bands: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, bands: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.bands = bands
        self.pixels = pixels
    }

    /// Decodes any image libvips reads without colour conversion (16-bit is shifted to 8-bit).
    public init(decoding data: [UInt8]) throws(ImagingError) {
        guard !data.isEmpty else { throw ImagingError(.emptyInput, "the image is empty (0 bytes)") }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var pointer: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, bands: Int32 = 0
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_decodeRaw(bytes.baseAddress!, bytes.count, &pointer, &width, &height, &bands, $0, $1)
            }
        }
        self.init(
            width: Int(width), height: Int(height), bands: Int(bands),
            pixels: takeBuffer(pointer, count: Int(width) * Int(height) * Int(bands)))
    }

    /// The last band when the image has alpha (2 or 4 bands), else nil.
    public var alpha: [UInt8]? {
        guard bands == 2 || bands == 4 else { return nil }
        return (0..<(width * height)).map { pixels[$0 * bands + bands - 1] }
    }

    /// RGB, composited over white when the image has alpha; grey is replicated.
    public func rgbOverWhite() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let colourBands = bands >= 3 ? 3 : 1
        let hasAlpha = bands == 2 || bands == 4
        for i in 0..<(width * height) {
            let a = hasAlpha ? Double(pixels[i * bands + bands - 1]) / 255 : 1
            for c in 0..<3 {
                let v = Double(pixels[i * bands + (colourBands == 3 ? c : 0)])
                out[i * 3 + c] = UInt8((v * a + 255 * (1 - a)).rounded())
            }
        }
        return out
    }

    /// RGB as stored (straight, not premultiplied); grey is replicated.
    public func rgbAsStored() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let colourBands = bands >= 3 ? 3 : 1
        for i in 0..<(width * height) {
            for c in 0..<3 { out[i * 3 + c] = pixels[i * bands + (colourBands == 3 ? c : 0)] }
        }
        return out
    }
}

/// OpenCV morphology for the scorer.
enum Morphology {
    static func erode(_ mask: [UInt8], width: Int, height: Int, ellipse: Bool, size: Int, outsideIsForeground: Bool)
        throws(ImagingError) -> [UInt8]
    {
        var out = [UInt8](repeating: 0, count: mask.count)
        try mask.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try out.withUnsafeMutableBufferPointer { (output) throws(ImagingError) in
                let base = output.baseAddress!
                try bridgeCall {
                    CImagingBridge_erode(input.baseAddress!, Int32(width), Int32(height), ellipse ? 1 : 0, Int32(size),
                                         outsideIsForeground ? 1 : 0, base, $0, $1)
                }
            }
        }
        return out
    }

    /// Distance from every pixel to the nearest pixel where `target` is true.
    static func distance(to target: [Bool], width: Int, height: Int) throws(ImagingError) -> [Float] {
        let mask = target.map { $0 ? UInt8(0) : 255 }
        var out = [Float](repeating: 0, count: mask.count)
        try mask.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try out.withUnsafeMutableBufferPointer { (output) throws(ImagingError) in
                let base = output.baseAddress!
                try bridgeCall { CImagingBridge_distanceTransform(input.baseAddress!, Int32(width), Int32(height), base, $0, $1) }
            }
        }
        return out
    }
}
