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

    /// Enlarges by 2 or 4 the way the pipeline does (premultiplied affine + nohalo + mild sharpening).
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
