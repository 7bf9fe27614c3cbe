import Database
import Foundation
import Imaging
import Logging
import NIOPosix
import ServiceCore
import Shared

/// A result's bytes: downloaded, checked, given the photo's geometry or a frame and the upscale, stored.
extension ResultHandler {
    func fetchAndStore(_ rendered: GenerationRendered) async throws -> StoredFile {
        var downloaded = try await download(rendered.outputUrl, from: rendered.backend)
        var sniffed: SniffedImage
        switch ImageSniffer.inspect(downloaded) {
        case .notAnImage:
            throw IngestFailure(reason: "the result at \(redactedURL(rendered.outputUrl)) is not a PNG, JPEG, WebP or GIF image", transient: false)
        case .damaged(let format, let reason):
            throw IngestFailure(reason: "the result is a damaged \(format): \(reason)", transient: false)
        case .image(let image):
            sniffed = image
        }
        // A RunPod result is checked against the photo it was made from (did the product stay the
        // product?) and given that photo's size; the local engine's is both already.
        let source = rendered.backend == .runpod ? try await sourcePhoto(of: rendered) : nil
        if rendered.backend == .runpod {
            let mode = await fidelityMode()
            if mode != .off, let photo = source?.url {
                let verdict = try await Self.checkFidelity(downloaded, photo: photo, options: rendered.options, mode: mode, logger: logger)
                try await ledger.recordFidelity(rendered.jobId, json: verdict.json)
                logger.info("fidelity checked", metadata: [
                    "jobId": "\(rendered.jobId)", "decision": "\(verdict.decision.rawValue)", "score": "\(verdict.report.score)",
                ])
                switch verdict.decision {
                case .kept, .unchecked: break
                case .restored:
                    if let restored = verdict.restored, let image = ImageSniffer.sniff(restored) { (downloaded, sniffed) = (restored, image) }
                case .rejected:
                    throw IngestFailure(
                        reason: "the result changed the product: \(verdict.report.description); below the threshold of "
                            + "\(Int(FidelityGuard.threshold * 100)) % (aiImageFidelityMode is reject)",
                        transient: false, code: .productChanged)
                }
            }
        }
        let bytes = downloaded
        // A RunPod result to frame is cut out and placed as the local engine places a photo's product.
        if rendered.backend == .runpod, let framing = rendered.options.framing {
            let framed = try await Self.frame(bytes, framing, options: rendered.options, maxOutputPixels: configuration.maxPixels)
            guard let image = ImageSniffer.sniff(framed) else {
                throw IngestFailure(reason: "the framed result is not a PNG image", transient: false)
            }
            return try files.store(framed, as: image)
        }
        // The local engine keeps the photo's geometry and upscales itself; a RunPod result (rendered
        // at Kontext's size, the trained aspect nearest the photo's) is given the photo's size here,
        // then enlarged.
        let factor = rendered.backend == .runpod ? rendered.options.upscale.rawValue : 1
        let maxPixels = configuration.maxPixels
        let geometry: (width: Int, height: Int)?
        if let source {
            geometry = Self.geometry(ofPhoto: (source.width, source.height), factor: factor, maxPixels: maxPixels)
        } else {
            geometry = nil
        }
        // A result stored as it came (the local engine's: its geometry and upscale are done) is
        // checked as an upload is — a known format, whole, within the pixel cap, read from its
        // header and its end — not decoded: decoding it only to prove it decodes was the largest
        // share of the pipeline's CPU (docs/performance.md).
        if factor == 1, geometry.map({ $0 == (sniffed.width, sniffed.height) }) ?? true {
            guard sniffed.pixels <= maxPixels else {
                throw IngestFailure(
                    reason: "the result is \(sniffed.width)x\(sniffed.height), over the pixel cap of \(maxPixels) (INGEST_MAX_PIXELS)",
                    transient: false)
            }
            return try files.store(bytes, as: sniffed)
        }
        let final: [UInt8] = try await NIOThreadPool.singleton.runIfActive {
            do {
                // A transparent result stays transparent when resized and enlarged.
                let decoded = try ImageCodec.decode(bytes, maxPixels: maxPixels / (factor * factor), keepAlpha: true)
                var (pixels, width, height) = (decoded.pixels, decoded.width, decoded.height)
                let reshaped = geometry.map { $0 != (width, height) } ?? false
                if let geometry, reshaped {
                    pixels = try ImageCodec.resize(
                        pixels, width: width, height: height, bands: decoded.bands, toWidth: geometry.width, height: geometry.height, fit: .cover)
                    (width, height) = geometry
                }
                guard factor > 1 || reshaped else { return bytes }
                if factor > 1 {
                    pixels = try ImageCodec.upscale(pixels, width: width, height: height, bands: decoded.bands, factor: factor)
                    (width, height) = (width * factor, height * factor)
                }
                return try ImageCodec.encode(pixels, width: width, height: height, bands: decoded.bands, format: .png)
            } catch let error as ImagingError {
                throw IngestFailure(reason: "the result does not decode as an image: \(error.message)", transient: false)
            }
        }
        let image = final == bytes ? sniffed : (ImageSniffer.sniff(final) ?? sniffed)
        return try files.store(final, as: image)
    }

