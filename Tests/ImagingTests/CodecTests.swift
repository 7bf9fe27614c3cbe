import CImagingBridgeChecks
import Imaging
import Testing

/// `ImageCodec.decode`: an alpha channel is kept on request (the result-ingestor enlarges
/// transparent results) and flattened onto white otherwise (the pipeline's input).
@Suite("Codec", .blockingWork)
struct CodecTests {
    /// 8x4 RGBA: the left half opaque red, the right half red at alpha 0 and 128 on alternate rows.
    static func rgba() -> [UInt8] {
        (0..<4).flatMap { y in
            (0..<8).flatMap { x -> [UInt8] in [200, 40, 40, x < 4 ? 255 : (y % 2 == 0 ? 0 : 128)] }
        }
    }

    @Test func alphaIsKeptWhenAsked() throws {
        let png = try ImageCodec.encode(Self.rgba(), width: 8, height: 4, bands: 4, format: .png)
        let decoded = try ImageCodec.decode(png, maxPixels: 1000, keepAlpha: true)
        #expect(decoded.width == 8 && decoded.height == 4 && decoded.bands == 4)
        #expect(decoded.pixels == Self.rgba(), "a PNG round trip is lossless, alpha included")
    }

    @Test func alphaIsFlattenedOntoWhiteOtherwise() throws {
        let png = try ImageCodec.encode(Self.rgba(), width: 8, height: 4, bands: 4, format: .png)
        let decoded = try ImageCodec.decode(png, maxPixels: 1000, keepAlpha: false)
        #expect(decoded.bands == 3 && decoded.pixels.count == 8 * 4 * 3)
        func pixel(_ x: Int, _ y: Int) -> [Int] { (0..<3).map { Int(decoded.pixels[(y * 8 + x) * 3 + $0]) } }
        #expect(pixel(0, 0) == [200, 40, 40])
        #expect(pixel(6, 0) == [255, 255, 255], "alpha 0 is white")
        // alpha 128: 200·a + 255·(1−a) ≈ 228, 40·a + 255·(1−a) ≈ 148
        #expect(zip(pixel(6, 1), [228, 148, 148]).allSatisfy { abs($0 - $1) <= 1 }, "\(pixel(6, 1))")
        #expect(try ImageCodec.decodeRGB(png, maxPixels: 1000).pixels == decoded.pixels)
    }

    @Test func anOpaqueImageStaysRGBEvenWhenAlphaIsWelcome() throws {
        let rgb = [UInt8](repeating: 90, count: 8 * 4 * 3)
        let png = try ImageCodec.encode(rgb, width: 8, height: 4, bands: 3, format: .png)
        let decoded = try ImageCodec.decode(png, maxPixels: 1000, keepAlpha: true)
        #expect(decoded.bands == 3 && decoded.pixels == rgb)
    }

    /// libvips' run-time generated vector code (liborc) is off: a service crashed inside it.
    @Test func libvipsRunsNoGeneratedVectorCode() {
        #expect(CImagingBridge_vectorPathsEnabled() == 0)
    }
}
