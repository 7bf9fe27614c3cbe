import RunPod
import Foundation
import ServiceCore
import Timing

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
/// pipeline and the output carries the real width and height. With a `hold` path
/// (`LOCAL_ENGINE_SIMULATE_HOLD`), a job that has waited its latency waits on while a file exists
/// there (looked at every ``holdInterval``): a test keeps jobs at the backend for exactly as long as
/// it needs them there, instead of for a latency long enough for the slowest machine.
public struct SimulatedRenderer: ImageRenderer {
    public var latency: Duration
    public var hold: String?
    public static let holdInterval: Duration = .milliseconds(20)

    public init(latency: Duration, hold: String? = nil) {
        self.latency = latency
        self.hold = hold
    }

    public var description: EngineHealth.Renderer {
        .init(
            mode: "simulated", segmenter: "none", simulatedLatencyMs: latency.wholeMilliseconds, segmentationsReused: nil,
            segmentationsComputed: nil)
    }

    public func render(_ image: [UInt8], options: StudioShotInput) async throws(JobFailure) -> RenderedImage {
        let header = try ImageHeader(sniffing: image)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await Task.sleep(for: latency)
            if let hold {
                while FileManager.default.fileExists(atPath: hold) { try await Task.sleep(for: Self.holdInterval) }
            }
        } catch {
            throw JobFailure(.renderFailed, "cancelled")
        }
        let elapsed = (clock.now - start).wholeMilliseconds
        return RenderedImage(
            encoded: image, width: header.width, height: header.height, format: header.format,
            timings: ["simulated": elapsed])
    }
}

/// The format and size of an encoded image, read from its first bytes (PNG, JPEG, WebP, GIF) by
/// ``ImageSniffer``, as the gateway reads uploads; the size is the upright one (EXIF orientation).
public struct ImageHeader: Sendable, Equatable {
    public var format: String
    public var width: Int
    public var height: Int

    public init(sniffing bytes: [UInt8]) throws(JobFailure) {
        guard !bytes.isEmpty else { throw JobFailure(.imageRejected, "input.image: the image is empty (0 bytes)") }
        guard let format = ImageSniffer.format(of: bytes) else {
            throw JobFailure(.imageRejected, "input.image: not a recognised image (\(bytes.count) bytes starting \(Self.preview(bytes)))")
        }
        guard let image = ImageSniffer.sniff(bytes) else {
            throw JobFailure(.imageRejected, "input.image: a \(format) whose header is damaged or cut short (\(bytes.count) bytes)")
        }
        self.init(format: String(image.mimeType.dropFirst("image/".count)), width: image.width, height: image.height)
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
