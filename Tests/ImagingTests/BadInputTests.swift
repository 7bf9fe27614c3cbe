import Foundation
import Imaging
import Testing

@Suite("Bad inputs end in an ImagingError, never a crash", .blockingWork)
struct BadInputTests {
    var pipeline: StudioShotPipeline { Fixtures.pipeline }

    func expectFailure(_ bytes: [UInt8], _ code: ImagingError.Code, mentioning words: [String] = []) async {
        do {
            let result = try pipeline.render(StudioShotRequest(image: bytes))
            Issue.record("expected \(code), got a \(result.width)x\(result.height) image")
        } catch {
            #expect(error.code == code, "\(error)")
            for word in words { #expect(error.message.contains(word), "\(error.message)") }
        }
    }

    @Test func emptyInput() async {
        await expectFailure([], .emptyInput, mentioning: ["empty"])
    }

    @Test func truncatedJPEG() async throws {
        let jpeg = try #require(Fixtures.scenes.first).input
        await expectFailure(Array(jpeg.prefix(jpeg.count / 2)), .undecodable)
    }

    @Test func textFile() async {
        await expectFailure(Array("this is not an image, just some text\n".utf8), .undecodable, mentioning: ["not an image"])
    }

    /// libvips can read many more formats (SVG through librsvg, PPM, PDF, TIFF, ImageMagick's...;
    /// these two it read before they were blocked);
    /// only PNG, JPEG, WebP and GIF loaders are left unblocked, so these are never parsed.
    @Test(arguments: [
        ("svg", #"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48" fill="red"/></svg>"#),
        ("ppm", "P3\n2 2\n255\n255 0 0  0 255 0  0 0 255  255 255 255\n"),
    ])
    func aFormatOtherThanPNGJPEGWebPOrGIFIsNotParsed(format: String, text: String) async {
        await expectFailure(Array(text.utf8), .undecodable, mentioning: ["not an image format"])
    }

    @Test func pngHeaderClaiming50000x50000IsRefusedFromTheHeader() async {
        let bomb = pngHeader(width: 50000, height: 50000)
        // Refused from the header (the message names the header's size): decoding 2.5 gigapixels
        // would take minutes and gigabytes.
        await expectFailure(bomb, .tooLarge, mentioning: ["50000x50000", "40.0 MP"])
    }

    @Test func tooManyBytes() async throws {
        let small = try StudioShotPipeline(configuration: PipelineConfiguration(modelPath: nil, maxBytes: 1000))
        let jpeg = try #require(Fixtures.scenes.first).input
        do {
            _ = try small.render(StudioShotRequest(image: jpeg))
            Issue.record("expected tooLarge")
        } catch {
            #expect(error.code == .tooLarge)
            #expect(error.message.contains("at most"))
        }
    }

    @Test func unsupportedUpscale() async throws {
        let jpeg = try #require(Fixtures.scenes.first).input
        do {
            _ = try pipeline.render(StudioShotRequest(image: jpeg, upscale: 3))
            Issue.record("expected unsupported")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("3"))
        }
    }

    @Test func sixteenBitPNGIsConverted() async throws {
        let png = try ImageCodec.encodeFixture(Fixtures.gradient(), width: 64, height: 48, as: .png16)
        let raw = try RasterImage(decoding: png)
        #expect(raw.width == 64 && raw.height == 48)
        let result = try pipeline.render(StudioShotRequest(image: png, background: .transparent, shadow: .none))
        let decoded = try RasterImage(decoding: result.encoded)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.bands == 4)
    }

    @Test func cmykJPEGIsConverted() async throws {
        let cmyk = try ImageCodec.encodeFixture(
            Fixtures.gradient(bands: 4), width: 64, height: 48, as: .cmykJPEG)
        let result = try pipeline.render(StudioShotRequest(image: cmyk, shadow: .none, outputFormat: .png))
        let decoded = try RasterImage(decoding: result.encoded)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.bands == 3)
        #expect(!result.hasAlpha)
    }

    @Test func tinyImagesWork() async throws {
        for (w, h) in [(1, 1), (2, 7), (300, 3)] {
            let png = try ImageCodec.encode(Fixtures.gradient(width: w, height: h), width: w, height: h, bands: 3, format: .png)
            let result = try pipeline.render(StudioShotRequest(image: png, shadow: .dramatic, upscale: 2))
            #expect(result.width == w * 2 && result.height == h * 2)
        }
    }
}