    /// The photo the job was made from, where it is in the store (nil when there is nothing to
    /// compare with: the media is gone).
    func sourcePhoto(of rendered: GenerationRendered) async throws -> (url: URL, width: Int, height: Int)? {
        let file = try await Self.sourceFile(
            of: rendered, version: { try await store.versionFile(of: $0, path: $1) },
            current: { try await store.media($0, includingTrash: true)?.file }, logger: logger)
        guard let file, let url = files.url(for: file) else { return nil }
        return (url, file.width, file.height)
    }

    /// The file the job was made from: the one its dispatch named, which stays in the store as one
    /// of the media's versions whatever the media shows now (a revert, another job's result, during
    /// the job). A `source` that is not a version of this media (`version` finds none) is not
    /// trusted, nor read: like a message from a dispatcher that predates `source`, the media's
    /// `current` file (in the trash or not: a result still applies there) stands in.
    static func sourceFile(
        of rendered: GenerationRendered,
        version: (UUID, String) async throws -> StoredFile?,
        current: (UUID) async throws -> StoredFile?,
        logger: Logger
    ) async throws -> StoredFile? {
        if let source = rendered.source {
            if let file = try await version(rendered.mediaId, source.path) { return file }
            logger.warning("the job's source is not a version of its media; the current file stands in", metadata: [
                "jobId": "\(rendered.jobId)", "path": "\(source.path)",
            ])
        }
        return try await current(rendered.mediaId)
    }

    /// The guard's verdict on a result (docs/fidelity.md).
    struct FidelityVerdict: Sendable {
        enum Decision: String, Sendable { case kept, restored, rejected, unchecked }
        var report: FidelityReport
        var decision: Decision
        /// The result with the photo's product put back, PNG, when `decision` is `restored`.
        var restored: [UInt8]?

        /// What the job records and the status API shows.
        var json: String {
            let score = (report.score * 1000).rounded() / 1000
            return #"{"score": \#(score), "threshold": \#(FidelityGuard.threshold), "decision": "\#(decision.rawValue)"}"#
        }
    }

