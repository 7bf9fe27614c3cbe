import Database
import Foundation
import Imaging
import Logging
import PostgresNIO
import Testing
import TestSupport

extension RasterImage {
    /// Whether every pixel at least `margin` away from `box` ([x0, y0, x1, y1)) and above
    /// `above` (rows < above) is exactly `rgb` — the background away from the product and its shadow.
    func isUniform(
        _ rgb: (UInt8, UInt8, UInt8), awayFrom box: [Int], margin: Int, above: Int
    ) -> (ok: Bool, checked: Int, first: String?) {
        let flat = rgbOverWhite()
        var checked = 0
        for y in 0..<min(height, above) {
            for x in 0..<width {
                let near = x > box[0] - margin && x < box[2] + margin && y > box[1] - margin && y < box[3] + margin
                if near { continue }
                let i = (y * width + x) * 3
                checked += 1
                if flat[i] != rgb.0 || flat[i + 1] != rgb.1 || flat[i + 2] != rgb.2 {
                    return (false, checked, "(\(x), \(y)) is \(flat[i]),\(flat[i + 1]),\(flat[i + 2])")
                }
            }
        }
        return (true, checked, nil)
    }
}
