import RunPod
import Foundation

/// Turns a fetched image and validated options into the encoded studio shot.
///
/// Implementations must not block the caller's executor: blocking work goes to a thread pool.
/// Cancellation (a cancelled job, a timeout) is best effort: a render already on a thread runs to its end.
public protocol ImageRenderer: Sendable {
    /// What `/health` reports.
    var description: EngineHealth.Renderer { get }
    func render(_ image: [UInt8], options: StudioShotInput) async throws(JobFailure) -> RenderedImage
}

/// A renderer's product.
public struct RenderedImage: Sendable {
    public var encoded: [UInt8]
    public var width: Int
    public var height: Int
    /// `png`, `jpeg`, `webp` (or, in simulated mode, whatever the input was).
    public var format: String
    public var timings: [String: Int]

    public init(encoded: [UInt8], width: Int, height: Int, format: String, timings: [String: Int]) {
        self.encoded = encoded
        self.width = width
        self.height = height
        self.format = format
        self.timings = timings
    }
}

/// Benchmark mode (`LOCAL_ENGINE_SIMULATE_MS`): no image work, a fixed latency, the input handed back.
///
/// It still reads the image header, so empty or non-image inputs fail as they would in the real
/// pipeline and the output carries the real width and height.
public struct SimulatedRenderer: ImageRenderer {
    public var latency: Duration

    public init(latency: Duration) { self.latency = latency }

    public var description: EngineHealth.Renderer {
        .init(mode: "simulated", segmenter: "none", simulatedLatencyMs: latency.milliseconds)
    }

    public func render(_ image: [UInt8], options: StudioShotInput) async throws(JobFailure) -> RenderedImage {
        let header = try ImageHeader(sniffing: image)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await Task.sleep(for: latency)
        } catch {
            throw JobFailure(.renderFailed, "cancelled")
        }
        let elapsed = (clock.now - start).milliseconds
        return RenderedImage(
            encoded: image, width: header.width, height: header.height, format: header.format,
            timings: ["simulated": elapsed])
    }
}

/// The format and size of an encoded image, read from its first bytes (PNG, JPEG, WebP, GIF).
public struct ImageHeader: Sendable, Equatable {
    public var format: String
    public var width: Int
    public var height: Int

    public init(sniffing bytes: [UInt8]) throws(JobFailure) {
        guard !bytes.isEmpty else { throw JobFailure(.imageRejected, "input.image: the image is empty (0 bytes)") }
        func be16(_ i: Int) -> Int { i + 1 < bytes.count ? Int(bytes[i]) << 8 | Int(bytes[i + 1]) : 0 }
        func le16(_ i: Int) -> Int { i + 1 < bytes.count ? Int(bytes[i]) | Int(bytes[i + 1]) << 8 : 0 }
        func be32(_ i: Int) -> Int { be16(i) << 16 | be16(i + 2) }
        func le24(_ i: Int) -> Int { i + 2 < bytes.count ? le16(i) | Int(bytes[i + 2]) << 16 : 0 }
        func ascii(_ i: Int, _ text: String) -> Bool {
            let expected = Array(text.utf8)
            return bytes.count >= i + expected.count && Array(bytes[i..<i + expected.count]) == expected
        }

        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), ascii(12, "IHDR") {
            self.init(format: "png", width: be32(16), height: be32(20))
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            // Walk the markers to the first start-of-frame.
            var i = 2
            while i + 9 < bytes.count, bytes[i] == 0xFF {
                let marker = bytes[i + 1]
                if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                    self.init(format: "jpeg", width: be16(i + 7), height: be16(i + 5))
                    return
                }
                i += 2 + be16(i + 2)
            }
            throw JobFailure(.imageRejected, "input.image: a JPEG without a frame header (truncated or corrupt, \(bytes.count) bytes)")
        } else if ascii(0, "RIFF"), ascii(8, "WEBP") {
            if ascii(12, "VP8X") {
                self.init(format: "webp", width: le24(24) + 1, height: le24(27) + 1)
            } else if ascii(12, "VP8L"), bytes.count >= 25 {
                let bits = Int(bytes[21]) | Int(bytes[22]) << 8 | Int(bytes[23]) << 16 | Int(bytes[24]) << 24
                self.init(format: "webp", width: (bits & 0x3FFF) + 1, height: (bits >> 14 & 0x3FFF) + 1)
            } else {
                self.init(format: "webp", width: le16(26) & 0x3FFF, height: le16(28) & 0x3FFF)
            }
        } else if ascii(0, "GIF87a") || ascii(0, "GIF89a") {
            self.init(format: "gif", width: le16(6), height: le16(8))
        } else {
            throw JobFailure(.imageRejected, "input.image: not a recognised image (\(bytes.count) bytes starting \(Self.preview(bytes)))")
        }
        guard width > 0, height > 0 else {
            throw JobFailure(.imageRejected, "input.image: the \(format) header gives an empty size (\(width)x\(height))")
        }
    }

    public init(format: String, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }

    /// The first bytes as text when printable, else as hex, so an error shows what was sent.
    static func preview(_ bytes: [UInt8]) -> String {
        let head = bytes.prefix(12)
        if head.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            let text = String(decoding: head, as: UTF8.self).replacingOccurrences(of: "\n", with: "\\n")
            return "\"\(text)\""
        }
        return head.map { String(format: "%02x", $0) }.joined(separator: " ")
    }
}

extension Duration {
    /// Whole milliseconds, for the protocol's `delayTime` / `executionTime` and stage timings.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
