import AsyncHTTPClient
import Database
import Foundation
import Imaging
import Logging
import Messaging
import NIOCore
import NIOPosix
import OutboundHTTP
import Prometheus
import ServiceCore
import ServiceSupport
import Shared
import Timing

/// Wires the ingestor: PostgreSQL, the broker, the HTTP client and the consumer of rendered results.
func buildIngestor(
    configuration: ServiceConfiguration,
    ingestor: IngestorConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) throws -> ServiceHost {
    let replyQueue = SettingsClient.makeReplyQueue(serviceName: configuration.serviceName)
    var host = try ServiceHost(configuration: configuration, registry: registry, additionalQueues: [replyQueue])
    let settings = SettingsClient(broker: host.broker, replyQueue: replyQueue, logger: host.logger)
    host.addWorker(settings)
    let database = try host.addDatabase()
    let http = host.addHTTPClient()
    let ledger = JobLedger(client: database.client)
    let ending = JobEnding(broker: host.broker, ledger: ledger, logger: host.logger)
    let handler = ResultHandler(
        configuration: ingestor, http: http, store: MediaStore(client: database.client),
        variations: VariationStore(client: database.client), reviews: ReviewStore(client: database.client), ledger: ledger,
        files: MediaFiles(root: ingestor.mediaRoot), unapplied: PurgedFileStore(client: database.client), broker: host.broker, ending: ending, logger: host.logger,
        fidelityMode: { [logger = host.logger] in
            // The guard never waits for the settings-service: unknown settings take the default.
            do { return try await settings.typed().fidelityMode } catch {
                logger.notice("settings unknown; the fidelity guard restores by default", metadata: ["error": "\(error)"])
                return CycloramaSettings().fidelityMode
            }
        })
    host.addWorker(
        MessageConsumer(
            connection: host.broker, queue: Routing.Queue.generationRendered, prefetch: 8,
            handlingLimit: ingestor.handlingLimit, logger: host.logger,
            decode: decodeDelivery(GenerationRendered.self), giveUp: ending.giveUp(GenerationRendered.self),
            handle: { rendered, _ in
                try await database.waitUntilReady()
                return try await handler.handle(rendered)
            }))
    return host
}

/// Why a result cannot be used. A `transient` one (the result host does not answer, or answers
/// 5xx / 429) is waited for until ``IngestorConfiguration/retryWindow`` after the backend finished;
/// `expired` means the backend no longer has it (404 / 410).
struct IngestFailure: Error, CustomStringConvertible {
    var reason: String
    var transient: Bool
    var expired = false
    /// The job's failure code when it is not `invalid_output` (or `result_expired`).
    var code: FailureCode? = nil
    var description: String { reason }
}

/// Applies one finished generation: download (allowed hosts only, size cap, timeout), check that it
/// decodes; for a RunPod result, the fidelity guard (docs/fidelity.md), then its frame
/// (docs/framing.md) or the photo's geometry and the upscale (the local engine does all that
/// itself); store content-addressed, then ONE transaction (new
/// version, media points at it, job COMPLETED), then MediaUpdated and the terminal
/// GenerationCompleted (with `mediaVersionId`) on the events exchange and to `replyTo`.
///
/// Idempotent by job id: a redelivery after a crash finds the job COMPLETED and only publishes the
/// events again (consumers of those are idempotent too).
struct ResultHandler: Sendable {
    let configuration: IngestorConfiguration
    let http: HTTPClient
    let store: MediaStore
    let variations: VariationStore
    let reviews: ReviewStore
    let ledger: JobLedger
    let files: MediaFiles
    /// Where a stored result that is not applied goes, to be erased by the gateway's sweeper.
    let unapplied: PurgedFileStore
    let broker: AMQPConnection
    let ending: JobEnding
    let logger: Logger
    /// `aiImageFidelityMode`, read when a RunPod result arrives.
    var fidelityMode: @Sendable () async -> FidelityMode = { .restore }
    /// How result host names are resolved for the address rule.
    var resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve

    func handle(_ rendered: GenerationRendered, now: Date = Date()) async throws -> HandlingOutcome {
        var logger = logger
        logger[metadataKey: "jobId"] = "\(rendered.jobId)"
        // A result is applied only to the media its accepted job names, so a forged or misrouted
        // message changes nothing (and fails no job); decided before anything is downloaded.
        let job = try await ledger.job(rendered.jobId)
        if case .refused(let reason) = GenerationApplyOutcome.refusal(
            jobId: rendered.jobId, mediaId: rendered.mediaId, variation: rendered.kind == .variation,
            job: job.map { ($0.mediaId, $0.kind) }) {
            return .refuse(reason: reason)
        }
        // A redelivery after the result was applied (or after the job was cancelled) must not
        // depend on the result still being downloadable: decide from the ledger first.
        if let job, job.status.isTerminal {
            return try await settleEnded(rendered, job, logger: logger)
        }
        let stored: StoredFile
        do {
            stored = try await fetchAndStore(rendered)
        } catch let failure as IngestFailure {
            if failure.transient {
                let waited = now.timeIntervalSince(rendered.occurredAt)
                if waited < configuration.retryWindow.timeInterval {
                    // Held and tried again by the consumer, without using up a retry (an outage of the result host).
                    throw DependencyUnavailable("result host", failure.reason)
                }
                return try await fail(
                    rendered, .retriesExhausted,
                    "\(failure.reason); the result host did not deliver within INGEST_RETRY_SECONDS (\(configuration.retryWindow.components.seconds) s) of the backend finishing",
                    logger: logger)
            }
            return try await fail(rendered, failure.code ?? (failure.expired ? .resultExpired : .invalidOutput), failure.reason, logger: logger)
        }
        let result = GenerationResult(
            jobId: rendered.jobId, mediaId: rendered.mediaId, kind: rendered.kind.ledgerKind,
            batchId: rendered.batchId, variationName: rendered.variationName, correlationId: rendered.correlationId,
            backend: rendered.backend.rawValue, backendJobId: rendered.backendJobId, cost: rendered.cost ?? 0, file: stored,
            sourcePath: rendered.source?.path)
        if rendered.kind == .variation {
            // A candidate: kept beside the media, which changes only when it is chosen.
            return try await settleCandidate(rendered, stored, try await variations.applyVariation(result), logger: logger)
        }
        if let batchId = job?.batchId, try await reviews.isUnderReview(batch: batchId) {
            // A batch under review: kept as a candidate; the media changes once a person approves it.
            return try await settleCandidate(rendered, stored, try await reviews.keep(result), logger: logger)
        }
        let outcome = try await store.applyGeneration(result)
        try await abandonUnlessApplied(stored, outcome, logger: logger)
        switch outcome {
        case .applied(let versionId, let previous):
            logger.info("media updated", metadata: ["mediaId": "\(rendered.mediaId)", "versionId": "\(versionId)"])
            try await announce(rendered, versionId: versionId, previous: previous, file: stored, logger: logger)
        case .alreadyApplied(let versionId):
            logger.info("already applied; publishing the events again", metadata: ["versionId": "\(versionId)"])
            // A concurrent delivery applied its copy: this one's bytes, if they differ, are no one's.
            try await announce(rendered, versionId: versionId, previous: nil, file: stored, logger: logger)
        case .jobEnded(let status):
            logger.info("job already ended; result not applied", metadata: ["status": "\(status)"])
            if status == "CANCELLED" {
                // Cancelled after the backend finished: this is where the job's terminal event comes from.
                return try await fail(rendered, .cancelled, "cancelled on request", logger: logger)
            }
        case .mediaGone:
            return try await fail(rendered, .mediaNotFound, "media \(rendered.mediaId.uuidString.lowercased()) was deleted before its result arrived", logger: logger)
        case .refused(let reason):
            return .refuse(reason: reason)
        }
        return .done
    }

    /// Unless `outcome` is this copy applied, the stored result is one no row will refer to (another
    /// delivery's copy was applied, the job ended, the media is gone, the result was refused): queued
    /// (before the job's end is recorded, so a crash in between queues it again on redelivery) for the
    /// gateway's sweeper, which erases it once nothing refers to it and it was not stored again within
    /// the grace (docs/data.md).
    private func abandonUnlessApplied(_ stored: StoredFile, _ outcome: GenerationApplyOutcome, logger: Logger) async throws {
        if case .applied = outcome { return }
        try await unapplied.enqueue(stored.path)
        logger.info("result not applied; its file is queued for erasure", metadata: ["path": "\(stored.path)"])
    }

