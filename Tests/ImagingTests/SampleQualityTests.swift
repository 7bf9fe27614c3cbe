import Foundation
import Synchronization
import Imaging
import Testing

/// The engine's quality on the 36 sample scenes (../shared/samples/dev and dev2), scored with the
/// samples README's metrics. Each scene is rendered and scored once (run A: transparent, no
/// shadow; run B: white, soft shadow) and the tests below read the scores.
///
/// Two kinds of bar: hard ones that hold today and guard against regressions, and issue 15's
/// targets that are not met yet, held as known issues (docs/engine.md, "Quality"): such a test
/// fails when a target starts to hold, so the bar is then made hard.
@Suite("Studio shots of the sample scenes", .blockingWork)
struct SampleQualityTests {
    /// One scene rendered both ways and scored.
    struct Scored: Sendable {
        var scene: SampleScene
        var transparent: RasterImage
        var transparentResult: StudioShotResult
        var white: RasterImage
        var whiteResult: StudioShotResult
        var a: TransparentRunScore
        var b: WhiteRunScore
        var input: InputScore
        var scorer: SampleScorer
        /// The photo as decoded (RGB, as stored).
        var inputRGB: [UInt8]
    }

    /// Every scene rendered and scored once, one after another on the imaging tests' own thread
    /// (``BlockingWork``; the scoring is plain Swift, slow in a debug build), shared by the tests below.
    static let scored: Task<[Scored], Never> = Task(executorPreference: BlockingWorkExecutor.shared) {
        Fixtures.scenes.map(score)
    }

    /// Blocking: called on the rendering thread above.
    static func score(_ scene: SampleScene) -> Scored {
        do {
            let scorer = try SampleScorer(scene: scene)
            let a = try Fixtures.pipeline.render(StudioShotRequest(image: scene.input, background: .transparent, shadow: .none))
            let b = try Fixtures.pipeline.render(StudioShotRequest(image: scene.input, background: .white, shadow: .soft))
            let (imageA, imageB) = (try RasterImage(decoding: a.encoded), try RasterImage(decoding: b.encoded))
            let inputRGB = try RasterImage(decoding: scene.input).rgbAsStored()
            return Scored(
                scene: scene, transparent: imageA, transparentResult: a, white: imageB, whiteResult: b,
                a: try scorer.transparentRun(imageA), b: scorer.whiteRun(imageB), input: scorer.inputScore(inputRGB),
                scorer: scorer, inputRGB: inputRGB)
        } catch {
            fatalError("\(scene.name): \(error)")
        }
    }

    static var all: [Scored] { get async { await scored.value } }
    static var opaque: [Scored] { get async { await all.filter { !$0.scene.isGlass } } }

