import CImagingBridge
@testable import Imaging  // bridgeCall: a failing bridge call throws its message
import Testing

/// The thin parts the model sees only faintly (stage 4, `recoverFaintParts`): a headphone band, a
/// strap. The steepened prior drops faint saliency, so without help such a part is background and
/// vanishes from the shot. Where the background is a smooth surface, a faint part coloured like the
/// product, darker than a shadow makes the background and joined to the product is product again; a
/// shadow beside the product and a light mark touching it, equally faint, stay background. On the
/// floor (the lowest tenth of the product's height) only a thin stroke leading away from the
/// product comes back (a cable), not a dark line along its base (a contact shadow).
@Suite("Faint thin parts in the matte", .blockingWork)
struct FaintPartTests {
    static let size = 400, side = 320
    static let background: (UInt8, UInt8, UInt8) = (200, 200, 200)
    static let dark: (UInt8, UInt8, UInt8) = (60, 50, 45)

    typealias Region = (x: Range<Int>, y: Range<Int>)

    static func inside(_ region: Region, _ x: Int, _ y: Int) -> Bool { region.x.contains(x) && region.y.contains(y) }

    /// A drawn photo (`size`², `colour` per pixel), the model's map on its own grid (`model` at the
    /// photo's pixel under each cell), and the matte the refinement makes of them.
    struct Matte {
        let alpha: [UInt8]

        init(colour: (Int, Int) -> (UInt8, UInt8, UInt8), model: (Int, Int) -> Float) throws {
            let n = FaintPartTests.size, s = FaintPartTests.side
            var rgb = [UInt8](repeating: 0, count: n * n * 3), map = [Float](repeating: 0, count: s * s)
            for y in 0..<n {
                for x in 0..<n {
                    let c = colour(x, y)
                    (rgb[(y * n + x) * 3], rgb[(y * n + x) * 3 + 1], rgb[(y * n + x) * 3 + 2]) = (c.0, c.1, c.2)
                }
            }
            for my in 0..<s {
                for mx in 0..<s { map[my * s + mx] = model((mx * n) / s, (my * n) / s) }
            }
            var alpha = [UInt8](repeating: 0, count: n * n)
            try bridgeCall { error, errorSize in
                CImagingBridge_refineMatte(rgb, Int32(n), Int32(n), map, Int32(s), &alpha, error, errorSize)
            }
            self.alpha = alpha
        }

        subscript(x: Int, y: Int) -> UInt8 { alpha[y * FaintPartTests.size + x] }

        func values(_ region: Region) -> [UInt8] {
            region.y.flatMap { y in region.x.map { x in self[x, y] } }
        }
    }

    /// A dark body on a plain grey background with, all joined to it and all faint in the model's
    /// map (0.05): a 6 px dark strap standing up from its top, a shadow to its right (the background
    /// at 0.52 of its brightness, above the floor band: product-coloured by its blend weight, 0.65
    /// towards the body against the bound's 0.6, so only its brightness tells it) and a light bar to
    /// its left (an overlay's stroke:
    /// lighter than the background). On the floor: a 3 px dark cable leading right from the body's
    /// base, a 3 px dark line along its bottom edge and a 10 px tall dark pool leading left (all as
    /// dark and as product-coloured as the strap).
    struct Scene {
        let body: Region = (100..<300, 150..<300)
        let strap: Region = (196..<202, 40..<150)
        let shadow: Region = (300..<360, 150..<250)
        let lightBar: Region = (40..<100, 200..<206)
        let cable: Region = (300..<390, 294..<297)
        let contactLine: Region = (100..<300, 300..<303)
        let pool: Region = (20..<100, 290..<300)

        func refined() throws -> Matte {
            try Matte(
                colour: { x, y in
                    if inside(cable, x, y) || inside(contactLine, x, y) || inside(pool, x, y) { return (70, 70, 70) }
                    if inside(lightBar, x, y) { return (240, 240, 240) }
                    if inside(shadow, x, y) { return (104, 104, 104) }
                    if inside(body, x, y) || inside(strap, x, y) { return FaintPartTests.dark }
                    return FaintPartTests.background
                },
                model: { x, y in
                    if inside(body, x, y) { return 1 }
                    return [strap, shadow, lightBar, cable, contactLine, pool].contains { inside($0, x, y) } ? 0.05 : 0
                })
        }
    }

