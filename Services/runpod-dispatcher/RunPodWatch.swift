import Foundation
import Logging
import RunPod
import ServiceCore
import ServiceSupport
import Shared
import Synchronization

/// While the backend is `runpod`, asks RunPod's `/health` with the configured key (at start and
/// every `DISPATCH_RUNPOD_CHECK_SECONDS`): an unusable configuration (no key, a refused key, no
/// such endpoint, RunPod unreachable, or photos sent as links RunPod cannot reach) is logged when
/// it starts and ends, and `/healthz` shows the last verdict as `detail.runpod`. Jobs are not refused here: the gateway checks at the switch,
/// and a job on an unusable configuration waits out an outage or fails with RunPod's own answer.
final class RunPodWatch: Sendable {
    let probe: RunPodProbe
    /// The `aiImageBackend` setting (throws while it cannot be known).
    let backend: @Sendable () async throws -> GenerationBackend
    /// The RunPod key, opened.
    let key: @Sendable () async throws -> String?
    /// Why RunPod could not fetch the photos as they are sent now, or nil.
    let unreachablePhotos: @Sendable () async -> String?
    let logger: Logger
    private let verdict = Mutex<String?>(nil)

    init(
        probe: RunPodProbe, backend: @escaping @Sendable () async throws -> GenerationBackend,
        key: @escaping @Sendable () async throws -> String?,
        unreachablePhotos: @escaping @Sendable () async -> String? = { nil }, logger: Logger
    ) {
        self.probe = probe
        self.backend = backend
        self.key = key
        self.unreachablePhotos = unreachablePhotos
        self.logger = logger
    }

    /// `/healthz`'s `detail.runpod`: the last verdict, absent before the first check.
    var detail: HealthDetail { HealthDetail(name: "runpod") { [self] in verdict.withLock { $0 } } }

    func check() async throws {
        guard try await backend() == .runpod else {
            verdict.withLock { $0 = "not in use (aiImageBackend is not runpod)" }
            return
        }
        var readiness = await probe.check(key: try await key())
        if readiness.isReady, let problem = await unreachablePhotos() {
            readiness = .unusable(code: "runpod_photos_unreachable", message: problem)
        }
        let text = readiness.isReady ? readiness.summary : "unusable: \(readiness.summary)"
        let previous = verdict.withLock { value -> String? in
            defer { value = text }
            return value
        }
        switch readiness {
        case .unusable(let code, let message) where previous != text:
            logger.error("the RunPod configuration is unusable; RunPod jobs will fail or wait", metadata: [
                "code": "\(code)", "reason": "\(message)", "endpoint": "\(probe.endpoint)",
            ])
        case .ready where previous?.hasPrefix("unusable") ?? true:
            logger.info("RunPod endpoint ready", metadata: ["endpoint": "\(probe.endpoint)", "health": "\(text)"])
        default:
            break
        }
    }
}
