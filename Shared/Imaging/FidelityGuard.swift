import Foundation

/// A photo's product cut out by the pipeline (``StudioShotPipeline/cutOut(_:removeWatermark:)``).
public struct ProductCutout: Sendable {
    public var width: Int, height: Int
    /// The decoded photo (after watermark removal when it was asked for), RGB.
    public var rgb: [UInt8]
    /// The refined matte, one byte a pixel.
    public var alpha: [UInt8]
    /// The product with its edge colours cleaned, RGBA (straight alpha): what a studio shot composites.
    public var layer: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8], alpha: [UInt8], layer: [UInt8]) {
        (self.width, self.height, self.rgb, self.alpha, self.layer) = (width, height, rgb, alpha, layer)
    }
}

/// How much of the photo's product a generated result kept (docs/fidelity.md).
public struct FidelityReport: Sendable, Equatable {
    /// The share of the photo's product found unchanged in the result (0–1): the lower of the
    /// matching surface (``unchangedShare``) and the shape's overlap (``shapeOverlap``).
    public var score: Double
    /// The share of the result's product area, in 16x16 blocks of a ~192 px working copy, where the
    /// aligned photo has the same structure (block SSIM ≥ 0.3) and colour (mean difference ≤ 24 of 255).
    public var unchangedShare: Double
    /// Intersection over union of the two mattes after alignment.
    public var shapeOverlap: Double
    /// Mean colour difference (0–255) over the product pixels both have.
    public var colourDifference: Double
    /// False when the photo has no product to guard (nothing found by the segmenter): score 1.
    public var checked: Bool

    /// Nothing to compare with.
    public static let unchecked = FidelityReport(score: 1, unchangedShare: 1, shapeOverlap: 1, colourDifference: 0, checked: false)

    public var description: String {
        String(format: "%.0f %% of the product unchanged (surface %.2f, shape %.2f, colour difference %.1f)",
               score * 100, unchangedShare, shapeOverlap, colourDifference)
    }
}

/// Compares a generated result with the photo it was made from, after aligning the products (one
/// scale and a shift, from their boxes), and puts the photo's own product back when asked.
public enum FidelityGuard {
    /// Below this score a result counts as having changed the product (calibrated on the 36 sample
    /// scenes: docs/fidelity.md).
    public static let threshold = 0.75
    /// The working copy's long side.
    static let workingSide = 192.0
    static let block = 16

