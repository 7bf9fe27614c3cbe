import CImagingBridge
@testable import Imaging  // bridgeCall: a failing bridge call throws its message
import Testing

/// The matte's small holes (stage 4, `closeSmallHoles`): where the model sees product but the
/// product's colour meets the background's (a highlight on a white bottle), the refinement can open a
/// speck through the product, which the new background then shows through. Such a speck is closed;
/// a real opening (a handle) and a small one the model itself sees stay open.
@Suite("Small holes in the matte", .blockingWork)
struct MatteHoleTests {
    static let size = 400, side = 320
    static let background: (UInt8, UInt8, UInt8) = (200, 200, 200)

    /// A dark square product on a plain grey background, with three background-coloured regions
    /// inside it: a 6x6 speck the model takes for product (but is not sure of), a 72x72 opening
    /// (the model sees it), and a 6x6 speck the model sees as background.
    struct Scene {
        var rgb: [UInt8]
        var map: [Float]
        let speck = (x: 130..<136, y: 130..<136)
        let opening = (x: 164..<236, y: 164..<236)
        let seenSpeck = (x: 260..<266, y: 260..<266)

        init() {
            let n = MatteHoleTests.size
            rgb = [UInt8](repeating: 0, count: n * n * 3)
            map = [Float](repeating: 0, count: MatteHoleTests.side * MatteHoleTests.side)
            let regions = [speck, opening, seenSpeck]
            for y in 0..<n {
                for x in 0..<n {
                    let inProduct = (100..<300).contains(x) && (100..<300).contains(y)
                    let showsBackground = !inProduct || regions.contains { $0.x.contains(x) && $0.y.contains(y) }
                    let colour: (UInt8, UInt8, UInt8) = showsBackground ? MatteHoleTests.background : (60, 50, 45)
                    rgb[(y * n + x) * 3] = colour.0
                    rgb[(y * n + x) * 3 + 1] = colour.1
                    rgb[(y * n + x) * 3 + 2] = colour.2
                }
            }
            // The model's map on its own grid: product over the square, unsure (0.8) over the
            // speck, background over the opening and the seen speck.
            let s = MatteHoleTests.side
            for my in 0..<s {
                for mx in 0..<s {
                    let x = (mx * n) / s, y = (my * n) / s
                    var value: Float = (100..<300).contains(x) && (100..<300).contains(y) ? 1 : 0
                    if speck.x.contains(x) && speck.y.contains(y) { value = 0.8 }
                    if opening.x.contains(x) && opening.y.contains(y) { value = 0 }
                    if seenSpeck.x.contains(x) && seenSpeck.y.contains(y) { value = 0.1 }
                    map[my * s + mx] = value
                }
            }
        }
    }

    static func refine(_ scene: Scene) throws -> [UInt8] {
        var alpha = [UInt8](repeating: 0, count: size * size)
        try bridgeCall { error, errorSize in
            CImagingBridge_refineMatte(scene.rgb, Int32(size), Int32(size), scene.map, Int32(side), &alpha, error, errorSize)
        }
        return alpha
    }

    @Test func aSpeckTheModelTakesForProductIsClosedAndRealOpeningsStay() throws {
        let scene = Scene()
        let alpha = try Self.refine(scene)
        func at(_ x: Int, _ y: Int) -> UInt8 { alpha[y * Self.size + x] }
        func centre(_ region: (x: Range<Int>, y: Range<Int>)) -> (Int, Int) {
            ((region.x.lowerBound + region.x.upperBound) / 2, (region.y.lowerBound + region.y.upperBound) / 2)
        }
        // The product and the background around it, as the model and the colours say.
        #expect(at(110, 110) == 255 && at(290, 200) == 255, "the product is opaque")
        #expect(at(20, 20) == 0 && at(380, 380) == 0, "the background is transparent")
        // Closed: every pixel of the speck, not just its centre.
        let speckAlpha = scene.speck.y.flatMap { y in scene.speck.x.map { x in at(x, y) } }
        #expect(speckAlpha.allSatisfy { $0 == 255 }, "the speck is closed: \(Set(speckAlpha).sorted())")
        // Open: the handle-sized opening and the speck the model sees.
        let (ox, oy) = centre(scene.opening), (sx, sy) = centre(scene.seenSpeck)
        #expect(at(ox, oy) == 0, "the opening stays open")
        #expect(at(sx, sy) == 0, "the speck the model sees stays open")
    }
}
