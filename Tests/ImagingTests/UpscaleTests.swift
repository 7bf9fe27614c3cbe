import Foundation
import Imaging
import Testing

/// The upscaler (`CImagingBridge/upscale.cpp`): geometry, no halos, alpha-aware, and better than
/// bilinear at restoring detail.
@Suite("Upscale")
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

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        let mse = zip(a, b).reduce(0.0) { sum, pair in sum + pow(Double(pair.0) - Double(pair.1), 2) } / Double(a.count)
        return 10 * log10(255 * 255 / max(mse, 1e-10))
    }

    @Test(arguments: [2, 4])
    func restoresDetailBetterThanBilinear(factor: Int) async throws {
        await Fixtures.ready()
        for scene in Fixtures.scenes.prefix(4) {
            let small = Self.shrink(scene.clean, width: scene.width, height: scene.height, bands: 3, by: factor)
            let (w, h) = (scene.width / factor, scene.height / factor)
            let ours = try ImageCodec.upscale(small, width: w, height: h, bands: 3, factor: factor)
            let reference = Self.bilinear(small, width: w, height: h, bands: 3, factor: factor)
            let (oursPSNR, bilinearPSNR) = (Self.psnr(ours, scene.clean), Self.psnr(reference, scene.clean))
            #expect(oursPSNR > bilinearPSNR + 0.3, "\(scene.name) x\(factor): \(oursPSNR) dB vs bilinear \(bilinearPSNR) dB")
        }
    }

    /// A shrink of the enlargement gives a steep ramp back: nothing moved (a half-pixel shift, as
    /// `vips_resize` makes when enlarging, would be off by 2-3 levels here).
    @Test(arguments: [2, 4])
    func pixelCentresStayAligned(factor: Int) throws {
        let (w, h) = (48, 32)
        var input = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { input[(y * w + x) * 3 + c] = UInt8(4 * x + 2 * y + c) } } }
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
    @Test func hardEdgesDoNotRing() throws {
        let (w, h) = (32, 8)
        var input = [UInt8](repeating: 30, count: w * h * 3)
        for y in 0..<h { for x in 16..<w { for c in 0..<3 { input[(y * w + x) * 3 + c] = 220 } } }
        let large = try ImageCodec.upscale(input, width: w, height: h, bands: 3, factor: 4)
        #expect(large.min() == 30 && large.max() == 220, "range \(large.min()!)...\(large.max()!)")
        // And the edge stays sharp: the transition spans at most 2 input pixels (8 output pixels).
        let row = (0..<(w * 4)).map { large[(10 * w * 4 + $0) * 3] }
        let ramp = row.filter { $0 > 35 && $0 < 215 }.count
        #expect(ramp <= 8, "edge ramp of \(ramp) pixels: \(row)")
    }

    /// RGBA is interpolated premultiplied: the colour under a fully transparent pixel never shows.
    @Test func transparentColourDoesNotBleed() throws {
        let (w, h) = (16, 16)
        var input = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h {
            for x in 0..<w {
                let i = (y * w + x) * 4
                if x < 8 { input[i] = 255; input[i + 3] = 0 } // red, fully transparent
                else { input[i + 2] = 255; input[i + 3] = 255 } // opaque blue
            }
        }
        let large = try ImageCodec.upscale(input, width: w, height: h, bands: 4, factor: 2)
        var partial = 0
        for p in stride(from: 0, to: large.count, by: 4) where large[p + 3] > 0 {
            #expect(large[p] <= 1 && large[p + 2] >= 254, "pixel \(p / 4): \(large[p..<(p + 4)])")
            if large[p + 3] < 255 { partial += 1 }
        }
        #expect(partial > 0, "the edge has partial alpha")
    }
}