    static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }

    @Test func bothSampleSetsAreThere() async {
        let sets = Dictionary(grouping: Fixtures.scenes, by: \.set).mapValues(\.count)
        #expect(sets["dev", default: 0] >= 12 && sets["dev2", default: 0] >= 24, "\(sets)")
    }

    /// The edge band's reference is the studio shot the scene implies: that shot scores 100 dB,
    /// the photo (its old background at the outline) far less.
    @Test func edgeBandScoresTheImpliedStudioShot() async throws {
        let scene = try #require(Fixtures.scenes.first { !$0.isGlass })
        let scorer = try SampleScorer(scene: scene)
        var ideal = scene.clean
        for i in 0..<scene.alpha.count {
            let a = Double(scene.alpha[i]) / 255
            for c in 0..<3 { ideal[i * 3 + c] = UInt8((Double(scene.clean[i * 3 + c]) * a + 255 * (1 - a)).rounded()) }
        }
        #expect(scorer.edgeBand.filter { $0 }.count >= 1000, "band pixels")
        #expect(scorer.edgePSNR(ideal) == 100)
        let photo = try #require(scorer.edgePSNR(try RasterImage(decoding: scene.input).rgbAsStored()))
        #expect(photo < 30, "the photo's edge band: \(photo) dB")
    }

    @Test func transparentRunIsRGBAOfTheInputSize() async {
        for run in await Self.all {
            #expect(run.transparent.width == run.scene.width && run.transparent.height == run.scene.height, "\(run.scene.name)")
            #expect(run.transparent.bands == 4 && run.transparentResult.hasAlpha, "\(run.scene.name)")
        }
    }

    @Test func whiteRunIsRGBOfTheInputSize() async {
        for run in await Self.all {
            #expect(run.white.width == run.scene.width && run.white.height == run.scene.height, "\(run.scene.name)")
            #expect(run.white.bands == 3 && !run.whiteResult.hasAlpha, "\(run.scene.name)")
        }
    }

    /// The first bar, on the twelve dev scenes: every opaque product >= 0.80, their mean >= 0.95.
    @Test func maskIoUOnTheDevScenes() async throws {
        let dev = await Self.all.filter { $0.scene.set == "dev" }
        try #require(dev.count >= 12)
        let opaque = dev.filter { !$0.scene.isGlass }
        for run in opaque { #expect(run.a.iou >= 0.80, "\(run.scene.name): IoU \(run.a.iou)") }
        #expect(Self.mean(opaque.map(\.a.iou)) >= 0.95, "mean IoU without glass: \(opaque.map(\.a.iou))")
        // Over all twelve. Not met: empty glass (~0.3 alpha inside) is segmented as solid, and
        // colour alone cannot tell it from a white product's lighter face (docs/engine.md).
        let ious = dev.map(\.a.iou)
        withKnownIssue("glass tumblers are segmented as solid; see docs/engine.md") {
            #expect(Self.mean(ious) >= 0.95, "mean IoU \(Self.mean(ious)): \(ious)")
            #expect(ious.allSatisfy { $0 >= 0.80 }, "IoU per scene \(ious)")
        }
    }

    /// Issue 15's outline targets on all 36 scenes' opaque products. Hard: no regression below
    /// today's level (mean IoU 0.959 with U²-Net-p, less a margin) and the boundary F target, met
    /// since the dark tiled overlays are removed (0.882). Known issue: the other targets.
    @Test func outlineOnAllScenes() async throws {
        let opaque = await Self.opaque
        try #require(opaque.count >= 32)
        let (ious, boundaries) = (opaque.map(\.a.iou), opaque.map(\.a.boundaryF))
        #expect(Self.mean(ious) >= 0.95, "mean IoU \(Self.mean(ious))")
        #expect(Self.mean(boundaries) >= 0.88, "mean boundary F \(Self.mean(boundaries))")
        let weak = opaque.filter { $0.a.iou < 0.90 }.map { "\($0.scene.name) \($0.a.iou)" }
        withKnownIssue("white products on white, headphone bands and cables are still lost (docs/engine.md)") {
            #expect(Self.mean(ious) >= 0.97, "mean IoU \(Self.mean(ious))")
            #expect(weak.isEmpty, "IoU below 0.90: \(weak)")
        }
    }

    /// "The product is never made worse than the photo": product PSNR in runs A and B and the
    /// watermark's region on the product, per scene, against the untouched input. Hard, where the
    /// matte holds the product (IoU >= 0.97), two bars. The product the matte kept (the product
    /// region where run A's alpha >= 0.5) is not recoloured: run B no more than 3 dB below the photo
    /// there on any scene and 0.3 dB on average (before the matte's edge was steepened: 3.6 and
    /// 0.5 dB). And what it lost is small: at most 1 % of the product region per scene (today at
    /// most 0.51 %, dv12's plug; a lost part shows white in run B and is the known issue below).
    /// Until 2026-12-07 the first bar was taken over the whole product region; on the scenes that
    /// lost nothing the two are the same, and the lost pixels now have a bar of their own.
    @Test func productAgainstThePhoto() async throws {
        let opaque = await Self.opaque
        var worse: [String] = [], shortfalls: [Double] = []
        for run in opaque {
            guard let input = run.input.productPSNR, let a = run.a.productPSNR, let b = run.b.productPSNR else { continue }
            if run.a.iou >= 0.97 {
                let alpha = try #require(run.transparent.alpha)
                let region = run.scorer.productRegion, kept = zip(region, alpha).map { $0 && $1 >= 128 }
                let lost = Double(region.filter { $0 }.count - kept.filter { $0 }.count) / Double(max(1, region.filter { $0 }.count))
                #expect(lost <= 0.01, "\(run.scene.name): \(lost * 100) % of the product lost")
                let keptB = try #require(run.scorer.psnr(run.white.rgbAsStored(), over: kept))
                let keptInput = try #require(run.scorer.psnr(run.inputRGB, over: kept))
                shortfalls.append(max(0, keptInput - keptB))
                #expect(keptB >= keptInput - 3, "\(run.scene.name): run B \(keptB) dB, photo \(keptInput) dB where the matte kept the product")
            }
            let parts = run.input.worse(a: run.a, b: run.b)
            if !parts.isEmpty {
                worse.append("\(run.scene.name) \(parts.joined(separator: ",")): A \(a), B \(b), photo \(input); watermark region \(run.a.watermarkResidual ?? .nan), photo \(run.input.watermarkPSNR ?? .nan)")
            }
        }
        try #require(shortfalls.count >= 16, "scenes whose matte holds: \(shortfalls.count)")
        #expect(Self.mean(shortfalls) <= 0.3, "mean shortfall against the photo \(Self.mean(shortfalls)) dB")
        // A regression guard until the target holds: 15 of 32 today (24 before the matte's opaque
        // core, 18 before its narrow notches were closed, 17 before faint thin parts were recovered,
        // 16 before the dark tiled overlays were removed; docs/engine.md stages 2 and 4). One more is
        // allowed: several scenes are within hundredths of a dB of their photo, which another CPU's
        // arithmetic may tip.
        #expect(worse.count <= 16, "\(worse.count) of \(opaque.count) worse than the photo: \(worse)")
        withKnownIssue("lost parts of the product and untouched single overlays (docs/engine.md)") {
            #expect(worse.isEmpty, "\(worse.count) worse than the photo: \(worse)")
        }
    }

    @Test func whiteBackgroundIsPureAwayFromTheProduct() async throws {
        let all = await Self.all
        for run in all { #expect(run.b.shadowPresence > 0, "\(run.scene.name): no soft shadow under the product") }
        let purities = all.map(\.b.purity)
        #expect(Self.mean(purities) >= 0.98, "mean purity \(Self.mean(purities)): \(purities)")
        let impure = all.filter { $0.b.purity < 0.99 }.map { "\($0.scene.name) \($0.b.purity)" }
        withKnownIssue("a kept background part or overlay text shows on white (docs/engine.md)") {
            #expect(impure.isEmpty, "purity below 0.99: \(impure)")
        }
    }

    /// End to end on the dev set's light tiled overlays: where the engine shows the product
    /// opaque, the watermark is gone from it.
    @Test func tiledWatermarkErrorOnTheProductDrops() async throws {
        let tiled = await Self.all.filter { $0.scene.set == "dev" && $0.scene.watermarkIsTiled }
        try #require(!tiled.isEmpty)
        var checked = 0
        for run in tiled {
            let alpha = try #require(run.transparent.alpha)
            let region = zip(run.scorer.watermarkOnProduct, alpha).map { $0 && $1 >= 250 }
            guard let before = run.scorer.psnr(run.inputRGB, over: region),
                  let after = run.scorer.psnr(run.transparent.rgbAsStored(), over: region)
            else { continue } // the watermark does not cross the opaque product
            checked += 1
            #expect(after > before + 6, "\(run.scene.name): on-product error \(after) dB, input \(before) dB")
        }
        #expect(checked >= 3, "scenes with a tiled watermark on the product: \(checked)")
    }
}

/// The watermark stage on its own: it removes tiled overlays and leaves every other photo alone.
@Suite("Tiled watermark removal", .blockingWork)
struct WatermarkTests {
    /// The watermark stage: whether it found one, and the pixels after it.
    static func remove(_ input: [UInt8], width: Int, height: Int) throws(ImagingError) -> (Bool, [UInt8]) {
        var pixels = input
        let found = try StudioShotPipeline.removeTiledWatermark(&pixels, width: width, height: height)
        return (found, pixels)
    }

    /// Hard on the dev set's light tiled overlays: found, and 6 dB better where the overlay lies
    /// and on the product; on every light overlay found the same; hard on the dark tiled text of
    /// dev2 (a dark grey at ~0.2): found, and 6 dB better where it lies; hard on all tiled scenes:
    /// never worse than the photo there. The same 6 dB gain everywhere on every tiled scene is
    /// issue 15's bar, a known issue (docs/engine.md).
    @Test func tiledOverlaysAreInverted() async throws {
        let tiled = Fixtures.scenes.filter(\.watermarkIsTiled)
        try #require(tiled.filter { $0.set == "dev" }.count >= 3 && tiled.count >= 10)
        var missed: [String] = [], worse: [String] = []
        for scene in tiled {
            let scorer = try SampleScorer(scene: scene)
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            let (found, cleaned) = try Self.remove(input, width: scene.width, height: scene.height)
            // Everywhere the overlay lies (background included) and on the opaque product.
            let overlay = scene.watermark.map { $0 >= 13 }
            let before = try #require(scorer.psnr(input, over: overlay)), after = try #require(scorer.psnr(cleaned, over: overlay))
            var gains = [(after, before)]
            if let onProduct = scorer.psnr(input, over: scorer.watermarkOnProduct) {
                gains.append((try #require(scorer.psnr(cleaned, over: scorer.watermarkOnProduct)), onProduct))
            }
            let inverted = found && gains.allSatisfy { $0.0 > $0.1 + 6 }
            if scene.set == "dev" {
                #expect(found, "\(scene.name): no tiled watermark found")
                #expect(inverted, "\(scene.name): (after, before) dB where the overlay lies and on the product: \(gains)")
            }
            // Until the first round's gate was lowered and a dark overlay's grey level fitted, five
            // of these six were left in place (docs/engine.md).
            if scene.watermarkKind == "dark_tiled" {
                #expect(found && after > before + 6, "\(scene.name): found \(found), \(after) dB where the overlay lies, input \(before) dB")
            }
            // A light overlay, once found, is inverted by 6 dB where it lies and on the product too.
            // Until the template was fitted again at up to 1024 px, the light grids' thin letters
            // kept their rims (dv15's product: 13.4 -> 18.8 dB).
            if found && !scene.watermarkKind.hasPrefix("dark") {
                #expect(inverted, "\(scene.name): (after, before) dB where the overlay lies and on the product: \(gains)")
            }
            if !inverted { missed.append("\(scene.name): found \(found), \(gains)") }
            if gains.contains(where: { $0.0 < $0.1 }) { worse.append("\(scene.name): \(gains)") }
        }
        // Until a fit had to fade the opposite strokes too, a dark overlay on a white sweep was
        // inverted as a light one: dv07, dv16 and dv21 lost ~1 dB where the overlay lies.
        #expect(worse.isEmpty, "worse than the photo: \(worse)")
        withKnownIssue("a light grid on a white sweep is not found, and under some overlays the product gains less than 6 dB (docs/engine.md)") {
            #expect(missed.isEmpty, "not inverted by 6 dB: \(missed)")
        }
    }

    /// A photo that is not square: the search's working size and the fine fit's size differ per
    /// axis, and the lattice found at one is scaled per axis to the other. Each tiled scene of
    /// the dev set, cut to 1024 x 640 and to 600 x 1024: where found, 6 dB better where the
    /// overlay lies (hard), and found on at least four of the six cuts. Found on every cut is a
    /// known issue: dev01's faint overlay is not found once cut (the working size, and with it the
    /// stroke kernel and the lattice search's radii, change; the same before 2026-12-07).
    @Test func nonSquarePhotosAreInvertedToo() async throws {
        let tiled = Fixtures.scenes.filter { $0.set == "dev" && $0.watermarkIsTiled && !$0.isGlass }
        try #require(tiled.count >= 3)
        var (inverted, missed) = (0, [String]())
        for scene in tiled {
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            for (width, height) in [(min(1024, scene.width), min(640, scene.height)), (min(600, scene.width), min(1024, scene.height))] {
                func cut(_ pixels: [UInt8], bands: Int) -> [UInt8] {
                    (0..<height).flatMap { y in pixels[(y * scene.width * bands)..<((y * scene.width + width) * bands)] }
                }
                let (photo, clean, overlay) = (cut(input, bands: 3), cut(scene.clean, bands: 3), cut(scene.watermark, bands: 1))
                let (found, cleaned) = try Self.remove(photo, width: width, height: height)
                var (truth, before, after) = ([UInt8](), [UInt8](), [UInt8]())
                for p in 0..<(width * height) where overlay[p] >= 13 {
                    truth += clean[(3 * p)..<(3 * p + 3)]
                    before += photo[(3 * p)..<(3 * p + 3)]
                    after += cleaned[(3 * p)..<(3 * p + 3)]
                }
                try #require(!truth.isEmpty)
                let (was, is_) = (Fixtures.psnr(before, truth), Fixtures.psnr(after, truth))
                guard found else {
                    missed.append("\(scene.name) cut to \(width) x \(height)")
                    #expect(cleaned == photo, "\(scene.name) cut to \(width) x \(height): not found, but pixels changed")
                    continue
                }
                inverted += 1
                #expect(is_ > was + 6, "\(scene.name) cut to \(width) x \(height): \(is_) dB where the overlay lies, input \(was) dB")
            }
        }
        #expect(inverted >= 4, "found on \(inverted) cuts; missed \(missed)")
        withKnownIssue("a faint overlay found in the whole photo can be missed in a cut of it (docs/engine.md)") {
            #expect(missed.isEmpty, "not found: \(missed)")
        }
    }

    /// The stage does not depend on which way round the photo is: each tiled scene mirrored left
    /// to right is found when the photo is, and comes out within 1 dB of it where the overlay lies
    /// (hard). Until 2026-12-07 pixels were mapped to the lattice's texels at their corners, which
    /// for whole-pixel periods sit on the texel boundaries: the template came out sharp or smeared
    /// with the lattice's last digits, and mirrored, dv04's and dv19's overlays were not found and
    /// dv10's came out 8 dB worse. Top to bottom the same holds but for a known issue: dv19's faint
    /// dark text sits at the check's bound (it leaves 0.56-0.57 of the overlay, the bound is 0.59)
    /// and upside down leaves 0.61, so it is not removed (a texel grid that is not whole pixels
    /// aliases a little differently each way round).
    @Test func mirroredPhotosAreInvertedAsThePhotoIs() async throws {
        let tiled = Fixtures.scenes.filter { $0.watermarkIsTiled }
        try #require(tiled.count >= 10)
        var upsideDown: [String] = []
        for scene in tiled {
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            let (width, height) = (scene.width, scene.height)
            func mirrored(_ pixels: [UInt8], bands: Int, leftRight: Bool) -> [UInt8] {
                var out = pixels
                for y in 0..<height {
                    for x in 0..<width {
                        let (sx, sy) = leftRight ? (width - 1 - x, y) : (x, height - 1 - y)
                        for c in 0..<bands { out[(y * width + x) * bands + c] = pixels[(sy * width + sx) * bands + c] }
                    }
                }
                return out
            }
            func whereTheOverlayLies(_ photo: [UInt8], clean: [UInt8], overlay: [UInt8]) throws -> (found: Bool, psnr: Double) {
                let (found, cleaned) = try Self.remove(photo, width: width, height: height)
                var (truth, after) = ([UInt8](), [UInt8]())
                for p in 0..<(width * height) where overlay[p] >= 13 {
                    truth += clean[(3 * p)..<(3 * p + 3)]
                    after += cleaned[(3 * p)..<(3 * p + 3)]
                }
                return (found, Fixtures.psnr(after, truth))
            }
            let photo = try whereTheOverlayLies(input, clean: scene.clean, overlay: scene.watermark)
            for leftRight in [true, false] {
                let mirror = try whereTheOverlayLies(
                    mirrored(input, bands: 3, leftRight: leftRight), clean: mirrored(scene.clean, bands: 3, leftRight: leftRight),
                    overlay: mirrored(scene.watermark, bands: 1, leftRight: leftRight))
                let same = mirror.found == photo.found && abs(mirror.psnr - photo.psnr) <= 1
                let what = "found \(mirror.found) (the photo \(photo.found)), \(mirror.psnr) dB where the overlay lies (the photo \(photo.psnr))"
                if leftRight {
                    #expect(same, "\(scene.name) mirrored left to right: \(what)")
                } else if !same {
                    upsideDown.append("\(scene.name): \(what)")
                }
            }
        }
        withKnownIssue("an overlay at the check's bound can go either way upside down (dv19)") {
            #expect(upsideDown.isEmpty, "mirrored top to bottom: \(upsideDown)")
        }
    }

    /// No false positives: label text, paper texture, straight edges and centred (untiled)
    /// watermarks are not a tiled overlay, and the photo comes back byte for byte.
    @Test func otherPhotosAreLeftAlone() async throws {
        let others = Fixtures.scenes.filter { !$0.watermarkIsTiled }
        try #require(others.count >= 6)
        for scene in others {
            let input = try RasterImage(decoding: scene.input).rgbAsStored()
            let (found, output) = try Self.remove(input, width: scene.width, height: scene.height)
            #expect(!found, "\(scene.name) (\(scene.watermarkKind)): a tiled watermark was reported")
            // Compared first: Swift Testing would diff two 3 MB arrays to explain a failure.
            let unchanged = output == input
            #expect(unchanged, "\(scene.name): pixels changed")
        }
    }

    /// A periodic pattern that belongs to the scene fits a lattice like an overlay does, but a
    /// product standing in front of it does not carry it. Here a tiled scene gets a clean patch
    /// pasted into its background: the overlay around it is still removed, and the patch must come
    /// back unchanged instead of having the inverted overlay burnt into it.
    @Test func aProductWithoutTheOverlayIsLeftAlone() async throws {
        let scene = try #require(Fixtures.scenes.first { $0.watermarkIsTiled })
        let (side, patch) = (scene.width, 200)
        var pixels = try RasterImage(decoding: scene.input).rgbAsStored()
        let (x0, y0) = (side / 10, side / 10)
        for y in y0..<(y0 + patch) {
            for x in x0..<(x0 + patch) {
                let i = (y * side + x) * 3
                (pixels[i], pixels[i + 1], pixels[i + 2]) = (UInt8(60 + (x - x0) / 5), 90, UInt8(140 + (y - y0) / 6))
            }
        }
        let (found, output) = try Self.remove(pixels, width: side, height: scene.height)
        #expect(found, "the overlay around the patch was not found")
        // Away from the patch's edge by more than the reach of the overlay's local gain window
        // (7 px either side at the size the kept template was fitted: ~7 px here after the fine
        // fit, ~15 px at the working size, plus the enlargement; within it, strokes that cross the
        // edge can still be inverted; docs/engine.md).
        var (before, after) = ([UInt8](), [UInt8]())
        for y in (y0 + 20)..<(y0 + patch - 20) {
            let row = (y * side + x0 + 20) * 3..<(y * side + x0 + patch - 20) * 3
            before += pixels[row]
            after += output[row]
        }
        // Without the check the overlay's strokes are burnt in: ~33 dB.
        let psnr = Fixtures.psnr(after, before)
        let total = before.count / 3
        let changed = (0..<total).filter { p in (0..<3).contains { abs(Int(after[3 * p + $0]) - Int(before[3 * p + $0])) > 2 } }.count
        #expect(psnr >= 37, "the clean patch came back at \(psnr) dB")
        #expect(changed * 100 <= total, "\(changed) of \(total) pixels of the clean patch changed")
    }
}

@Suite("Output geometry", .blockingWork)
struct GeometryTests {
    @Test(arguments: [1, 2, 4])
    func outputIsInputSizeTimesUpscale(factor: Int) async throws {
        let scene = try #require(Fixtures.scenes.first)
        for background in [StudioBackground.transparent, .color(red: 20, green: 40, blue: 60)] {
            let result = try Fixtures.pipeline.render(StudioShotRequest(image: scene.input, background: background, shadow: .soft, upscale: factor))
            let image = try RasterImage(decoding: result.encoded)
            #expect(result.width == scene.width * factor && result.height == scene.height * factor)
            #expect(image.width == result.width && image.height == result.height)
            #expect(image.bands == (background == .transparent ? 4 : 3))
        }
    }

    @Test(arguments: OutputFormat.allCases)
    func everyFormatDecodes(format: OutputFormat) async throws {
        let scene = try #require(Fixtures.scenes.first)
        let result = try Fixtures.pipeline.render(StudioShotRequest(image: scene.input, background: .transparent, outputFormat: format))
        let image = try RasterImage(decoding: result.encoded)
        #expect(image.width == scene.width && image.height == scene.height)
        #expect(result.hasAlpha == (format != .jpeg))
        #expect(image.bands == (format == .jpeg ? 3 : 4))
    }

    @Test func productStaysInPlace() async throws {
        let scene = try #require(Fixtures.scenes.first)
        let result = try Fixtures.pipeline.render(StudioShotRequest(image: scene.input, background: .transparent, shadow: .none, upscale: 2))
        let alpha = try #require(try RasterImage(decoding: result.encoded).alpha)
        // Bounding box of the opaque product, halved, against the ground truth's.
        var (x0, y0, x1, y1) = (Int.max, Int.max, 0, 0)
        for y in 0..<result.height {
            for x in 0..<result.width where alpha[y * result.width + x] >= 128 {
                (x0, y0, x1, y1) = (min(x0, x), min(y0, y), max(x1, x + 1), max(y1, y + 1))
            }
        }
        let box = scene.productBox
        for (got, want) in zip([x0, y0, x1, y1].map { $0 / 2 }, box) { #expect(abs(got - want) <= 6, "\([x0, y0, x1, y1]) vs \(box)") }
    }

    @Test func classicalFallbackIsReported() async throws {
        let pipeline = try StudioShotPipeline(configuration: PipelineConfiguration(modelPath: "/nonexistent/u2netp.onnx"))
        #expect(pipeline.segmenter.hasPrefix("classical"))
        #expect(pipeline.segmenter.contains("/nonexistent/u2netp.onnx"))
        let scene = try #require(Fixtures.scenes.first)
        let result = try pipeline.render(StudioShotRequest(image: scene.input, background: .transparent, shadow: .none))
        let score = try SampleScorer(scene: scene).transparentRun(try RasterImage(decoding: result.encoded))
        #expect(score.iou > 0.5, "classical IoU \(score.iou)")
    }

    @Test func modelIsUsedWhenInstalled() async throws {
        let path = PipelineConfiguration.defaultModelPath
        try #require(FileManager.default.fileExists(atPath: path), "run scripts/fetch-model.sh")
        #expect(Fixtures.pipeline.segmenter == URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
    }
}
