import Foundation

/// One scene of the engine's sample sets (../shared/samples/dev and dev2): the input photo and its
/// ground truth. See the samples README for the file meanings.
public struct SampleScene: Sendable {
    public var name: String
    /// The folder the scene came from ("dev", "dev2").
    public var set: String
    public var input: [UInt8]
    public var width: Int
    public var height: Int
    /// clean.png as RGB.
    public var clean: [UInt8]
    /// alpha.png: 0 background, 255 opaque product.
    public var alpha: [UInt8]
    /// wmmask.png: watermark opacity, 0 where there is none.
    public var watermark: [UInt8]
    /// Last row holding a pixel with alpha >= 128.
    public var baselineY: Int
    /// [x0, y0, x1, y1) of the pixels with alpha > 0.
    public var productBox: [Int]
    /// meta.json's watermark kind: "none"; repeated overlays "tiled_light", "light_grid",
    /// "dark_tiled"; single ones "centred", "diagonal_text", "corner_logo".
    public var watermarkKind: String
    /// meta.json's background kind ("pastel", "tabletop_wall", "white_sweep", "tex_brick", ...).
    public var backgroundKind: String
    /// meta.json's product kind ("bottle", "mug", "white_box", "headphones", "dark_shoe",
    /// "glass_tumbler").
    public var productKind: String

    /// Whether the overlay repeats over the photo (what the watermark stage looks for).
    public var watermarkIsTiled: Bool { watermarkKind.contains("tiled") || watermarkKind.contains("grid") }
    /// Glass: partial alpha inside, no opaque product region; scored apart from opaque products.
    public var isGlass: Bool { productKind.contains("glass") }

    /// The sample sets next to a repository: `<repo>/../shared/samples/{dev,dev2}`.
    public static func folders(besideRepository root: URL) -> [URL] {
        let samples = root.deletingLastPathComponent().appendingPathComponent("shared/samples")
        return ["dev", "dev2"].map { samples.appendingPathComponent($0) }
    }

    /// Every scene of every folder, in folder order, each folder sorted by name.
    public static func loadAll(from directories: [URL]) throws -> [SampleScene] {
        try directories.flatMap { try loadAll(from: $0) }
    }

    /// Loads every scene folder under `directory`, sorted by name.
    public static func loadAll(from directory: URL) throws -> [SampleScene] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        return try names.compactMap { name in
            let folder = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("meta.json").path) else {
                return nil
            }
            return try SampleScene(folder: folder)
        }
    }

    public init(folder: URL) throws {
        func bytes(_ file: String) throws -> [UInt8] {
            [UInt8](try Data(contentsOf: folder.appendingPathComponent(file)))
        }
        struct Meta: Decodable {
            struct Kind: Decodable { var kind: String }
            var baseline_y: Int
            var product_bbox: [Int]
            var watermark: Kind
            var background: Kind
            var product: Kind
        }
        let meta = try JSONDecoder().decode(Meta.self, from: Data(bytes("meta.json")))
        name = folder.lastPathComponent
        set = folder.deletingLastPathComponent().lastPathComponent
        input = try bytes("input.jpg")
        let clean = try RasterImage(decoding: bytes("clean.png"))
        width = clean.width
        height = clean.height
        self.clean = clean.rgbAsStored()
        alpha = try RasterImage(decoding: bytes("alpha.png")).pixels
        watermark = try RasterImage(decoding: bytes("wmmask.png")).pixels
        baselineY = meta.baseline_y
        productBox = meta.product_bbox
        watermarkKind = meta.watermark.kind
        backgroundKind = meta.background.kind
        productKind = meta.product.kind
    }
}
