/// A catalog frame for the studio shot (docs/framing.md): the canvas's aspect, the share of it the
/// product takes, where the product sits, and bounds on the output's long side.
public struct StudioFrame: Sendable, Equatable {
    /// Width over height; nil keeps the photo's aspect.
    public var aspect: Double?
    /// The product's box fits inside this share of the canvas on both axes (0.5–0.95).
    public var fill: Double
    /// Stand the product near the bottom edge instead of centring it.
    public var alignBottom: Bool
    public var minSide: Int?
    public var maxSide: Int?

    public init(aspect: Double?, fill: Double, alignBottom: Bool = false, minSide: Int? = nil, maxSide: Int? = nil) {
        self.aspect = aspect
        self.fill = fill
        self.alignBottom = alignBottom
        self.minSide = minSide
        self.maxSide = maxSide
    }
}

/// Where the product is in the photo, from its matte.
public struct ProductBox: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    /// The product runs off the photo on these sides (it was cut when the photo was taken).
    public var cutLeft = false, cutRight = false, cutTop = false, cutBottom = false

    public init(x: Int, y: Int, width: Int, height: Int) {
        (self.x, self.y, self.width, self.height) = (x, y, width, height)
    }

    /// The box of the matte's pixels at or above `threshold` (nil when there are none). A side is
    /// cut when at least `cutRun` of the matte's opaque pixels (≥ 128) lie on that edge of the photo.
    public static func measure(_ alpha: [UInt8], width: Int, height: Int, threshold: UInt8 = 64, cutRun: Int = 3) -> ProductBox? {
        precondition(alpha.count == width * height)
        var (x0, y0, x1, y1) = (width, height, -1, -1)
        alpha.withUnsafeBufferPointer { matte in
            for y in 0..<height {
                let row = y * width
                var first = -1, last = -1
                for x in 0..<width where matte[row + x] >= threshold {
                    if first < 0 { first = x }
                    last = x
                }
                guard first >= 0 else { continue }
                if y0 == height { y0 = y }
                y1 = y
                x0 = min(x0, first)
                x1 = max(x1, last)
            }
        }
        guard x1 >= 0 else { return nil }
        var box = ProductBox(x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1)
        func opaque(_ indices: StrideTo<Int>) -> Int { indices.reduce(0) { $0 + (alpha[$1] >= 128 ? 1 : 0) } }
        box.cutLeft = opaque(stride(from: 0, to: width * height, by: width)) >= cutRun
        box.cutRight = opaque(stride(from: width - 1, to: width * height, by: width)) >= cutRun
        box.cutTop = opaque(stride(from: 0, to: width, by: 1)) >= cutRun
        box.cutBottom = opaque(stride(from: (height - 1) * width, to: width * height, by: 1)) >= cutRun
        return box
    }
}

/// Where the product goes on the canvas, in the photo's pixels (the output is this times `scale`).
public struct FrameLayout: Sendable, Equatable {
    /// The canvas in the photo's pixels.
    public var canvasWidth: Double, canvasHeight: Double
    /// The product box's top-left corner on the canvas, in the photo's pixels.
    public var productX: Double, productY: Double
    /// Output pixels per photo pixel.
    public var scale: Double
    /// The output's size.
    public var outputWidth: Int, outputHeight: Int

    /// Lays out `box` on a canvas of `frame`'s aspect. `slack` (≤ 1) shrinks the share the product
    /// takes, to make room for a shadow that would be cut.
    ///
    /// A product cut by the photo's edge stays against that edge of the canvas (centred, it would
    /// look like a whole product with a part sliced off); cut on both sides of an axis, it spans
    /// that axis when the aspect allows.
    public static func compute(
        box: ProductBox, photo: (width: Int, height: Int), frame: StudioFrame, upscale: Int, maxOutputPixels: Int, slack: Double = 1
    ) -> FrameLayout {
        let ratio = frame.aspect ?? Double(photo.width) / Double(photo.height)
        let (w, h) = (Double(box.width), Double(box.height))
        let fill = frame.fill * slack
        let fillX = box.cutLeft && box.cutRight ? 1 : fill
        let fillY = box.cutTop && box.cutBottom ? 1 : fill
        let canvasHeight = max(h / fillY, w / (fillX * ratio))
        let canvasWidth = canvasHeight * ratio
        let x: Double = switch (box.cutLeft, box.cutRight) {
        case (true, false): 0
        case (false, true): canvasWidth - w
        default: (canvasWidth - w) / 2
        }
        let y: Double = switch (box.cutTop, box.cutBottom) {
        case (true, false): 0
        case (false, true): canvasHeight - h
        case (true, true): (canvasHeight - h) / 2
        case (false, false): frame.alignBottom ? canvasHeight - h - (1 - frame.fill) * canvasHeight / 4 : (canvasHeight - h) / 2
        }
        // The long side: the product at its own resolution (times the upscale asked for), within
        // the frame's bounds (the maximum wins over a larger minimum) and the output cap.
        let canvasLong = max(canvasWidth, canvasHeight)
        var long = canvasLong * Double(upscale)
        if let minSide = frame.minSide { long = max(long, Double(minSide)) }
        if let maxSide = frame.maxSide { long = min(long, Double(maxSide)) }
        let short = long * min(canvasWidth, canvasHeight) / canvasLong
        if long * short > Double(maxOutputPixels) { long *= (Double(maxOutputPixels) / (long * short)).squareRoot() }
        let longSide = max(1, Int(long.rounded(.down)))
        var shortSide = max(1, Int((Double(longSide) * min(canvasWidth, canvasHeight) / canvasLong).rounded()))
        // The output cap holds exactly, whatever the rounding.
        while longSide * shortSide > maxOutputPixels && shortSide > 1 { shortSide -= 1 }
        let (outputWidth, outputHeight) = canvasWidth >= canvasHeight ? (longSide, shortSide) : (shortSide, longSide)
        return FrameLayout(
            canvasWidth: canvasWidth, canvasHeight: canvasHeight, productX: x, productY: y,
            scale: Double(longSide) / canvasLong, outputWidth: outputWidth, outputHeight: outputHeight)
    }
}

