import Foundation
@testable import Imaging
import Testing

/// The fidelity guard's edges (docs/fidelity.md), on cut-outs built by hand: what it says when there
/// is nothing to compare, when the product is gone, and what restore puts back.
@Suite("Fidelity guard", .blockingWork)
struct FidelityGuardTests {
    /// A `size`² cut-out: a `colour` square of `side` at (`x`, `y`) with matte `alpha`, on white.
    static func cutout(size: Int = 200, square side: Int, at x: Int, _ y: Int, colour: (UInt8, UInt8, UInt8), alpha: UInt8 = 255) -> ProductCutout {
        var rgb = [UInt8](repeating: 255, count: size * size * 3)
        var matte = [UInt8](repeating: 0, count: size * size)
        var layer = [UInt8](repeating: 0, count: size * size * 4)
        for py in y..<(y + side) {
            for px in x..<(x + side) {
                let i = py * size + px
                // A stripe pattern, so the surface has structure to compare.
                let shade: UInt8 = ((px - x) / 6) % 2 == 0 ? 0 : 40
                let c = (colour.0 &- shade, colour.1 &- shade, colour.2 &- shade)
                (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = c
                matte[i] = alpha
                (layer[4 * i], layer[4 * i + 1], layer[4 * i + 2], layer[4 * i + 3]) = (c.0, c.1, c.2, alpha)
            }
        }
        return ProductCutout(width: size, height: size, rgb: rgb, alpha: matte, layer: layer)
    }

    @Test func theSameProductMovedScoresFull() {
        let photo = Self.cutout(square: 80, at: 40, 40, colour: (200, 60, 60))
        let moved = Self.cutout(square: 80, at: 90, 70, colour: (200, 60, 60))
        let report = FidelityGuard.compare(photo, moved)
        #expect(report.checked && report.score >= 0.95, "\(report.description)")
    }

    @Test func aNewColourScoresLow() {
        let photo = Self.cutout(square: 80, at: 40, 40, colour: (200, 60, 60))
        let blue = Self.cutout(square: 80, at: 40, 40, colour: (60, 60, 200))
        let report = FidelityGuard.compare(photo, blue)
        #expect(report.checked && report.score < FidelityGuard.threshold, "\(report.description)")
    }

    @Test func aPhotoWithoutASolidProductIsNotChecked() {
        let faint = Self.cutout(square: 80, at: 40, 40, colour: (200, 60, 60), alpha: 100)
        let result = Self.cutout(square: 80, at: 40, 40, colour: (60, 60, 200))
        #expect(FidelityGuard.compare(faint, result) == .unchecked, "glass-like mattes give nothing to compare")
        #expect(FidelityGuard.restore(faint, into: result, background: (255, 255, 255)) == nil)
    }

    @Test func aResultWithoutTheProductScoresZeroAndRestoreBringsItBack() throws {
        let photo = Self.cutout(square: 80, at: 40, 40, colour: (200, 60, 60))
        let empty = Self.cutout(square: 1, at: 0, 0, colour: (255, 255, 255), alpha: 0)
        let report = FidelityGuard.compare(photo, empty)
        #expect(report.checked && report.score == 0, "\(report.description)")
        let restored = try #require(FidelityGuard.restore(photo, into: empty, background: (255, 255, 255)))
        // The photo's product is back where the photo has it.
        let centre = 3 * (80 * 200 + 80)
        #expect(restored[centre] > 150 && restored[centre + 2] < 100, "\(restored[centre...centre + 2])")
        #expect(restored[3 * (10 * 200 + 10)] == 255, "the backdrop away from it is left alone")
    }

    @Test func restoreReplacesAChangedProductWithThePhotos() throws {
        let photo = Self.cutout(square: 80, at: 40, 40, colour: (200, 60, 60))
        let blue = Self.cutout(square: 60, at: 100, 100, colour: (60, 60, 200))
        let restored = try #require(FidelityGuard.restore(photo, into: blue, background: (255, 255, 255)))
        let after = ProductCutout(width: 200, height: 200, rgb: restored, alpha: blue.alpha, layer: blue.layer)
        let centre = 3 * (130 * 200 + 130)
        #expect(restored[centre] > restored[centre + 2], "red again where the blue product was: \(restored[centre...centre + 2])")
        #expect(FidelityGuard.compare(photo, after).score >= FidelityGuard.threshold)
    }
}

@Suite("Catalog framing: odd mattes", .blockingWork)
struct FramingEdgeTests {
    /// A 300x200 photo: a flat colour with a `speck` of matte (nil: none).
    static func frame(speck: Int?) throws -> (pixels: [UInt8], width: Int, height: Int) {
        let (w, h) = (300, 200)
        let rgb = [UInt8]((0..<(w * h)).flatMap { _ in [UInt8(90), 120, 150] })
        var alpha = [UInt8](repeating: 0, count: w * h)
        if let speck { for y in 100..<(100 + speck) { for x in 150..<(150 + speck) { alpha[y * w + x] = 255 } } }
        var layer = [UInt8](repeating: 0, count: w * h * 4)
        for i in 0..<(w * h) where alpha[i] > 0 { (layer[4 * i], layer[4 * i + 1], layer[4 * i + 2], layer[4 * i + 3]) = (90, 120, 150, 255) }
        return try StudioFraming.frame(
            layer: layer, alpha: alpha, rgb: rgb, width: w, height: h, frame: StudioFrame(aspect: 1, fill: 0.85, minSide: 1600, maxSide: 2000),
            shadow: .soft, background: .white, transparent: false, upscale: 1, maxOutputPixels: 64_000_000)
    }

    @Test func withoutAProductTheWholePhotoIsFramed() throws {
        let framed = try Self.frame(speck: nil)
        #expect(framed.width == 1600 && framed.height == 1600)
        let centre = 3 * (800 * 1600 + 800)
        #expect(Array(framed.pixels[centre..<(centre + 3)]) == [90, 120, 150], "the photo, not a blank canvas")
    }

    @Test func aSpeckIsNotBlownUpToTheFrame() throws {
        let framed = try Self.frame(speck: 2)
        #expect(framed.width == 1600 && framed.height == 1600, "bounded by the frame")
        // Treated as no product: the whole photo, its long side 85 % of the canvas.
        var coloured = 0
        for x in 0..<1600 where framed.pixels[3 * (800 * 1600 + x)] == 90 { coloured += 1 }
        #expect(abs(Double(coloured) / 1600 - 0.85) < 0.02, "\(coloured) px of the middle row")
    }
}
