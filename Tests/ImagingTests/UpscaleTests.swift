import Foundation
import Imaging
import Testing

/// The upscaler (`CImagingBridge/upscale.cpp`): geometry, no halos, alpha-aware, and better than
/// bilinear at restoring detail.
@Suite("Upscale", .blockingWork)
struct UpscaleTests {
    /// Box average of `factor` x `factor` blocks.
    static func shrink(_ pixels: [UInt8], width: Int, height: Int, bands: Int, by factor: Int) -> [UInt8] {
        let (w, h) = (width / factor, height / factor)
        var out = [UInt8](repeating: 0, count: w * h * bands)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<bands {
                    var sum = 0
                    for dy in 0..<factor {
                        for dx in 0..<factor { sum += Int(pixels[((y * factor + dy) * width + x * factor + dx) * bands + c]) }
                    }
                    out[(y * w + x) * bands + c] = UInt8((sum + factor * factor / 2) / (factor * factor))
                }
            }
        }
        return out
    }

    /// Bilinear enlargement with the same pixel-centre mapping, as the bar to beat.
    static func bilinear(_ pixels: [UInt8], width: Int, height: Int, bands: Int, factor: Int) -> [UInt8] {
        let (w, h) = (width * factor, height * factor)
        var out = [UInt8](repeating: 0, count: w * h * bands)
        func at(_ x: Int, _ y: Int, _ c: Int) -> Double {
            Double(pixels[(min(max(y, 0), height - 1) * width + min(max(x, 0), width - 1)) * bands + c])
        }
        for y in 0..<h {
            let sy = (Double(y) + 0.5) / Double(factor) - 0.5
            let y0 = Int(sy.rounded(.down))
            let ty = sy - Double(y0)
            for x in 0..<w {
                let sx = (Double(x) + 0.5) / Double(factor) - 0.5
                let x0 = Int(sx.rounded(.down))
                let tx = sx - Double(x0)
                for c in 0..<bands {
                    let top = at(x0, y0, c) * (1 - tx) + at(x0 + 1, y0, c) * tx
                    let bottom = at(x0, y0 + 1, c) * (1 - tx) + at(x0 + 1, y0 + 1, c) * tx
                    out[(y * w + x) * bands + c] = UInt8((top * (1 - ty) + bottom * ty).rounded())
                }
            }
        }
        return out
    }

    /// An RGBA image whose every column x is `pixel(x)`.
    static func rgbaColumns(width: Int, height: Int, _ pixel: (Int) -> [UInt8]) -> [UInt8] {
        (0..<height).flatMap { _ in (0..<width).flatMap(pixel) }
    }

    @Test(arguments: [2, 4])
    func restoresDetailBetterThanBilinear(factor: Int) async throws {
        for scene in Fixtures.scenes.prefix(4) {
            let small = Self.shrink(scene.clean, width: scene.width, height: scene.height, bands: 3, by: factor)
            let (w, h) = (scene.width / factor, scene.height / factor)
            let ours = try ImageCodec.upscale(small, width: w, height: h, bands: 3, factor: factor)
            let reference = Self.bilinear(small, width: w, height: h, bands: 3, factor: factor)
            let (oursPSNR, bilinearPSNR) = (Fixtures.psnr(ours, scene.clean), Fixtures.psnr(reference, scene.clean))
            #expect(oursPSNR > bilinearPSNR + 0.3, "\(scene.name) x\(factor): \(oursPSNR) dB vs bilinear \(bilinearPSNR) dB")
        }
    }

    /// A shrink of the enlargement gives steep ramps back: nothing moved (a half-pixel shift along
    /// either axis, as `vips_resize` makes when enlarging, would be off by 2-3 levels in red for x
    /// or green for y).
    @Test(arguments: [2, 4])
    func pixelCentresStayAligned(factor: Int) throws {
        let (w, h) = (48, 32)
        var input = [UInt8](repeating: 128, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                input[(y * w + x) * 3] = UInt8(5 * x)
                input[(y * w + x) * 3 + 1] = UInt8(5 * y)
            }
        }
        let large = try ImageCodec.upscale(input, width: w, height: h, bands: 3, factor: factor)
        let back = Self.shrink(large, width: w * factor, height: h * factor, bands: 3, by: factor)
        var worst = 0
        for y in 2..<(h - 2) { // away from the replicated border
            for x in 2..<(w - 2) {
                for c in 0..<3 { worst = max(worst, abs(Int(back[(y * w + x) * 3 + c]) - Int(input[(y * w + x) * 3 + c]))) }
            }
        }
        #expect(worst <= 1, "largest difference after shrinking back: \(worst)")
    }

    /// A hard black/white edge: every output value lies within the range of its 2x2 input
    /// neighbourhood, so there is no ringing (the sharper kernel would overshoot without the bound).
    @Test(arguments: [false, true])
    func hardEdgesDoNotRing(horizontalEdge: Bool) throws {
        let side = 32
        var input = [UInt8](repeating: 30, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side where (horizontalEdge ? y : x) >= 16 { for c in 0..<3 { input[(y * side + x) * 3 + c] = 220 } }
        }
        let large = try ImageCodec.upscale(input, width: side, height: side, bands: 3, factor: 4)
        #expect(large.min() == 30 && large.max() == 220, "range \(large.min()!)...\(large.max()!)")
        // And the edge stays sharp: the transition spans at most 2 input pixels (8 output pixels).
        let across = (0..<(side * 4)).map { i in
            large[(horizontalEdge ? i * side * 4 + 40 : 40 * side * 4 + i) * 3]
        }
        let ramp = across.filter { $0 > 35 && $0 < 215 }.count
        #expect(ramp <= 8, "edge ramp of \(ramp) pixels: \(across)")
    }

    /// A cut-out edge with two opaque tones (white, then grey, then transparent): the straight
    /// colour of every visible output pixel stays within the opaque tones, so no dark or bright
    /// fringe appears where the product meets transparency.
    @Test func cutOutEdgesHaveNoFringe() throws {
        let (w, h) = (24, 8)
        let input = Self.rgbaColumns(width: w, height: h) { x in
            x < 10 ? [255, 255, 255, 255] : x == 10 ? [128, 128, 128, 255] : [0, 0, 0, 0]
        }
        for factor in [2, 4] {
            let large = try ImageCodec.upscale(input, width: w, height: h, bands: 4, factor: factor)
            for p in stride(from: 0, to: large.count, by: 4) where large[p + 3] > 0 {
                #expect((127...255).contains(large[p]), "x\(factor) pixel \(p / 4): \(large[p..<(p + 4)])")
            }
        }
    }

    /// RGBA is interpolated premultiplied: the colour under a fully transparent pixel never shows.
    @Test func transparentColourDoesNotBleed() throws {
        let (w, h) = (16, 16)
        // Red but fully transparent on the left, opaque blue on the right.
        let input = Self.rgbaColumns(width: w, height: h) { x in x < 8 ? [255, 0, 0, 0] : [0, 0, 255, 255] }
        let large = try ImageCodec.upscale(input, width: w, height: h, bands: 4, factor: 2)
        var partial = 0
        for p in stride(from: 0, to: large.count, by: 4) where large[p + 3] > 0 {
            #expect(large[p] <= 1 && large[p + 2] >= 254, "pixel \(p / 4): \(large[p..<(p + 4)])")
            if large[p + 3] < 255 { partial += 1 }
        }
        #expect(partial > 0, "the edge has partial alpha")
    }
}