/// Frames a cut-out product: the product layer (RGBA at the photo's size, colours already cleaned
/// at the edge) is scaled and placed on a new canvas, the shadow rendered there, and the result
/// composited on the background (or left transparent).
enum StudioFraming {
    /// The largest canvas side the shadow-fit check renders at (shadows are smooth).
    static let fitSide = 640
    /// Darkening (of 255) from which a shadow counts as visible at the canvas edge.
    static let visibleDarkening: UInt8 = 3

    static func frame(
        layer: [UInt8], alpha: [UInt8], rgb: [UInt8], width: Int, height: Int, frame: StudioFrame, shadow: ShadowPreset,
        background: StudioBackground, transparent: Bool, upscale: Int, maxOutputPixels: Int
    ) throws(ImagingError) -> (pixels: [UInt8], width: Int, height: Int) {
        // No product found (or a speck under 8 px, which no frame should blow up): the whole photo
        // is framed as the product, opaque, without a shadow of its rectangle.
        var (layer, alpha, shadow) = (layer, alpha, shadow)
        let found = ProductBox.measure(alpha, width: width, height: height).flatMap { max($0.width, $0.height) >= 8 ? $0 : nil }
        let box = found ?? ProductBox(x: 0, y: 0, width: width, height: height)
        if found == nil {
            for i in 0..<(width * height) {
                (layer[4 * i], layer[4 * i + 1], layer[4 * i + 2], layer[4 * i + 3]) = (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255)
            }
            alpha = [UInt8](repeating: 255, count: width * height)
            shadow = .none
        }
        var layout = FrameLayout.compute(box: box, photo: (width, height), frame: frame, upscale: upscale, maxOutputPixels: maxOutputPixels)
        if shadow != .none {
            // Make room for a shadow the canvas would cut: shrink the product's share a little at a time.
            var slack = 1.0
            for _ in 0..<8 {
                guard try shadowIsCut(alpha: alpha, width: width, box: box, layout: layout, preset: shadow) else { break }
                slack *= 0.94
                layout = FrameLayout.compute(
                    box: box, photo: (width, height), frame: frame, upscale: upscale, maxOutputPixels: maxOutputPixels, slack: slack)
            }
        }
        let (outW, outH) = (layout.outputWidth, layout.outputHeight)
        let placed = try place(layer, width: width, height: height, box: box, layout: layout)
        var canvasAlpha = [UInt8](repeating: 0, count: outW * outH)
        for i in 0..<(outW * outH) { canvasAlpha[i] = placed[4 * i + 3] }
        let darkening: [UInt8]? = shadow == .none ? nil : try shadow.darkening(under: canvasAlpha, width: outW, height: outH)
        return (composite(placed, shadow: darkening, count: outW * outH, background: background, transparent: transparent), outW, outH)
    }

    /// Whether the shadow of the product laid out by `layout` reaches a canvas edge the product is
    /// not cut at, rendered at a small size.
    static func shadowIsCut(alpha: [UInt8], width: Int, box: ProductBox, layout: FrameLayout, preset: ShadowPreset) throws(ImagingError) -> Bool {
        let factor = min(1, Double(fitSide) / max(layout.canvasWidth, layout.canvasHeight))
        let (cw, ch) = (max(8, Int((layout.canvasWidth * factor).rounded())), max(8, Int((layout.canvasHeight * factor).rounded())))
        var small = [UInt8](repeating: 0, count: cw * ch)
        // Nearest sampling of the matte's box into its place on the small canvas.
        let (left, top) = (layout.productX * factor, layout.productY * factor)
        let x0 = max(0, Int(left.rounded(.down))), x1 = min(cw, Int((left + Double(box.width) * factor).rounded(.up)))
        let y0 = max(0, Int(top.rounded(.down))), y1 = min(ch, Int((top + Double(box.height) * factor).rounded(.up)))
        if x0 < x1, y0 < y1 {
            for y in y0..<y1 {
                let sy = min(box.y + box.height - 1, max(box.y, box.y + Int((Double(y) + 0.5 - top) / factor)))
                for x in x0..<x1 {
                    let sx = min(box.x + box.width - 1, max(box.x, box.x + Int((Double(x) + 0.5 - left) / factor)))
                    small[y * cw + x] = alpha[sy * width + sx]
                }
            }
        }
        let darkening = try preset.darkening(under: small, width: cw, height: ch)
        func reaches(_ indices: StrideTo<Int>) -> Bool { indices.contains { darkening[$0] >= visibleDarkening } }
        return (!box.cutLeft && reaches(stride(from: 0, to: cw * ch, by: cw)))
            || (!box.cutRight && reaches(stride(from: cw - 1, to: cw * ch, by: cw)))
            || (!box.cutTop && reaches(stride(from: 0, to: cw, by: 1)))
            || (!box.cutBottom && reaches(stride(from: (ch - 1) * cw, to: cw * ch, by: 1)))
    }