    /// Compares a RunPod result with the photo (both cut out with the local engine's pipeline, the
    /// photo after its watermark removal) and decides by `mode`. Both are compared at most
    /// ``guardSide`` pixels on their long side (a 40 MP photo cut out whole would take a third of a
    /// gigabyte for a comparison made at ~192 px). The guard never fails a job by itself: when it
    /// cannot compare (a photo or result it cannot read, the model not loading) the verdict is
    /// `unchecked` and the result goes on as it came.
    static func checkFidelity(
        _ result: [UInt8], photo file: URL, options: ResolvedGenerationOptions, mode: FidelityMode, logger: Logger
    ) async throws -> FidelityVerdict {
        let outcome: Result<FidelityVerdict, ImagingError> = try await NIOThreadPool.singleton.runIfActive {
            Result { () throws(ImagingError) -> FidelityVerdict in
                let pipeline = try framer.get()
                // Read here, on the thread pool: a photo may be tens of megabytes.
                guard let photo = try? Array(Data(contentsOf: file)) else { return FidelityVerdict(report: .unchecked, decision: .unchecked) }
                func reduced(_ image: [UInt8]) throws(ImagingError) -> [UInt8] {
                    let (width, height) = try ImageCodec.size(of: image)
                    guard max(width, height) > guardSide else { return image }
                    return try ImageCodec.thumbnail(image, maxSide: guardSide, maxPixels: pipeline.configuration.maxPixels).bytes
                }
                let generated = try pipeline.cutOut(try reduced(result), removeWatermark: false)
                let original = try pipeline.cutOut(try reduced(photo), removeWatermark: true)
                let report = FidelityGuard.compare(original, generated)
                guard report.checked else { return FidelityVerdict(report: report, decision: .unchecked) }
                guard report.score < FidelityGuard.threshold else { return FidelityVerdict(report: report, decision: .kept) }
                guard mode == .restore else { return FidelityVerdict(report: report, decision: .rejected) }
                let rgb = options.backgroundColor.rgb ?? (255, 255, 255)
                guard let pixels = FidelityGuard.restore(original, into: generated, background: (rgb.red, rgb.green, rgb.blue)) else {
                    return FidelityVerdict(report: .unchecked, decision: .unchecked)
                }
                let png = try ImageCodec.encode(pixels, width: generated.width, height: generated.height, bands: 3, format: .png)
                return FidelityVerdict(report: report, decision: .restored, restored: png)
            }
        }
        switch outcome {
        case .success(let verdict): return verdict
        case .failure(let error):
            logger.warning("the fidelity guard could not compare; the result is kept unchecked", metadata: ["error": "\(error.message)"])
            return FidelityVerdict(report: .unchecked, decision: .unchecked)
        }
    }

    /// The long side both images are compared at, at most.
    static let guardSide = 2048

    /// The pipeline that checks and frames RunPod results, with the local engine's segmentation
    /// model; loaded at the first RunPod result (on a thread-pool thread), never for local ones.
    private static let framer = Result { () throws(ImagingError) -> StudioShotPipeline in try StudioShotPipeline() }

    /// Frames a RunPod result (docs/framing.md): FLUX's image is segmented with the same model as
    /// the local engine's, its product cut out and placed on the frame's canvas of the background
    /// asked for with the shadow asked for. FLUX's own backdrop and shadow are not kept: the canvas
    /// reaches past what FLUX drew, and a preset's pure white must be exact.
    static func frame(_ bytes: [UInt8], _ framing: FramingSpec, options: ResolvedGenerationOptions, maxOutputPixels: Int) async throws -> [UInt8] {
        let request = StudioShotRequest(
            image: bytes, background: StudioBackground(options.backgroundColor), shadow: ShadowPreset(options.shadowStyle),
            removeWatermark: false, upscale: options.upscale.rawValue, outputFormat: .png, frame: StudioFrame(framing))
        let outcome: Result<StudioShotResult, ImagingError> = try await NIOThreadPool.singleton.runIfActive {
            Result { () throws(ImagingError) -> StudioShotResult in try framer.get().render(request) }
        }
        switch outcome {
        case .success(let result) where result.width * result.height <= maxOutputPixels: return result.encoded
        case .success(let result):
            throw IngestFailure(
                reason: "the framed result is \(result.width)x\(result.height), over the pixel cap of \(maxOutputPixels) (INGEST_MAX_PIXELS)",
                transient: false)
        case .failure(let error):
            throw IngestFailure(reason: "framing the result failed: \(error.message)", transient: false)
        }
    }

    /// The size a RunPod result is given before its upscale by `factor`: the photo's, so the studio
    /// shot replaces it at the same size and aspect as the local engine's would; scaled down (aspect
    /// kept) when the upscaled result would pass `maxPixels`.
    static func geometry(ofPhoto photo: (width: Int, height: Int), factor: Int, maxPixels: Int) -> (width: Int, height: Int)? {
        guard photo.width > 0, photo.height > 0, factor > 0 else { return nil }
        let budget = Double(maxPixels) / Double(factor * factor)
        let scale = min(1, (budget / Double(photo.width * photo.height)).squareRoot())
        return (max(1, Int(Double(photo.width) * scale)), max(1, Int(Double(photo.height) * scale)))
    }
}
