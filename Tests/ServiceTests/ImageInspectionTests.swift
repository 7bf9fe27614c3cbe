import Foundation
import Imaging
import ServiceCore
import ServiceSupport
import Testing
import TestSupport

/// Uploads are judged from their bytes before anything decodes them: format, whole or cut short,
/// and the size as seen (EXIF orientation applied).
@Suite("Image inspection at upload")
struct ImageInspectionTests {
    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    static func le32(_ v: Int) -> [UInt8] { [UInt8(v & 255), UInt8(v >> 8 & 255), UInt8(v >> 16 & 255), UInt8(v >> 24 & 255)] }

    /// A PNG's signature, IHDR (claiming `width` x `height`), `idat` bytes of data and IEND.
    static func png(width: Int, height: Int, idat: Int = 16) -> [UInt8] {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        bytes += be32(13) + Array("IHDR".utf8) + be32(width) + be32(height) + [8, 2, 0, 0, 0] + [0, 0, 0, 0]
        bytes += be32(idat) + Array("IDAT".utf8) + [UInt8](repeating: 0x55, count: idat) + [0, 0, 0, 0]
        bytes += be32(0) + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
        return bytes
    }

    /// A real `width` x `height` image (a gradient) in `format`, from libvips.
    static func encoded(_ format: OutputFormat, width: Int = 320, height: Int = 200) throws -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(x * 255 / width)
                pixels[i + 1] = UInt8(y * 255 / height)
                pixels[i + 2] = 128
            }
        }
        return try ImageCodec.encode(pixels, width: width, height: height, bands: 3, format: format)
    }

    static func gif(width: Int, height: Int) -> [UInt8] {
        Array("GIF89a".utf8) + [UInt8(width & 255), UInt8(width >> 8), UInt8(height & 255), UInt8(height >> 8)]
            + [0, 0, 0] + [0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00] + [0x3B]
    }

    /// A lossless WebP (VP8L) whose RIFF header declares its real length.
    static func webp(width: Int, height: Int) -> [UInt8] {
        let bits = (width - 1) | (height - 1) << 14
        var chunk = Array("VP8L".utf8) + le32(10) + [0x2F] + le32(bits) + [0, 0, 0, 0, 0]
        chunk += [0]  // pad to even
        return Array("RIFF".utf8) + le32(4 + chunk.count) + Array("WEBP".utf8) + chunk
    }

    /// An APP1 segment with an EXIF IFD0 holding only the orientation tag.
    static func exif(orientation: Int, bigEndian: Bool) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 255)] : [UInt8(v & 255), UInt8(v >> 8)] }
        func u32(_ v: Int) -> [UInt8] { bigEndian ? be32(v) : le32(v) }
        var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        tiff += u16(42) + u32(8)
        tiff += u16(1) + u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0]
        tiff += u32(0)
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        return [0xFF, 0xE1, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 255)] + payload
    }

    static func withEXIF(_ jpeg: [UInt8], orientation: Int, bigEndian: Bool = false) -> [UInt8] {
        Array(jpeg.prefix(2)) + exif(orientation: orientation, bigEndian: bigEndian) + Array(jpeg.dropFirst(2))
    }

    static func image(_ inspection: ImageInspection) -> SniffedImage? {
        if case .image(let image) = inspection { return image }
        return nil
    }

    @Test func wholeFilesOfEachFormatAreImagesWithTheirSize() throws {
        let photo = try Samples.bytes("dev03", "input.jpg")
        #expect(Self.image(ImageSniffer.inspect(photo)) == SniffedImage(mimeType: "image/jpeg", fileExtension: "jpg", width: 1024, height: 1024))
        for (format, mime, ext) in [(OutputFormat.jpeg, "image/jpeg", "jpg"), (.png, "image/png", "png"), (.webp, "image/webp", "webp")] {
            #expect(Self.image(ImageSniffer.inspect(try Self.encoded(format)))
                == SniffedImage(mimeType: mime, fileExtension: ext, width: 320, height: 200))
        }
        #expect(Self.image(ImageSniffer.inspect(Self.png(width: 640, height: 480)))
            == SniffedImage(mimeType: "image/png", fileExtension: "png", width: 640, height: 480))
        #expect(Self.image(ImageSniffer.inspect(Self.gif(width: 300, height: 200)))
            == SniffedImage(mimeType: "image/gif", fileExtension: "gif", width: 300, height: 200))
        #expect(Self.image(ImageSniffer.inspect(Self.webp(width: 1024, height: 768)))
            == SniffedImage(mimeType: "image/webp", fileExtension: "webp", width: 1024, height: 768))
    }

    @Test func aFileCutShortIsDamagedNotAnotherFormat() throws {
        let jpeg = try Samples.bytes("dev03", "input.jpg")
        let png = try Self.encoded(.png), webp = try Self.encoded(.webp)
        let cases: [(String, [UInt8])] = [
            ("JPEG", Array(jpeg.prefix(jpeg.count / 2))),
            ("JPEG", Array(jpeg.prefix(jpeg.count - 2))),  // only the end-of-image marker missing
            ("JPEG", Array(jpeg.prefix(40))),  // inside the header
            ("PNG", Array(png.prefix(png.count * 2 / 3))),
            ("PNG", Array(Self.png(width: 64, height: 64).dropLast(12))),
            ("PNG", Array(Self.png(width: 64, height: 64).prefix(20))),  // IHDR cut
            ("GIF", Array(Self.gif(width: 10, height: 10).dropLast())),
            ("WebP", Array(webp.prefix(webp.count - 10))),
            ("WebP", Array(Self.webp(width: 10, height: 10).dropLast(4))),
        ]
        for (format, bytes) in cases {
            guard case .damaged(let found, let reason) = ImageSniffer.inspect(bytes) else {
                Issue.record("\(format) of \(bytes.count) bytes: \(ImageSniffer.inspect(bytes))")
                continue
            }
            #expect(found == format)
            #expect(!reason.isEmpty)
        }
        #expect(ImageSniffer.inspect(Array("just some text".utf8)) == .notAnImage)
        #expect(ImageSniffer.inspect([]) == .notAnImage)
    }

    /// A phone photo held upright is stored landscape with orientation 6 (or 8, 5, 7): what is seen,
    /// and stored as the media's width and height, is portrait.
    @Test(arguments: [(1, false), (3, false), (5, true), (6, true), (7, true), (8, true)])
    func exifOrientationTurnsTheSize(orientation: Int, turned: Bool) throws {
        let jpeg = try Self.encoded(.jpeg)
        let stored = try #require(ImageSniffer.sniff(jpeg))
        #expect(stored.width == 320 && stored.height == 200)
        for bigEndian in [false, true] {
            let rotated = Self.withEXIF(jpeg, orientation: orientation, bigEndian: bigEndian)
            let seen = try #require(Self.image(ImageSniffer.inspect(rotated)))
            #expect(seen.width == (turned ? stored.height : stored.width), "orientation \(orientation)")
            #expect(seen.height == (turned ? stored.width : stored.height), "orientation \(orientation)")
        }
    }

    /// EXIF is read from untrusted bytes: every offset in it may lie. Random corruption of the
    /// EXIF payload (its segment's framing kept) never crashes or reads out of range, and the file
    /// is still the same image, upright or turned.
    @Test func corruptEXIFNeverCrashesNorChangesTheImage() throws {
        let jpeg = try Self.encoded(.jpeg)
        let stored = try #require(ImageSniffer.sniff(jpeg))
        let base = Self.withEXIF(jpeg, orientation: 6)
        let payload = 6..<(4 + Int(base[4]) << 8 + Int(base[5]))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                bytes[Int.random(in: payload, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let seen = try #require(Self.image(ImageSniffer.inspect(bytes)))
            #expect(Set([seen.width, seen.height]) == Set([stored.width, stored.height]))
        }
    }
}