    public static func compare(_ photo: ProductCutout, _ result: ProductCutout) -> FidelityReport {
        // No solid product in the photo (nothing found, or only a faint matte: glass): nothing to guard.
        let (photoMass, resultMass) = (Mass(photo), Mass(result))
        guard photoMass.count > 0, let source = ProductBox.measure(photo.alpha, width: photo.width, height: photo.height) else {
            return .unchecked
        }
        // The product is gone from the result: nothing of it unchanged.
        guard resultMass.count > 0 else { return FidelityReport(score: 0, unchangedShare: 0, shapeOverlap: 0, colourDifference: 255, checked: true) }
        // The working grid covers the photo's box and a margin, so a result that grew is seen too.
        let k = min(1, workingSide / Double(max(source.width, source.height)))
        let margin = 0.15 * Double(max(source.width, source.height))
        let (left, top) = (Double(source.x) - margin, Double(source.y) - margin)
        let gw = Int(((Double(source.width) + 2 * margin) * k).rounded(.up)), gh = Int(((Double(source.height) + 2 * margin) * k).rounded(.up))
        let photoSums = AreaSums(photo.rgb, alpha: photo.alpha, width: photo.width, height: photo.height)
        let resultSums = AreaSums(result.rgb, alpha: result.alpha, width: result.width, height: result.height)
        // Per working pixel: colour and coverage of each, as area means over its footprint.
        func sample(_ sums: AreaSums, _ mapping: Alignment?) -> [(r: Double, g: Double, b: Double, alpha: Double)] {
            var grid = [(r: Double, g: Double, b: Double, alpha: Double)](repeating: (0, 0, 0, 0), count: gw * gh)
            for gy in 0..<gh {
                let y0 = top + Double(gy) / k, y1 = top + Double(gy + 1) / k
                for gx in 0..<gw {
                    let x0 = left + Double(gx) / k, x1 = left + Double(gx + 1) / k
                    guard let mapping else { grid[gy * gw + gx] = sums.mean(x0, y0, x1, y1); continue }
                    let (rx0, ry0) = mapping.map(x0, y0), (rx1, ry1) = mapping.map(x1, y1)
                    grid[gy * gw + gx] = sums.mean(rx0, ry0, rx1, ry1)
                }
            }
            return grid
        }
        let a = sample(photoSums, nil)
        // The products' centres and areas align them roughly; the best of a few nearby shifts and
        // scales (least squared difference over the photo's product) aligns them to a pixel.
        let rough = Alignment(from: photoMass, to: resultMass)
        func luminance(_ p: (r: Double, g: Double, b: Double, alpha: Double)) -> Double { 0.299 * p.r + 0.587 * p.g + 0.114 * p.b }
        var best = (difference: Double.infinity, grid: sample(resultSums, rough))
        let step = 1 / k * rough.scale
        for relative in [0.97, 0.985, 1, 1.015, 1.03] {
            for dy in -2...2 {
                for dx in -2...2 {
                    var candidate = rough
                    candidate.scale *= relative
                    candidate.toX += Double(dx) * step
                    candidate.toY += Double(dy) * step
                    let grid = sample(resultSums, candidate)
                    var (sum, n) = (0.0, 0.0)
                    for i in 0..<(gw * gh) where a[i].alpha >= 128 {
                        let d = luminance(a[i]) - luminance(grid[i])
                        (sum, n) = (sum + d * d, n + 1)
                    }
                    if n > 0, sum / n < best.difference { best = (sum / n, grid) }
                }
            }
        }
        // One brightness gain (0.75–1.33) evens out lighting: a photo's vignette or a generated
        // studio light is not a change of the product; a new colour is.
        var (photoLight, resultLight) = (0.0, 0.0)
        for i in 0..<(gw * gh) where a[i].alpha >= 128 && best.grid[i].alpha >= 128 {
            (photoLight, resultLight) = (photoLight + luminance(a[i]), resultLight + luminance(best.grid[i]))
        }
        let gain = resultLight > 0 ? min(1.33, max(0.75, photoLight / resultLight)) : 1
        let b = best.grid.map { (r: min(255, $0.r * gain), g: min(255, $0.g * gain), b: min(255, $0.b * gain), alpha: $0.alpha) }
        var (both, either) = (0, 0)
        for i in 0..<(gw * gh) {
            let (p, q) = (a[i].alpha >= 128, b[i].alpha >= 128)
            if p && q { both += 1 }
            if p || q { either += 1 }
        }
        let overlap = either == 0 ? 1 : Double(both) / Double(either)
        var (weight, unchanged, colourSum, colourCount) = (0.0, 0.0, 0.0, 0.0)
        let c1 = (0.01 * 255.0) * (0.01 * 255.0), c2 = (0.03 * 255.0) * (0.03 * 255.0)
        for by in stride(from: 0, to: gh, by: block) {
            for bx in stride(from: 0, to: gw, by: block) {
                var n = 0.0
                var (mx, my, xx, yy, xy, colour) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                for y in by..<min(gh, by + block) {
                    for x in bx..<min(gw, bx + block) {
                        let (p, q) = (a[y * gw + x], b[y * gw + x])
                        // The result's product (its matte is the cleaner one: a studio backdrop)
                        // against the photo at the same place, whatever the photo's matte says there.
                        guard q.alpha >= 128 else { continue }
                        n += 1
                        let lp = 0.299 * p.r + 0.587 * p.g + 0.114 * p.b, lq = 0.299 * q.r + 0.587 * q.g + 0.114 * q.b
                        (mx, my, xx, yy, xy) = (mx + lp, my + lq, xx + lp * lp, yy + lq * lq, xy + lp * lq)
                        colour += (abs(p.r - q.r) + abs(p.g - q.g) + abs(p.b - q.b)) / 3
                    }
                }
                guard n > 0 else { continue }
                weight += n
                let (meanX, meanY) = (mx / n, my / n)
                let varX = max(0, xx / n - meanX * meanX), varY = max(0, yy / n - meanY * meanY)
                let cov = xy / n - meanX * meanY
                let ssim = ((2 * meanX * meanY + c1) * (2 * cov + c2)) / ((meanX * meanX + meanY * meanY + c1) * (varX + varY + c2))
                let difference = colour / n
                colourSum += colour
                colourCount += n
                if ssim >= 0.3 && difference <= 24 { unchanged += n }
            }
        }
        let share = weight == 0 ? 1 : unchanged / weight
        return FidelityReport(
            score: min(share, overlap), unchangedShare: share, shapeOverlap: overlap,
            colourDifference: colourCount == 0 ? 255 : colourSum / colourCount, checked: true)
    }

