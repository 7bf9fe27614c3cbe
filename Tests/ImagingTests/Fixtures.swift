import Foundation
import Imaging

/// Shared state for the imaging tests: one pipeline (its model loads once) and the 36 sample scenes
/// of ../shared/samples/dev and dev2 next to the repository. The first touch of either blocks its
/// thread for seconds: the suites that use them carry ``BlockingWork``.
enum Fixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let samples = SampleScene.folders(besideRepository: repoRoot)

    static let pipeline: StudioShotPipeline = {
        do { return try StudioShotPipeline(configuration: PipelineConfiguration()) } catch {
            fatalError("the pipeline cannot start: \(error)")
        }
    }()

    static let scenes: [SampleScene] = {
        do { return try SampleScene.loadAll(from: samples) } catch {
            fatalError("cannot load the sample scenes from \(samples.map(\.path)): \(error)")
        }
    }()

    /// PSNR of `a` against `b` (same length) over all their values.
    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        let mse = zip(a, b).reduce(0.0) { sum, pair in sum + pow(Double(pair.0) - Double(pair.1), 2) } / Double(a.count)
        return 10 * log10(255 * 255 / max(mse, 1e-10))
    }

    /// A 64x48 RGB gradient, for fixtures built from scratch.
    static func gradient(width: Int = 64, height: Int = 48, bands: Int = 3) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * bands)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<bands { pixels[(y * width + x) * bands + c] = UInt8((x * 3 + y * 2 + c * 40) % 256) }
            }
        }
        return pixels
    }
}

/// A PNG with a valid signature and IHDR chunk whose header claims `width` x `height`, followed by a
/// tiny IDAT: a decompression bomb's header.
func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
    func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }
    let ihdr = bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
        + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}