    @Test func aFaintStrapComesBackAndAShadowOrALightMarkBesideTheProductDoNot() throws {
        let scene = Scene()
        let alpha = try scene.refined()
        #expect(alpha[200, 200] == 255, "the body is opaque")
        #expect(alpha[20, 20] == 0, "the background is transparent")
        // The strap's middle columns, all along it (its outer columns are the edge's blend).
        let strap = alpha.values((scene.strap.x.lowerBound + 1..<scene.strap.x.upperBound - 1, scene.strap.y))
        #expect(strap.filter { $0 >= 128 }.count == strap.count, "the strap is product: \(strap.filter { $0 < 128 }.count) of \(strap.count) pixels are not")
        // Away from the body's edge (the guided filter's window), the shadow and the bar stay background.
        let shadow = alpha.values((scene.shadow.x.lowerBound + 8..<scene.shadow.x.upperBound, scene.shadow.y.lowerBound + 8..<scene.shadow.y.upperBound))
        #expect(shadow.allSatisfy { $0 == 0 }, "the shadow stays background: \(shadow.filter { $0 > 0 }.count) pixels are not")
        let bar = alpha.values((scene.lightBar.x.lowerBound..<scene.lightBar.x.upperBound - 8, scene.lightBar.y))
        #expect(bar.allSatisfy { $0 == 0 }, "the light bar stays background: \(bar.filter { $0 > 0 }.count) pixels are not")
    }

    @Test func onTheFloorACableComesBackAndAContactShadowOrAPoolDoNot() throws {
        let scene = Scene()
        let alpha = try scene.refined()
        let cable = alpha.values((scene.cable.x.lowerBound + 8..<scene.cable.x.upperBound - 4, scene.cable.y.lowerBound + 1..<scene.cable.y.upperBound - 1))
        #expect(cable.allSatisfy { $0 >= 128 }, "the cable is product: \(cable.filter { $0 < 128 }.count) of \(cable.count) pixels are not")
        let line = alpha.values((scene.contactLine.x.lowerBound + 8..<scene.contactLine.x.upperBound - 8, scene.contactLine.y))
        let mean = Double(line.reduce(0) { $0 + Int($1) }) / Double(line.count)
        #expect(mean < 64, "the contact line stays background: mean alpha \(mean)")
        let pool = alpha.values((scene.pool.x.lowerBound..<scene.pool.x.upperBound - 8, scene.pool.y))
        #expect(pool.allSatisfy { $0 == 0 }, "the pool stays background: \(pool.filter { $0 > 0 }.count) pixels are not")
    }

    /// A product on a table in front of a wall: one smooth surface cannot fit the two, so colour
    /// would say nothing; the wall and the table are fitted apart, and a faint strap against the
    /// wall and a cable on the table come back.
    @Test func onATableInFrontOfAWallAStrapAndACableComeBack() throws {
        // The horizon halfway: one quadratic then misses both by ~30 levels (σ 28 on this drawing).
        let horizon = 200
        let body: Region = (100..<300, 180..<330), strap: Region = (196..<202, 60..<180), cable: Region = (300..<390, 324..<327)
        let alpha = try Matte(
            colour: { x, y in
                if [body, strap, cable].contains(where: { Self.inside($0, x, y) }) { return Self.dark }
                return y < horizon ? (225, 220, 210) : (150, 160, 175)
            },
            model: { x, y in Self.inside(body, x, y) ? 1 : Self.inside(strap, x, y) || Self.inside(cable, x, y) ? 0.05 : 0 })
        #expect(alpha[20, 20] == 0 && alpha[20, 380] == 0, "the wall and the table are transparent")
        let strapMiddle = alpha.values((strap.x.lowerBound + 1..<strap.x.upperBound - 1, strap.y))
        #expect(strapMiddle.allSatisfy { $0 >= 128 }, "the strap is product: \(strapMiddle.filter { $0 < 128 }.count) of \(strapMiddle.count) pixels are not")
        let cableMiddle = alpha.values((cable.x.lowerBound + 8..<cable.x.upperBound - 4, cable.y.lowerBound + 1..<cable.y.upperBound - 1))
        #expect(cableMiddle.allSatisfy { $0 >= 128 }, "the cable is product: \(cableMiddle.filter { $0 < 128 }.count) of \(cableMiddle.count) pixels are not")
    }
}