    /// The result with the photo's own product in place of the generated one: the generated
    /// product (its matte, widened by a few pixels) is painted over with `background`, the photo's
    /// cut-out product — aligned to where the result has its product — is composited on top, and
    /// the generated backdrop and shadow around it stay. RGB at the result's size.
    /// When the result has no product at all, the photo's goes where the photo has it, scaled to the
    /// result's size. Nil when the photo has no solid product to put back.
    public static func restore(_ photo: ProductCutout, into result: ProductCutout, background: (UInt8, UInt8, UInt8)) -> [UInt8]? {
        var output = result.rgb
        let photoMass = Mass(photo)
        guard photoMass.count > 0 else { return nil }
        var resultMass = Mass(result)
        if resultMass.count == 0 {
            let scale = Double(result.width) / Double(photo.width)
            resultMass = Mass(count: photoMass.count * scale * scale, x: photoMass.x * scale, y: photoMass.y * scale)
        }
        let (w, h) = (result.width, result.height)
        // The generated product goes: its matte, widened by 3 px, is filled with the background.
        let grown = widened(result.alpha, width: w, height: h, by: 3)
        let fill = (Double(background.0), Double(background.1), Double(background.2))
        for i in 0..<(w * h) where grown[i] > 0 {
            let t = Double(grown[i]) / 255
            output[3 * i] = UInt8((Double(output[3 * i]) * (1 - t) + fill.0 * t).rounded())
            output[3 * i + 1] = UInt8((Double(output[3 * i + 1]) * (1 - t) + fill.1 * t).rounded())
            output[3 * i + 2] = UInt8((Double(output[3 * i + 2]) * (1 - t) + fill.2 * t).rounded())
        }
        // The photo's product, sampled (bilinear) where the alignment puts it: over the part of the
        // result its box lands on (and a margin).
        let alignment = Alignment(from: resultMass, to: photoMass)
        guard let box = ProductBox.measure(photo.alpha, width: photo.width, height: photo.height) else { return nil }
        let back = Alignment(from: photoMass, to: resultMass)
        let (ax, ay) = back.map(Double(box.x), Double(box.y))
        let (bx, by) = back.map(Double(box.x + box.width), Double(box.y + box.height))
        let (marginX, marginY) = ((bx - ax) / 4 + 2, (by - ay) / 4 + 2)
        let x0 = max(0, Int(ax - marginX)), x1 = min(w, Int((bx + marginX).rounded(.up)))
        let y0 = max(0, Int(ay - marginY)), y1 = min(h, Int((by + marginY).rounded(.up)))
        guard x0 < x1, y0 < y1 else { return output }
        for y in y0..<y1 {
            for x in x0..<x1 {
                let (sx, sy) = alignment.map(Double(x) + 0.5, Double(y) + 0.5)
                guard let p = bilinear(photo.layer, width: photo.width, height: photo.height, x: sx - 0.5, y: sy - 0.5), p.3 > 0 else { continue }
                let a = p.3 / 255
                let i = 3 * (y * w + x)
                output[i] = UInt8(min(255, (p.0 * a + Double(output[i]) * (1 - a)).rounded()))
                output[i + 1] = UInt8(min(255, (p.1 * a + Double(output[i + 1]) * (1 - a)).rounded()))
                output[i + 2] = UInt8(min(255, (p.2 * a + Double(output[i + 2]) * (1 - a)).rounded()))
            }
        }
        return output
    }

