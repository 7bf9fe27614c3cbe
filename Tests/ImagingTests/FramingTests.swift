import Foundation
import Imaging
import Testing

@Suite("Catalog framing: the layout", .blockingWork)
struct FrameLayoutTests {
    static let amazon = StudioFrame(aspect: 1, fill: 0.85, minSide: 1600, maxSide: 2000)

    @Test func aSquareCanvasGivesTheProductsLongSideTheFill() {
        let box = ProductBox(x: 300, y: 200, width: 400, height: 200)
        let layout = FrameLayout.compute(box: box, photo: (1000, 800), frame: Self.amazon, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(layout.outputWidth == 1600 && layout.outputHeight == 1600)
        #expect(abs(Double(box.width) * layout.scale - 0.85 * 1600) < 1)
        // Centred on both axes.
        #expect(abs(layout.productX * 2 + Double(box.width) - layout.canvasWidth) < 0.001)
        #expect(abs(layout.productY * 2 + Double(box.height) - layout.canvasHeight) < 0.001)
    }

    @Test func aLargeProductIsScaledDownToTheMaximum() {
        let box = ProductBox(x: 10, y: 10, width: 3000, height: 2500)
        let layout = FrameLayout.compute(box: box, photo: (4000, 3000), frame: Self.amazon, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(layout.outputWidth == 2000 && layout.outputHeight == 2000)
        #expect(abs(3000 * layout.scale - 0.85 * 2000) < 1)
    }

    @Test func withoutBoundsTheProductKeepsItsResolutionTimesTheUpscale() {
        let frame = StudioFrame(aspect: 1, fill: 0.5)
        let layout = FrameLayout.compute(box: ProductBox(x: 50, y: 50, width: 300, height: 100), photo: (400, 400), frame: frame, upscale: 2, maxOutputPixels: 64_000_000)
        #expect(layout.outputWidth == 1200 && layout.outputHeight == 1200)
        #expect(abs(layout.scale - 2) < 0.001)
    }

    @Test func aWideProductOnAPortraitCanvasFitsItsWidth() {
        let frame = StudioFrame(aspect: 4.0 / 5, fill: 0.9, minSide: 1000, maxSide: 1000)
        let box = ProductBox(x: 100, y: 100, width: 600, height: 200)
        let layout = FrameLayout.compute(box: box, photo: (800, 600), frame: frame, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(layout.outputHeight == 1000 && layout.outputWidth == 800)
        // The product's long side takes 90 % of the canvas's width, the side it would overflow.
        #expect(abs(600 * layout.scale - 0.9 * 800) < 1)
        #expect(200 * layout.scale < 0.9 * 1000)
    }

    @Test func theOriginalAspectIsThePhotos() {
        let frame = StudioFrame(aspect: nil, fill: 0.8)
        let layout = FrameLayout.compute(
            box: ProductBox(x: 100, y: 100, width: 200, height: 300), photo: (1600, 900), frame: frame, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(abs(Double(layout.outputWidth) / Double(layout.outputHeight) - 16.0 / 9) < 0.01)
        #expect(abs(300 * layout.scale - 0.8 * Double(layout.outputHeight)) < 1)
    }

    @Test func bottomAlignmentStandsTheProductNearTheBottom() {
        let frame = StudioFrame(aspect: 1, fill: 0.6, alignBottom: true)
        let box = ProductBox(x: 100, y: 100, width: 200, height: 200)
        let layout = FrameLayout.compute(box: box, photo: (400, 400), frame: frame, upscale: 1, maxOutputPixels: 64_000_000)
        let below = layout.canvasHeight - layout.productY - 200
        let above = layout.productY
        #expect(below > 0 && below < above / 2)
    }

    @Test func aProductCutByThePhotosEdgeStaysAgainstThatEdge() {
        var box = ProductBox(x: 200, y: 300, width: 400, height: 500)
        box.cutBottom = true
        let layout = FrameLayout.compute(box: box, photo: (1000, 800), frame: Self.amazon, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(abs(layout.productY + 500 - layout.canvasHeight) < 0.001)
        // Cut on both sides of an axis, it spans that axis when the aspect allows.
        box = ProductBox(x: 0, y: 100, width: 1000, height: 300)
        (box.cutLeft, box.cutRight) = (true, true)
        let spanning = FrameLayout.compute(box: box, photo: (1000, 800), frame: Self.amazon, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(abs(spanning.canvasWidth - 1000) < 0.001 && abs(spanning.productX) < 0.001)
    }

    @Test func theMaximumWinsOverALargerMinimum() {
        let frame = StudioFrame(aspect: 1, fill: 0.8, minSide: 3000, maxSide: 1200)
        let layout = FrameLayout.compute(
            box: ProductBox(x: 0, y: 0, width: 100, height: 100), photo: (500, 500), frame: frame, upscale: 1, maxOutputPixels: 64_000_000)
        #expect(layout.outputWidth == 1200 && layout.outputHeight == 1200)
    }

    @Test func theOutputCapHolds() {
        let frame = StudioFrame(aspect: 16.0 / 9, fill: 0.9, minSide: 10_000)
        let layout = FrameLayout.compute(
            box: ProductBox(x: 0, y: 0, width: 100, height: 100), photo: (500, 500), frame: frame, upscale: 1, maxOutputPixels: 20_000_000)
        #expect(layout.outputWidth * layout.outputHeight <= 20_000_000)
        #expect(abs(Double(layout.outputWidth) / Double(layout.outputHeight) - 16.0 / 9) < 0.01)
    }

    @Test func theBoxIsMeasuredFromTheMatte() throws {
        var alpha = [UInt8](repeating: 0, count: 100 * 80)
        for y in 20..<60 { for x in 30..<100 { alpha[y * 100 + x] = 255 } }
        alpha[5 * 100 + 5] = 40  // a faint speck below the threshold
        let box = try #require(ProductBox.measure(alpha, width: 100, height: 80))
        let measured: [Int] = [box.x, box.y, box.width, box.height]
        #expect(measured == [30, 20, 70, 40])
        #expect(box.cutRight && !box.cutLeft && !box.cutTop && !box.cutBottom)
        #expect(ProductBox.measure([UInt8](repeating: 10, count: 64), width: 8, height: 8) == nil)
    }
}

@Suite("Catalog framing of the sample scenes", .blockingWork)
struct FramingTests {
    /// Four scenes of different kinds (the first of every ninth), so the suite stays quick.
    static var scenes: [SampleScene] { stride(from: 0, to: Fixtures.scenes.count, by: 9).map { Fixtures.scenes[$0] } }

    /// The box of the pixels whose alpha is at least `threshold`.
    static func box(_ alpha: [UInt8], width: Int, height: Int, threshold: UInt8 = 128) -> (x0: Int, y0: Int, x1: Int, y1: Int) {
        var (x0, y0, x1, y1) = (Int.max, Int.max, -1, -1)
        for y in 0..<height {
            for x in 0..<width where alpha[y * width + x] >= threshold {
                (x0, y0, x1, y1) = (min(x0, x), min(y0, y), max(x1, x + 1), max(y1, y + 1))
            }
        }
        return (x0, y0, x1, y1)
    }

    @Test func amazonFillsAndCentresTheProductOnAPureWhiteSquare() async throws {
        let frame = FrameLayoutTests.amazon
        for scene in Self.scenes {
            let product = try Fixtures.pipeline.render(
                StudioShotRequest(image: scene.input, background: .transparent, shadow: .none, frame: frame))
            #expect(product.width == product.height, "\(scene.name): \(product.width)x\(product.height)")
            #expect((1600...2000).contains(product.width), "\(scene.name): \(product.width)")
            let alpha = try #require(try RasterImage(decoding: product.encoded).alpha)
            let box = Self.box(alpha, width: product.width, height: product.height)
            let long = Double(max(box.x1 - box.x0, box.y1 - box.y0)) / Double(product.width)
            #expect(abs(long - 0.85) < 0.03, "\(scene.name): the product's long side is \(long) of the side")
            let centre = (Double(box.x0 + box.x1) / 2 / Double(product.width), Double(box.y0 + box.y1) / 2 / Double(product.height))
            #expect(abs(centre.0 - 0.5) < 0.03 && abs(centre.1 - 0.5) < 0.03, "\(scene.name): centred at \(centre)")

            // With a shadow: the same layout, white is 255 wherever neither product nor shadow covers,
            // and nothing reaches the canvas's edge.
            let white = try Fixtures.pipeline.render(
                StudioShotRequest(image: scene.input, background: .white, shadow: .soft, frame: frame))
            let covered = try Fixtures.pipeline.render(
                StudioShotRequest(image: scene.input, background: .transparent, shadow: .soft, frame: frame))
            #expect(white.width == covered.width && white.height == covered.height)
            let rgb = try RasterImage(decoding: white.encoded).pixels
            let coverage = try #require(try RasterImage(decoding: covered.encoded).alpha)
            var impure = 0
            for i in 0..<coverage.count where coverage[i] == 0 && (rgb[3 * i] != 255 || rgb[3 * i + 1] != 255 || rgb[3 * i + 2] != 255) {
                impure += 1
            }
            #expect(impure == 0, "\(scene.name): \(impure) uncovered pixels are not pure white")
            let (w, h) = (covered.width, covered.height)
            var reach: UInt8 = 0
            for x in 0..<w { reach = max(reach, coverage[x], coverage[(h - 1) * w + x]) }
            for y in 0..<h { reach = max(reach, coverage[y * w], coverage[y * w + w - 1]) }
            #expect(reach <= 2, "\(scene.name): product or shadow reaches the edge (alpha \(reach))")
        }
    }

    @Test func aPortraitFrameStandsTheProductAtTheBottom() async throws {
        let scene = try #require(Self.scenes.last)
        let frame = StudioFrame(aspect: 4.0 / 5, fill: 0.7, alignBottom: true, minSide: 1000, maxSide: 1000)
        let result = try Fixtures.pipeline.render(
            StudioShotRequest(image: scene.input, background: .transparent, shadow: .dramatic, frame: frame))
        #expect(result.width == 800 && result.height == 1000)
        let alpha = try #require(try RasterImage(decoding: result.encoded).alpha)
        let product = Self.box(alpha, width: result.width, height: result.height, threshold: 250)
        #expect(result.height - product.y1 < product.y0, "\(scene.name): \(product) is not in the lower part")
        let edge = (0..<result.width).map { alpha[(result.height - 1) * result.width + $0] }
        #expect((edge.max() ?? 0) <= 2, "\(scene.name): the shadow is cut at the bottom")
    }
}
