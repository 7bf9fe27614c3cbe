import Foundation

/// Stand-ins for a generative backend's result of a sample scene, to calibrate and test the
/// fidelity guard (docs/fidelity.md): the scene's true product (clean.png under alpha.png) on white
/// with a soft contact shadow, as FLUX.1 Kontext returns a studio shot — placed a little
/// differently, and either faithful or changed.
public enum SyntheticResult: String, CaseIterable, Sendable {
    /// Slightly smaller and shifted, JPEG-compressed: what a faithful regeneration looks like.
    case faithful
    /// Much smaller and moved: position and size are not fidelity.
    case moved
    /// A band across the middle fifth of the product redrawn (stripes where its label or body was).
    case labelRedrawn
    /// The product's colours half-way to a strong blue (a black shoe turns navy, a white box pale blue).
    case recoloured
    /// Stretched to 1.3 times its width.
    case reshaped

    /// Whether the guard should keep it.
    public var isFaithful: Bool { self == .faithful || self == .moved }

    /// The result as an encoded image of the scene's size.
    public func render(_ scene: SampleScene) throws(ImagingError) -> [UInt8] {
        let (w, h) = (scene.width, scene.height)
        let box = scene.productBox
        let (cx, cy) = (Double(box[0] + box[2]) / 2, Double(box[1] + box[3]) / 2)
        let (bw, bh) = (Double(box[2] - box[0]), Double(box[3] - box[1]))
        let (scaleX, scaleY, shiftX, shiftY): (Double, Double, Double, Double) = switch self {
        case .faithful, .labelRedrawn, .recoloured: (0.95, 0.95, 12, 8)
        case .moved: (0.8, 0.8, 0.06 * Double(w), -0.04 * Double(h))
        case .reshaped: (1.3 * 0.95, 0.95, 12, 8)
        }
        var out = [UInt8](repeating: 255, count: w * h * 3)
        // A soft contact shadow under the placed product.
        let (footX, footY) = (cx + shiftX, cy + shiftY + bh * scaleY / 2)
        let (rx, ry) = (0.5 * bw * scaleX, max(4, 0.05 * bh * scaleY))
        for y in 0..<h {
            for x in 0..<w {
                let d = pow((Double(x) - footX) / rx, 2) + pow((Double(y) - footY) / ry, 2)
                guard d < 1 else { continue }
                let shade = UInt8(255 - 70 * (1 - d))
                for c in 0..<3 { out[3 * (y * w + x) + c] = shade }
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                // Where this output pixel comes from in the scene.
                let sx = cx + (Double(x) + 0.5 - cx - shiftX) / scaleX - 0.5
                let sy = cy + (Double(y) + 0.5 - cy - shiftY) / scaleY - 0.5
                guard sx >= 0, sy >= 0, sx < Double(w - 1), sy < Double(h - 1) else { continue }
                let (x0, y0) = (Int(sx), Int(sy))
                let (fx, fy) = (sx - Double(x0), sy - Double(y0))
                var rgb = [0.0, 0.0, 0.0], alpha = 0.0
                for (px, py, weight) in [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)), (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)] {
                    let i = py * w + px
                    let a = Double(scene.alpha[i]) / 255 * weight
                    alpha += a
                    for c in 0..<3 { rgb[c] += Double(scene.clean[3 * i + c]) * a }
                }
                guard alpha > 0.004 else { continue }
                rgb = rgb.map { $0 / alpha }
                switch self {
                case .labelRedrawn where abs(sy - cy) < 0.1 * bh:
                    rgb = (x / 6) % 2 == 0 ? [35, 35, 40] : [235, 205, 70]
                case .recoloured:
                    rgb = [0.5 * rgb[0] + 20, 0.5 * rgb[1] + 45, 0.5 * rgb[2] + 110]
                default: break
                }
                let o = 3 * (y * w + x)
                for c in 0..<3 { out[o + c] = UInt8(max(0, min(255, (rgb[c] * alpha + Double(out[o + c]) * (1 - alpha)).rounded()))) }
            }
        }
        return try ImageCodec.encode(out, width: w, height: h, bands: 3, format: self == .faithful ? .jpeg : .png)
    }
}