    /// A matte's product pixels (alpha ≥ 128): how many, and their centre. Unlike a bounding box
    /// it hardly moves for a speck the segmenter kept far from the product (a logo, a shadow).
    struct Mass {
        /// Product pixels; 0 when there are none.
        var count: Double, x: Double, y: Double
        var area: Double { max(count, 1) }

        init(count: Double, x: Double, y: Double) { (self.count, self.x, self.y) = (count, x, y) }

        init(_ cutout: ProductCutout) {
            var (n, sx, sy) = (0.0, 0.0, 0.0)
            for y in 0..<cutout.height {
                for x in 0..<cutout.width where cutout.alpha[y * cutout.width + x] >= 128 {
                    (n, sx, sy) = (n + 1, sx + Double(x) + 0.5, sy + Double(y) + 0.5)
                }
            }
            (count, x, y) = (n, n > 0 ? sx / n : 0, n > 0 ? sy / n : 0)
        }
    }

    /// One scale (the square root of the products' area ratio: a reshaped product stays reshaped)
    /// and the shift that puts their centres together.
    struct Alignment {
        var scale: Double, fromX: Double, fromY: Double, toX: Double, toY: Double

        init(from: Mass, to: Mass) {
            scale = (to.area / from.area).squareRoot()
            (fromX, fromY, toX, toY) = (from.x, from.y, to.x, to.y)
        }

        func map(_ x: Double, _ y: Double) -> (Double, Double) { (toX + (x - fromX) * scale, toY + (y - fromY) * scale) }
    }

    /// Summed-area tables of RGB and alpha: the mean over any rectangle in constant time. Built on
    /// a copy binned to at most ``maxSide`` pixels a side (a 40 MP photo's full tables would take
    /// over a gigabyte); a rectangle covers at least one bin.
    struct AreaSums {
        static let maxSide = 1536
        let width: Int, height: Int
        /// Photo pixels per bin.
        let bin: Int
        let binnedWidth: Int, binnedHeight: Int
        private var sums: [Double]

        init(_ rgb: [UInt8], alpha: [UInt8], width: Int, height: Int) {
            (self.width, self.height) = (width, height)
            let bin = max(1, (max(width, height) + Self.maxSide - 1) / Self.maxSide)
            let (bw, bh) = ((width + bin - 1) / bin, (height + bin - 1) / bin)
            (self.bin, binnedWidth, binnedHeight) = (bin, bw, bh)
            // Each bin's mean first, then the running sums over bins.
            var binned = [Double](repeating: 0, count: bw * bh * 4)
            var counts = [Double](repeating: 0, count: bw * bh)
            for y in 0..<height {
                let row = (y / bin) * bw
                for x in 0..<width {
                    let (i, b) = (y * width + x, row + x / bin)
                    binned[4 * b] += Double(rgb[3 * i])
                    binned[4 * b + 1] += Double(rgb[3 * i + 1])
                    binned[4 * b + 2] += Double(rgb[3 * i + 2])
                    binned[4 * b + 3] += Double(alpha[i])
                    counts[b] += 1
                }
            }
            let stride = (bw + 1) * 4
            var sums = [Double](repeating: 0, count: (bh + 1) * stride)
            for y in 0..<bh {
                var row = (0.0, 0.0, 0.0, 0.0)
                for x in 0..<bw {
                    let b = y * bw + x
                    let n = max(counts[b], 1)
                    row = (row.0 + binned[4 * b] / n, row.1 + binned[4 * b + 1] / n, row.2 + binned[4 * b + 2] / n, row.3 + binned[4 * b + 3] / n)
                    let at = (y + 1) * stride + (x + 1) * 4, above = y * stride + (x + 1) * 4
                    sums[at] = sums[above] + row.0
                    sums[at + 1] = sums[above + 1] + row.1
                    sums[at + 2] = sums[above + 2] + row.2
                    sums[at + 3] = sums[above + 3] + row.3
                }
            }
            self.sums = sums
        }

