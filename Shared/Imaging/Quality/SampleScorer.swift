import Foundation

/// Run A metrics (transparent background, no shadow), as the samples README defines them.
public struct TransparentRunScore: Sendable {
    public var iou: Double
    public var alphaMAE: Double
    public var boundaryF: Double
    public var productPSNR: Double?
    public var watermarkResidual: Double?
}

/// Run B metrics (white background, soft shadow).
public struct WhiteRunScore: Sendable {
    public var purity: Double
    public var productPSNR: Double?
    public var shadowPresence: Double
    /// PSNR in the band around the true outline (``SampleScorer/edgeBand``): a halo of the old
    /// background's colour, a hard cut or a lost rim shows here first. Not in the samples README.
    public var edgePSNR: Double?
}

/// The untouched input scored like a result: the bar "never worse than the photo" is measured
/// against these. Product PSNR is the same region for runs A and B.
public struct InputScore: Sendable {
    public var productPSNR: Double?
    public var watermarkPSNR: Double?

    /// Where the engine's output is further from the truth than this untouched photo: `A` and `B`
    /// (the product region of the transparent and the white run), `WM` (the watermarked product,
    /// run A). Empty when it is nowhere worse: what a shop owner comparing the two would ask.
    public func worse(a: TransparentRunScore, b: WhiteRunScore) -> [String] {
        var worse: [String] = []
        if let input = productPSNR {
            if let value = a.productPSNR, value < input { worse.append("A") }
            if let value = b.productPSNR, value < input { worse.append("B") }
        }
        if let input = watermarkPSNR, let value = a.watermarkResidual, value < input { worse.append("WM") }
        return worse
    }
}

/// Scores engine results against a ``SampleScene``'s ground truth.
public struct SampleScorer: Sendable {
    public let scene: SampleScene
    /// The product region R of the samples README: `alpha >= 250`, eroded by a 7x7 ellipse.
    public let productRegion: [Bool]
    private let distanceToProduct: [Float]
    /// The band around the true outline where run B's edge is judged, with the colour expected
    /// there: pixels within 3 px of the boundary of `alpha >= 128` that are either opaque product
    /// (`alpha >= 250`: clean.png's colour) or background (`alpha == 0`: white), in the rows above
    /// the floor band (`y < baseline_y - 0.05 H`, where the shadow may fall, as for purity).
    /// Partial-alpha pixels are left out: their true product colour is not known.
    public let edgeBand: [Bool]

    public init(scene: SampleScene) throws(ImagingError) {
        self.scene = scene
        let solid = scene.alpha.map { $0 >= 250 ? UInt8(255) : 0 }
        let eroded = try Morphology.erode(
            solid, width: scene.width, height: scene.height, ellipse: true, size: 7, outsideIsForeground: false)
        productRegion = eroded.map { $0 != 0 }
        distanceToProduct = try Morphology.distance(
            to: scene.alpha.map { $0 >= 1 }, width: scene.width, height: scene.height)
        let (w, h) = (scene.width, scene.height)
        let outline = try Self.boundary(of: scene.alpha.map { $0 >= 128 }, width: w, height: h)
        let toOutline = try Morphology.distance(to: outline, width: w, height: h)
        let limit = Double(scene.baselineY) - 0.05 * Double(h)
        edgeBand = (0..<scene.alpha.count).map { i in
            let a = scene.alpha[i]
            return toOutline[i] <= 3 && Double(i / w) < limit && (a == 0 || a >= 250)
        }
    }

    /// The untouched input photo scored as a result (its RGB as run A and run B would read it).
    public func inputScore() throws(ImagingError) -> InputScore {
        inputScore(try RasterImage(decoding: scene.input).rgbAsStored())
    }

    /// ``inputScore()`` of the photo already decoded (`rgb`, as stored).
    public func inputScore(_ rgb: [UInt8]) -> InputScore {
        InputScore(productPSNR: psnr(rgb, over: productRegion), watermarkPSNR: psnr(rgb, over: watermarkOnProduct))
    }

    public func transparentRun(_ result: RasterImage) throws(ImagingError) -> TransparentRunScore {
        let p = result.alpha ?? [UInt8](repeating: 255, count: result.width * result.height)
        let rgb = result.rgbAsStored()
        var intersection = 0, union = 0
        var absolute = 0.0
        for i in 0..<p.count {
            let predicted = p[i] >= 128, truth = scene.alpha[i] >= 128
            if predicted && truth { intersection += 1 }
            if predicted || truth { union += 1 }
            absolute += abs(Double(p[i]) - Double(scene.alpha[i])) / 255
        }
        let wmRegion = (0..<p.count).map { scene.watermark[$0] >= 13 && scene.alpha[$0] >= 250 }
        return TransparentRunScore(
            iou: union == 0 ? 1 : Double(intersection) / Double(union),
            alphaMAE: absolute / Double(p.count),
            boundaryF: try boundaryF(predicted: p.map { $0 >= 128 }, truth: scene.alpha.map { $0 >= 128 }),
            productPSNR: psnr(rgb, over: productRegion),
            watermarkResidual: psnr(rgb, over: wmRegion))
    }

