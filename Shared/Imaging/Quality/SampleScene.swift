import Foundation

/// One scene of the engine's sample set (../shared/samples/dev): the input photo and its ground
/// truth. See that folder's README for the file meanings.
public struct SampleScene: Sendable {
    public var name: String
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
    /// meta.json's watermark kind ("none", "tiled_light", "centred").
    public var watermarkKind: String

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
            struct Watermark: Decodable { var kind: String }
            var baseline_y: Int
            var product_bbox: [Int]
            var watermark: Watermark
        }
        let meta = try JSONDecoder().decode(Meta.self, from: Data(bytes("meta.json")))
        name = folder.lastPathComponent
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
    }
}