        /// The mean over [x0, x1) x [y0, y1) in photo pixels, to whole bins (at least one), clipped
        /// to the image; outside it: black, no product.
        func mean(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) -> (r: Double, g: Double, b: Double, alpha: Double) {
            let scale = 1 / Double(bin)
            guard x0.isFinite, y0.isFinite, x1.isFinite, y1.isFinite else { return (0, 0, 0, 0) }
            var ix0 = Int(max(-1, min(Double(binnedWidth + 1), (x0 * scale).rounded())))
            var iy0 = Int(max(-1, min(Double(binnedHeight + 1), (y0 * scale).rounded())))
            var ix1 = Int(max(-1, min(Double(binnedWidth + 1), (x1 * scale).rounded())))
            var iy1 = Int(max(-1, min(Double(binnedHeight + 1), (y1 * scale).rounded())))
            if ix1 <= ix0 { ix1 = ix0 + 1 }
            if iy1 <= iy0 { iy1 = iy0 + 1 }
            let area = Double((ix1 - ix0) * (iy1 - iy0))
            (ix0, ix1) = (min(binnedWidth, max(0, ix0)), min(binnedWidth, max(0, ix1)))
            (iy0, iy1) = (min(binnedHeight, max(0, iy0)), min(binnedHeight, max(0, iy1)))
            guard ix1 > ix0, iy1 > iy0 else { return (0, 0, 0, 0) }
            let stride = (binnedWidth + 1) * 4
            func total(_ c: Int) -> Double {
                sums[iy1 * stride + ix1 * 4 + c] - sums[iy0 * stride + ix1 * 4 + c] - sums[iy1 * stride + ix0 * 4 + c] + sums[iy0 * stride + ix0 * 4 + c]
            }
            return (total(0) / area, total(1) / area, total(2) / area, total(3) / area)
        }
    }

    /// The matte grown by `radius` pixels (a square max filter, separable).
    static func widened(_ alpha: [UInt8], width: Int, height: Int, by radius: Int) -> [UInt8] {
        var rows = alpha
        for y in 0..<height {
            for x in 0..<width {
                var m: UInt8 = 0
                for dx in max(0, x - radius)...min(width - 1, x + radius) { m = max(m, alpha[y * width + dx]) }
                rows[y * width + x] = m
            }
        }
        var out = rows
        for y in 0..<height {
            for x in 0..<width {
                var m: UInt8 = 0
                for dy in max(0, y - radius)...min(height - 1, y + radius) { m = max(m, rows[dy * width + x]) }
                out[y * width + x] = m
            }
        }
        return out
    }

    /// RGBA at a fractional position, nil outside the image.
    static func bilinear(_ rgba: [UInt8], width: Int, height: Int, x: Double, y: Double) -> (Double, Double, Double, Double)? {
        guard x >= 0, y >= 0, x <= Double(width - 1), y <= Double(height - 1) else { return nil }
        let (x0, y0) = (Int(x), Int(y))
        let (x1, y1) = (min(width - 1, x0 + 1), min(height - 1, y0 + 1))
        let (fx, fy) = (x - Double(x0), y - Double(y0))
        var out = [0.0, 0.0, 0.0, 0.0]
        // Premultiplied, so a transparent neighbour's colour does not bleed in.
        for (px, py, weight) in [(x0, y0, (1 - fx) * (1 - fy)), (x1, y0, fx * (1 - fy)), (x0, y1, (1 - fx) * fy), (x1, y1, fx * fy)] {
            let i = 4 * (py * width + px)
            let a = Double(rgba[i + 3])
            out[0] += Double(rgba[i]) * a * weight
            out[1] += Double(rgba[i + 1]) * a * weight
            out[2] += Double(rgba[i + 2]) * a * weight
            out[3] += a * weight
        }
        guard out[3] > 0 else { return (0, 0, 0, 0) }
        return (out[0] / out[3], out[1] / out[3], out[2] / out[3], out[3])
    }
}