    /// The product layer's box (plus a little context for the resampling) scaled into its place on
    /// an RGBA canvas; enlargements go through the engine's upscaler first.
    static func place(_ layer: [UInt8], width: Int, height: Int, box: ProductBox, layout: FrameLayout) throws(ImagingError) -> [UInt8] {
        let pad = 2
        let cx0 = max(0, box.x - pad), cy0 = max(0, box.y - pad)
        let cx1 = min(width, box.x + box.width + pad), cy1 = min(height, box.y + box.height + pad)
        let (cropW, cropH) = (cx1 - cx0, cy1 - cy0)
        var crop = [UInt8](repeating: 0, count: cropW * cropH * 4)
        for y in 0..<cropH {
            let source = ((cy0 + y) * width + cx0) * 4
            crop[(y * cropW * 4)..<((y + 1) * cropW * 4)] = layer[source..<(source + cropW * 4)]
        }
        let s = layout.scale
        let targetW = max(1, Int((Double(cropW) * s).rounded())), targetH = max(1, Int((Double(cropH) * s).rounded()))
        var (pixels, pw, ph) = (crop, cropW, cropH)
        if s > 1.05 {
            let factor = s > 2 ? 4 : 2
            if cropW * factor * cropH * factor <= 64_000_000 {
                pixels = try ImageCodec.upscale(pixels, width: pw, height: ph, bands: 4, factor: factor)
                (pw, ph) = (pw * factor, ph * factor)
            }
        }
        if (pw, ph) != (targetW, targetH) {
            pixels = try ImageCodec.resize(pixels, width: pw, height: ph, bands: 4, toWidth: targetW, height: targetH)
        }
        let (outW, outH) = (layout.outputWidth, layout.outputHeight)
        var canvas = [UInt8](repeating: 0, count: outW * outH * 4)
        // The crop's top-left corner on the output canvas.
        let left = Int(((layout.productX - Double(box.x - cx0)) * s).rounded())
        let top = Int(((layout.productY - Double(box.y - cy0)) * s).rounded())
        let xStart = max(0, left), xEnd = min(outW, left + targetW)
        let yStart = max(0, top), yEnd = min(outH, top + targetH)
        guard xStart < xEnd, yStart < yEnd else { return canvas }
        for y in yStart..<yEnd {
            let source = ((y - top) * targetW + (xStart - left)) * 4
            let destination = (y * outW + xStart) * 4
            canvas[destination..<(destination + (xEnd - xStart) * 4)] = pixels[source..<(source + (xEnd - xStart) * 4)]
        }
        return canvas
    }

    /// The placed product over its shadow on the background, as the pipeline's composite does it:
    /// transparent, the shadow becomes black at its opacity under the product.
    static func composite(_ placed: [UInt8], shadow: [UInt8]?, count: Int, background: StudioBackground, transparent: Bool) -> [UInt8] {
        var colour: (Float, Float, Float) = (255, 255, 255)
        if case .color(let r, let g, let b) = background { colour = (Float(r), Float(g), Float(b)) }
        let bands = transparent ? 4 : 3
        var output = [UInt8](repeating: 0, count: count * bands)
        placed.withUnsafeBufferPointer { layer in
            output.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    let a = Float(layer[4 * i + 3]) / 255
                    let dark = shadow.map { Float($0[i]) / 255 } ?? 0
                    let f = (Float(layer[4 * i]), Float(layer[4 * i + 1]), Float(layer[4 * i + 2]))
                    if transparent {
                        let coverage = a + dark * (1 - a)
                        let k = coverage > 0 ? a / coverage : 0
                        out[4 * i] = clamped(f.0 * k)
                        out[4 * i + 1] = clamped(f.1 * k)
                        out[4 * i + 2] = clamped(f.2 * k)
                        out[4 * i + 3] = clamped(coverage * 255)
                    } else {
                        let keep = 1 - dark
                        out[3 * i] = clamped(f.0 * a + colour.0 * keep * (1 - a))
                        out[3 * i + 1] = clamped(f.1 * a + colour.1 * keep * (1 - a))
                        out[3 * i + 2] = clamped(f.2 * a + colour.2 * keep * (1 - a))
                    }
                }
            }
        }
        return output
    }

    private static func clamped(_ value: Float) -> UInt8 { UInt8(max(0, min(255, value.rounded()))) }
}