    public func whiteRun(_ result: RasterImage) -> WhiteRunScore {
        let rgb = result.rgbOverWhite()
        let (w, h) = (scene.width, scene.height)
        let limit = Double(scene.baselineY) - 0.05 * Double(h)
        var pure = 0, region = 0
        for y in 0..<h where Double(y) < limit {
            for x in 0..<w where distanceToProduct[y * w + x] > 12 {
                region += 1
                let i = (y * w + x) * 3
                if max(255 - Int(rgb[i]), 255 - Int(rgb[i + 1]), 255 - Int(rgb[i + 2])) <= 3 { pure += 1 }
            }
        }
        var luminance = 0.0, count = 0
        let rows = max(0, scene.baselineY - 10)...min(h - 1, scene.baselineY + 31)
        for y in rows {
            for x in scene.productBox[0]..<scene.productBox[2] where distanceToProduct[y * w + x] > 3 {
                let i = (y * w + x) * 3
                luminance += 0.299 * Double(rgb[i]) + 0.587 * Double(rgb[i + 1]) + 0.114 * Double(rgb[i + 2])
                count += 1
            }
        }
        return WhiteRunScore(
            purity: region == 0 ? 1 : Double(pure) / Double(region),
            productPSNR: psnr(rgb, over: productRegion),
            shadowPresence: count == 0 ? 0 : 255 - luminance / Double(count),
            edgePSNR: edgePSNR(rgb))
    }

    /// PSNR over ``edgeBand`` of an RGB picture on white against the studio shot the scene implies
    /// (clean.png on the product, white off it).
    public func edgePSNR(_ rgbOnWhite: [UInt8]) -> Double? {
        var squared = 0.0, pixels = 0
        for i in 0..<edgeBand.count where edgeBand[i] {
            pixels += 1
            for c in 0..<3 {
                let expected = scene.alpha[i] == 0 ? 255 : Double(scene.clean[i * 3 + c])
                let d = Double(rgbOnWhite[i * 3 + c]) - expected
                squared += d * d
            }
        }
        return Self.psnr(squared: squared, pixels: pixels)
    }

    /// PSNR of `rgb` against clean.png over a region; nil below 50 pixels; capped at 100 dB.
    public func psnr(_ rgb: [UInt8], over region: [Bool]) -> Double? {
        var squared = 0.0, pixels = 0
        for i in 0..<region.count where region[i] {
            pixels += 1
            for c in 0..<3 {
                let d = Double(rgb[i * 3 + c]) - Double(scene.clean[i * 3 + c])
                squared += d * d
            }
        }
        return Self.psnr(squared: squared, pixels: pixels)
    }

    /// The README's boundary of a binary mask: its pixels removed by a 3x3 square erosion, with the
    /// image border replicated (the frame's edge is not a boundary).
    private static func boundary(of mask: [Bool], width: Int, height: Int) throws(ImagingError) -> [Bool] {
        let eroded = try Morphology.erode(
            mask.map { $0 ? 255 : 0 }, width: width, height: height, ellipse: false, size: 3, outsideIsForeground: true)
        return (0..<mask.count).map { mask[$0] && eroded[$0] == 0 }
    }

    /// The README's PSNR from a sum of squared differences over `pixels` RGB pixels.
    private static func psnr(squared: Double, pixels: Int) -> Double? {
        guard pixels >= 50 else { return nil }
        let mse = squared / Double(pixels * 3)
        return mse == 0 ? 100 : min(100, 10 * log10(255 * 255 / mse))
    }

    /// The pixels where a watermark crosses the opaque product (the watermark-residual region).
    public var watermarkOnProduct: [Bool] {
        (0..<scene.alpha.count).map { scene.watermark[$0] >= 13 && scene.alpha[$0] >= 250 }
    }

    private func boundaryF(predicted: [Bool], truth: [Bool]) throws(ImagingError) -> Double {
        let (w, h) = (scene.width, scene.height)
        let bp = try Self.boundary(of: predicted, width: w, height: h), bt = try Self.boundary(of: truth, width: w, height: h)
        let countP = bp.filter { $0 }.count, countT = bt.filter { $0 }.count
        if countP == 0 && countT == 0 { return 1 }
        if countP == 0 || countT == 0 { return 0 }
        let toTruth = try Morphology.distance(to: bt, width: w, height: h)
        let toPredicted = try Morphology.distance(to: bp, width: w, height: h)
        let precision = Double((0..<bp.count).filter { bp[$0] && toTruth[$0] <= 2 }.count) / Double(countP)
        let recall = Double((0..<bt.count).filter { bt[$0] && toPredicted[$0] <= 2 }.count) / Double(countT)
        return precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
    }
}
