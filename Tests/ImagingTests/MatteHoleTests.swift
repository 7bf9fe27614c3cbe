import CImagingBridge
@testable import Imaging  // bridgeCall: a failing bridge call throws its message
import Testing

/// The matte's small holes and narrow notches (stage 4, `closeSmallHoles`, `closeNarrowDents`):
/// where the model sees product but the product's colour meets the background's (a highlight on a
/// white bottle, text crossing a rim), the refinement can open a speck through the product or cut a
/// notch into its outline, which the new background then shows through. Such a speck or notch is
/// closed; a real opening (a handle), a wide notch, and a small one the model itself sees stay open.
@Suite("Small holes and narrow notches in the matte", .blockingWork)
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
            map = [Float](repeating: 0, count: MatteHoleTests.side * MatteHoleTests.side)
            rgb = MatteHoleTests.paint(size: n, product: 100..<300, cutOut: [speck, opening, seenSpeck])
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

    /// An `n` x `n` photo: a dark square product over `product` (in x and y) on the grey background,
    /// with the `cutOut` regions showing the background.
    static func paint(size n: Int, product: Range<Int>, cutOut: [(x: Range<Int>, y: Range<Int>)]) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: n * n * 3)
        for y in 0..<n {
            for x in 0..<n {
                let inProduct = product.contains(x) && product.contains(y)
                let showsBackground = !inProduct || cutOut.contains { $0.x.contains(x) && $0.y.contains(y) }
                let colour: (UInt8, UInt8, UInt8) = showsBackground ? background : (60, 50, 45)
                rgb[(y * n + x) * 3] = colour.0
                rgb[(y * n + x) * 3 + 1] = colour.1
                rgb[(y * n + x) * 3 + 2] = colour.2
            }
        }
        return rgb
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

    /// A dark square product (the middle half of an `n` x `n` photo) on a plain grey background,
    /// with three background-coloured notches cut into its outline, each 8/400 of the photo deep:
    /// a narrow one (3/400 wide) on the right the model takes for product (unsure, 0.8), a wide one
    /// (40/400) at the top it also takes for product, and a narrow one (2/400) on the left it sees as
    /// background (its map is 0 there).
    struct NotchScene {
        let n: Int
        var rgb: [UInt8]
        var map: [Float]
        let narrow: (x: Range<Int>, y: Range<Int>)
        let wide: (x: Range<Int>, y: Range<Int>)
        let seen: (x: Range<Int>, y: Range<Int>)

        init(size n: Int) {
            self.n = n
            let (low, high) = (n / 4, 3 * n / 4), depth = 8 * n / 400, mid = n / 2
            narrow = (high - depth..<high, mid..<mid + 3 * n / 400)
            wide = (mid - 20 * n / 400..<mid + 20 * n / 400, low..<low + depth)
            seen = (low..<low + depth, mid..<mid + 2 * n / 400)
            rgb = MatteHoleTests.paint(size: n, product: low..<high, cutOut: [narrow, wide, seen])
            let s = MatteHoleTests.side
            map = [Float](repeating: 0, count: s * s)
            let around = 0 // the model sees the notch as background
            for my in 0..<s {
                for mx in 0..<s {
                    let x = (mx * n) / s, y = (my * n) / s
                    var value: Float = (low..<high).contains(x) && (low..<high).contains(y) ? 1 : 0
                    if narrow.x.contains(x) && narrow.y.contains(y) { value = 0.8 }
                    if wide.x.contains(x) && wide.y.contains(y) { value = 0.8 }
                    if x < seen.x.upperBound + around && (seen.y.lowerBound - around..<seen.y.upperBound + around).contains(y) { value = 0 }
                    map[my * s + mx] = value
                }
            }
        }
    }

    /// At 400 px (refined at its own size) and at 2000 px (refined at the working size, 1024, and
    /// the closed cells filled at full size).
    @Test(arguments: [400, 2000]) func aNarrowNotchTheModelTakesForProductIsClosedAndWideOrSeenOnesStay(size n: Int) throws {
        let scene = NotchScene(size: n)
        var alpha = [UInt8](repeating: 0, count: n * n)
        try bridgeCall { error, errorSize in
            CImagingBridge_refineMatte(scene.rgb, Int32(n), Int32(n), scene.map, Int32(Self.side), &alpha, error, errorSize)
        }
        func values(_ region: (x: Range<Int>, y: Range<Int>)) -> [UInt8] {
            region.y.flatMap { y in region.x.map { x in alpha[y * n + x] } }
        }
        #expect(alpha[(n / 4 + 10) * n + n / 4 + 10] == 255 && alpha[(n / 2) * n + n / 2] == 255, "the product is opaque")
        #expect(alpha[10 * n + 10] == 0, "the background is transparent")
        // Its inner half: a closing rounds a notch's mouth, which keeps a nick as deep as its radius.
        let depth = scene.narrow.x.count
        let narrow = values((scene.narrow.x.lowerBound..<scene.narrow.x.lowerBound + depth / 2, scene.narrow.y))
        #expect(narrow.allSatisfy { $0 == 255 }, "the narrow notch is closed: \(Set(narrow).sorted())")
        let wide = values((scene.wide.x.lowerBound + 4..<scene.wide.x.upperBound - 4, scene.wide.y))
        #expect(wide.filter { $0 < 128 }.count > wide.count / 2, "the wide notch stays open")
        let seen = values(scene.seen)
        #expect(seen.filter { $0 < 128 }.count > seen.count / 2, "the notch the model sees stays open: \(Set(seen).sorted())")
    }
}
