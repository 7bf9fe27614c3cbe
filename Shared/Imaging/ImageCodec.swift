import CImagingBridge

/// Encoding and resampling of raw 8-bit pixels, outside the studio-shot pipeline (fixtures,
/// benchmarks, previews).
public enum ImageCodec {
    /// Encodes 3-band (RGB) or 4-band (RGBA) pixels.
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, bands: Int, format: OutputFormat)
        throws(ImagingError) -> [UInt8]
    {
        guard bands == 3 || bands == 4, pixels.count == width * height * bands else {
            throw ImagingError(.unsupported, "expected \(width)x\(height)x\(bands) bytes, got \(pixels.count)")
        }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var encoded: UnsafeMutablePointer<UInt8>?
        var length = 0
        try pixels.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_encode(input.baseAddress!, Int32(width), Int32(height), Int32(bands),
                                      format.bridgeValue, &encoded, &length, $0, $1)
            }
        }
        return takeBuffer(encoded, count: length)
    }

    /// Test fixtures the pipeline must cope with: a 16-bit RGB PNG and a CMYK JPEG (the 4 bytes
    /// per pixel are C, M, Y, K) made from 8-bit pixels.
    public enum Fixture: Sendable { case png16, cmykJPEG }

    public static func encodeFixture(_ pixels: [UInt8], width: Int, height: Int, as fixture: Fixture)
        throws(ImagingError) -> [UInt8]
    {
        let bands = fixture == .png16 ? 3 : 4
        guard pixels.count == width * height * bands else {
            throw ImagingError(.unsupported, "expected \(width)x\(height)x\(bands) bytes, got \(pixels.count)")
        }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var encoded: UnsafeMutablePointer<UInt8>?
        var length = 0
        let format = fixture == .png16 ? CImagingBridgeFormatPNG16 : CImagingBridgeFormatJPEG
        try pixels.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_encode(input.baseAddress!, Int32(width), Int32(height), Int32(bands),
                                      format, &encoded, &length, $0, $1)
            }
        }
        return takeBuffer(encoded, count: length)
    }

    /// Decodes any image libvips reads to 8-bit sRGB (alpha flattened onto white, EXIF orientation
    /// applied), refusing more than `maxPixels` before decoding a pixel. Proves a file is a usable image.
    public static func decodeRGB(_ data: [UInt8], maxPixels: Int) throws(ImagingError) -> (width: Int, height: Int, pixels: [UInt8]) {
        let image = try decode(data, maxPixels: maxPixels, keepAlpha: false)
        return (image.width, image.height, image.pixels)
    }

    /// Decodes like `decodeRGB`, but an image with an alpha channel comes back as RGBA (straight
    /// alpha, `bands` 4) when `keepAlpha` is set; any other image as RGB (`bands` 3).
    public static func decode(_ data: [UInt8], maxPixels: Int, keepAlpha: Bool) throws(ImagingError)
        -> (width: Int, height: Int, bands: Int, pixels: [UInt8])
    {
        guard !data.isEmpty else { throw ImagingError(.emptyInput, "0 bytes is not an image") }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var width: Int32 = 0, height: Int32 = 0, bands: Int32 = 3
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall { CImagingBridge_probe(bytes.baseAddress!, bytes.count, &width, &height, nil, 0, $0, $1) }
        }
        guard Int(width) * Int(height) <= maxPixels else {
            throw ImagingError(.tooLarge, "the image is \(width)x\(height); at most \(maxPixels) pixels are accepted")
        }
        var pixels: UnsafeMutablePointer<UInt8>?
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_decode(bytes.baseAddress!, bytes.count, maxPixels, keepAlpha ? 1 : 0, &pixels, &width, &height, &bands, $0, $1)
            }
        }
        return (Int(width), Int(height), Int(bands), takeBuffer(pixels, count: Int(width) * Int(height) * Int(bands)))
    }

    /// An image's size from its header; no pixel is decoded.
    public static func size(of data: [UInt8]) throws(ImagingError) -> (width: Int, height: Int) {
        guard !data.isEmpty else { throw ImagingError(.emptyInput, "0 bytes is not an image") }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var width: Int32 = 0, height: Int32 = 0
        try data.withUnsafeBufferPointer { (bytes) throws(ImagingError) in
            try bridgeCall { CImagingBridge_probe(bytes.baseAddress!, bytes.count, &width, &height, nil, 0, $0, $1) }
        }
        return (Int(width), Int(height))
    }

    /// Enlarges by an integer factor the way the pipeline does: a locally bounded cubic (sharp without
    /// halos), premultiplied when there is alpha.
    public static func upscale(_ pixels: [UInt8], width: Int, height: Int, bands: Int, factor: Int)
        throws(ImagingError) -> [UInt8]
    {
        guard bands == 3 || bands == 4, pixels.count == width * height * bands, factor >= 1 else {
            throw ImagingError(.unsupported, "cannot upscale \(width)x\(height)x\(bands) by \(factor)")
        }
        _ = CImagingBridge_initialize("cyclorama-imaging", 0)
        var output: UnsafeMutablePointer<UInt8>?
        try pixels.withUnsafeBufferPointer { (input) throws(ImagingError) in
            try bridgeCall {
                CImagingBridge_upscale(input.baseAddress!, Int32(width), Int32(height), Int32(bands), Int32(factor),
                                       &output, $0, $1)
            }
        }
        return takeBuffer(output, count: width * factor * height * factor * bands)
    }
}