    /// After a result was kept as a candidate (a variation, or a batch item under review): the
    /// terminal event names the candidate; the media is unchanged.
    private func settleCandidate(
        _ rendered: GenerationRendered, _ stored: StoredFile, _ outcome: GenerationApplyOutcome, logger: Logger
    ) async throws -> HandlingOutcome {
        try await abandonUnlessApplied(stored, outcome, logger: logger)
        switch outcome {
        case .applied(let candidateId, _), .alreadyApplied(let candidateId):
            logger.info("result kept as a candidate", metadata: ["candidateId": "\(candidateId)"])
            try Task.checkCancellation()
            try await broker.publishTerminal(
                GenerationCompleted(applying: rendered, mediaVersionId: candidateId), replyTo: rendered.replyTo, logger: logger)
        case .jobEnded(let status):
            if status == "CANCELLED" { return try await fail(rendered, .cancelled, "cancelled on request", logger: logger) }
        case .mediaGone:
            return try await fail(rendered, .mediaNotFound, "media \(rendered.mediaId.uuidString.lowercased()) is gone", logger: logger)
        case .refused(let reason):
            return .refuse(reason: reason)
        }
        return .done
    }

    /// The events for a job that already ended: the terminal event again for COMPLETED (its first
    /// publication may have been lost in a crash), GenerationFailed `cancelled` for CANCELLED,
    /// nothing for FAILED (whoever failed it published that).
    private func settleEnded(_ rendered: GenerationRendered, _ job: JobRecord, logger: Logger) async throws -> HandlingOutcome {
        // A batch item kept for review has a candidate, whatever was decided since.
        var candidate: ReviewCandidate?
        if job.status == .completed, rendered.kind != .variation, let batchId = job.batchId {
            candidate = try await reviews.candidate(batch: batchId, job: job.id)
        }
        switch job.status {
        case .completed where rendered.kind == .variation:
            if let candidate = try await variations.variation(mediaId: rendered.mediaId, jobId: rendered.jobId) {
                try await broker.publishTerminal(
                    GenerationCompleted(applying: rendered, mediaVersionId: candidate.id), replyTo: rendered.replyTo, logger: logger)
            }
        case .completed where candidate != nil:
            // Kept for review (approved since or not): the terminal event names the candidate, as the first one did.
            try Task.checkCancellation()
            try await broker.publishTerminal(
                GenerationCompleted(applying: rendered, mediaVersionId: candidate!.id), replyTo: rendered.replyTo, logger: logger)
        case .completed:
            if let versionId = job.resultVersionId,
               let version = try await store.versions(of: rendered.mediaId).first(where: { $0.id == versionId }) {
                logger.info("already applied; publishing the events again", metadata: ["versionId": "\(versionId)"])
                try await announce(rendered, versionId: versionId, previous: nil, file: version.file, logger: logger)
            }
        case .cancelled:
            return try await fail(rendered, .cancelled, "cancelled on request", logger: logger)
        default:
            break
        }
        return .done
    }

    private func announce(
        _ rendered: GenerationRendered, versionId: UUID, previous: UUID?, file: StoredFile, logger: Logger
    ) async throws {
        // An attempt abandoned past the consumer's handling limit is cancelled: it must not speak for
        // the job after the next attempt did (it may have applied the result; the next one announces it).
        try Task.checkCancellation()
        // A broadcast for other systems (no Cyclorama service reads it): nobody listening is fine.
        try await broker.publish(MediaUpdated(
            correlationId: rendered.correlationId, jobId: rendered.jobId, mediaId: rendered.mediaId, versionId: versionId,
            previousVersionId: previous, sha256: file.sha256, width: file.width, height: file.height, mime: file.mimeType),
            mandatory: false)
        try await broker.publishTerminal(
            GenerationCompleted(applying: rendered, mediaVersionId: versionId), replyTo: rendered.replyTo, logger: logger)
    }

    private func fail(_ rendered: GenerationRendered, _ code: FailureCode, _ reason: String, logger: Logger) async throws -> HandlingOutcome {
        try Task.checkCancellation()
        try await ending.fail(rendered, code: code, reason: reason, retryable: true, backendJobId: rendered.backendJobId)
        return .done
    }

