import Foundation
import Imaging
import Testing

/// ImageCodec.fit: a photo made small enough to travel inside a request, its aspect kept.
@Suite("Fitting an image into a request", .blockingWork)
struct FittingTests {
    /// A smooth picture with detail, so that JPEG sizes behave like a photo's.
    private func photo(width: Int, height: Int, bands: Int = 3) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * bands)
        for y in 0..<height {
            for x in 0..<width {
                let base = (y * width + x) * bands
                pixels[base] = UInt8((x * 255) / max(1, width - 1))
                pixels[base + 1] = UInt8((y * 255) / max(1, height - 1))
                pixels[base + 2] = UInt8(((x / 8 + y / 8) % 2) * 200 + 20)
                if bands == 4 { pixels[base + 3] = x < width / 2 ? 255 : 0 }
            }
        }
        return pixels
    }

    /// `cover` keeps one scale for both axes and the centre; `stretch` scales each axis; both enlarge too.
    @Test func resizeCoversOrStretchesAndEnlarges() throws {
        // 64x48: the left half opaque, the right half transparent; red grows left to right.
        let source = photo(width: 64, height: 48, bands: 4)
        let covered = try ImageCodec.resize(source, width: 64, height: 48, bands: 4, toWidth: 480, height: 480, fit: .cover)
        #expect(covered.count == 480 * 480 * 4)
        // Scaled by 10 to 640x480, then the centre 480 columns: the old x = 32 edge lands at 240.
        func alpha(_ x: Int, _ y: Int) -> UInt8 { covered[(y * 480 + x) * 4 + 3] }
        #expect(alpha(200, 240) == 255 && alpha(280, 240) == 0, "the edge at the centre: \(alpha(200, 240)) \(alpha(280, 240))")
        // The left 80 columns (8 of the source's) were cropped: red starts near the source's x = 8 (32).
        #expect((25...40).contains(covered[(240 * 480) * 4]), "\(covered[(240 * 480) * 4])")
        let stretched = try ImageCodec.resize(source, width: 64, height: 48, bands: 4, toWidth: 480, height: 480)
        #expect(stretched.count == 480 * 480 * 4)
        #expect(stretched[(240 * 480) * 4] < 10, "nothing cropped: the darkest column stays")
        let smaller = try ImageCodec.resize(source, width: 64, height: 48, bands: 4, toWidth: 16, height: 16, fit: .cover)
        #expect(smaller.count == 16 * 16 * 4)
        #expect(throws: ImagingError.self) { try ImageCodec.resize(source, width: 64, height: 48, bands: 4, toWidth: 0, height: 10) }
    }

    @Test func aSmallJPEGTravelsAsItIs() throws {
        let jpeg = try ImageCodec.encode(photo(width: 640, height: 480), width: 640, height: 480, bands: 3, format: .jpeg)
        let fitted = try ImageCodec.fit(jpeg, maxSide: 1024, maxBytes: 7_000_000, maxPixels: 100_000_000)
        #expect(!fitted.reencoded && fitted.bytes == jpeg && fitted.mediaType == "image/jpeg")
        #expect(fitted.width == 640 && fitted.height == 480)
    }

    @Test func aLargePhotoIsShrunkToTheModelsSideKeepingItsAspect() throws {
        let png = try ImageCodec.encode(photo(width: 1600, height: 1200), width: 1600, height: 1200, bands: 3, format: .png)
        let fitted = try ImageCodec.fit(png, maxSide: 1024, maxBytes: 7_000_000, maxPixels: 100_000_000)
        #expect(fitted.reencoded && fitted.mediaType == "image/jpeg")
        #expect(fitted.width == 1024 && fitted.height == 768, "4:3 stays 4:3: \(fitted.width)x\(fitted.height)")
        let decoded = try ImageCodec.decodeRGB(fitted.bytes, maxPixels: 2_000_000)
        #expect(decoded.width == 1024 && decoded.height == 768)
        // The picture survived: the top-left stays dark red-free, the right edge red.
        #expect(decoded.pixels[0] < 30 && decoded.pixels[(400 * 1024 + 1020) * 3] > 220)
    }

    @Test func transparencyStaysAPNG() throws {
        let png = try ImageCodec.encode(photo(width: 800, height: 400, bands: 4), width: 800, height: 400, bands: 4, format: .png)
        let fitted = try ImageCodec.fit(png, maxSide: 400, maxBytes: 7_000_000, maxPixels: 100_000_000)
        #expect(fitted.mediaType == "image/png" && fitted.width == 400 && fitted.height == 200)
        let decoded = try ImageCodec.decode(fitted.bytes, maxPixels: 1_000_000, keepAlpha: true)
        #expect(decoded.bands == 4)
        #expect(decoded.pixels[(100 * 400 + 50) * 4 + 3] == 255 && decoded.pixels[(100 * 400 + 350) * 4 + 3] == 0)
    }

    @Test func aByteLimitShrinksFurtherUntilItFits() throws {
        let png = try ImageCodec.encode(photo(width: 1200, height: 900), width: 1200, height: 900, bands: 3, format: .png)
        let fitted = try ImageCodec.fit(png, maxSide: 2048, maxBytes: 40_000, maxPixels: 100_000_000)
        #expect(fitted.bytes.count <= 40_000)
        #expect(fitted.width < 1200 && abs(Double(fitted.width) / Double(fitted.height) - 4.0 / 3.0) < 0.01, "\(fitted.width)x\(fitted.height)")
    }

    @Test func whatIsNotAnImageOrCannotFitIsRefusedWithAReason() {
        #expect(throws: ImagingError.self) { try ImageCodec.fit(Array("not an image".utf8), maxSide: 1024, maxBytes: 7_000_000, maxPixels: 1_000_000) }
        #expect(throws: ImagingError.self) { try ImageCodec.fit([], maxSide: 1024, maxBytes: 7_000_000, maxPixels: 1_000_000) }
        do {
            let png = try ImageCodec.encode(photo(width: 300, height: 300), width: 300, height: 300, bands: 3, format: .png)
            _ = try ImageCodec.fit(png, maxSide: 1024, maxBytes: 1024, maxPixels: 1_000_000)
            Issue.record("1 KB cannot hold a 300x300 photo's detail at any side above 64 px")
        } catch {
            #expect(error.message.contains("does not fit"), "\(error.message)")
        }
    }
}