    // MARK: Download, check, upscale, store

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
        // A RunPod result is checked against the photo: did the product stay the product?
        if rendered.backend == .runpod {
            let mode = await fidelityMode()
            if mode != .off, let photo = try await sourcePhoto(of: rendered)?.url {
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
        if rendered.backend == .runpod, let source = try await sourcePhoto(of: rendered) {
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

    /// The photo the job was made from: the file its dispatch named, which stays in the store as one
    /// of the media's versions whatever the media shows now (a revert, another job's result, during
    /// the job). A `source` that is not a version of this media is not trusted (nor read): like a
    /// message from a dispatcher that predates `source`, the media's current file is used. Nil when
    /// there is nothing to compare with (the media is gone).
    func sourcePhoto(of rendered: GenerationRendered) async throws -> (url: URL, width: Int, height: Int)? {
        var file: StoredFile?
        if let source = rendered.source {
            file = try await store.versionFile(of: rendered.mediaId, path: source.path)
            if file == nil {
                logger.warning("the job's source is not a version of its media; the current file stands in", metadata: [
                    "jobId": "\(rendered.jobId)", "path": "\(source.path)",
                ])
            }
        }
        if file == nil { file = try await store.media(rendered.mediaId)?.file }
        guard let file, let url = files.url(for: file) else { return nil }
        return (url, file.width, file.height)
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

    /// Downloads a result, following at most ``IngestorConfiguration/maxRedirects`` redirects, each
    /// only to a host the result may come from (the HTTP client itself follows none). Every hop is
    /// checked before it connects, and a host allowed by name is connected to at the address that
    /// was checked.
    func download(_ reference: String, from backend: GenerationBackend) async throws -> [UInt8] {
        var location = reference
        var redirects = 0
        while true {
            let what = location == reference ? "" : " (a redirect from \(redactedURL(reference)))"
            guard let url = URL(string: location) else {
                throw IngestFailure(reason: "refused \(redactedURL(location))\(what): not a URL", transient: false)
            }
            let clearance = await configuration.clearance(url, from: backend, resolve: resolve)
            if let refusal = clearance.refusal {
                // A name that does not resolve now is waited for like a host that does not answer.
                throw IngestFailure(reason: "\(refusal.reason); refused \(redactedURL(location))\(what)", transient: refusal.isTransient)
            }
            let hop: DownloadHop
            do {
                hop = try await http.connecting(as: clearance) { client in try await self.hop(url, with: client) }
            } catch let failure as IngestFailure {
                throw failure
            } catch {
                throw IngestFailure(reason: "downloading \(redactedURL(location)) failed: \(error)", transient: true)
            }
            switch hop {
            case .result(let bytes):
                return bytes
            case .redirect(let target):
                redirects += 1
                guard redirects <= IngestorConfiguration.maxRedirects else {
                    throw IngestFailure(reason: "downloading \(redactedURL(reference)) redirected more than \(IngestorConfiguration.maxRedirects) times", transient: false)
                }
                location = target.absoluteString
            }
        }
    }

    /// What one request of a download got: the result, or where it moved.
    private enum DownloadHop {
        case result([UInt8])
        case redirect(URL)
    }

    /// One request of a download, its body read with the client it was made with.
    private func hop(_ url: URL, with client: HTTPClient) async throws -> DownloadHop {
        let location = url.absoluteString
        var request = HTTPClientRequest(url: location)
        request.headers.add(name: "Accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: TimeAmount(configuration.timeout))
        } catch {
            throw IngestFailure(reason: "downloading \(redactedURL(location)) failed: \(error)", transient: true)
        }
        if [301, 302, 303, 307, 308].contains(response.status.code) {
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard let next = response.headers.first(name: "Location"), let target = URL(string: next, relativeTo: url)?.absoluteURL else {
                throw IngestFailure(reason: "downloading \(redactedURL(location)) answered a redirect without a location", transient: false)
            }
            return .redirect(target)
        }
        guard response.status == .ok else {
            // 404/410: the backend no longer keeps it (RunPod results expire); other 4xx will not change either.
            let code = Int(response.status.code)
            throw IngestFailure(
                reason: "downloading \(redactedURL(location)) answered HTTP \(code)\(code == 404 || code == 410 ? " (the backend no longer keeps the result)" : "")",
                transient: code >= 500 || code == 429 || code == 408, expired: code == 404 || code == 410)
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > configuration.maxBytes {
            throw IngestFailure(reason: "the result is \(length) bytes; at most \(configuration.maxBytes) are accepted", transient: false)
        }
        do {
            return .result(Array(buffer: try await response.body.collect(upTo: configuration.maxBytes)))
        } catch is NIOTooManyBytesError {
            throw IngestFailure(reason: "the result is larger than \(configuration.maxBytes) bytes", transient: false)
        } catch {
            throw IngestFailure(reason: "reading \(redactedURL(location)) failed: \(error)", transient: true)
        }
    }
}
