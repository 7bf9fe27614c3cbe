import Foundation
import Testing
import TestSupport

/// Anyone with RunPod code can point it at the local engine: RunPod's official Python SDK
/// (`runpod`, pinned in scripts/python-tools.txt, installed in .var/venv by `make test`) runs every
/// call it offers against a real engine (Tests/Python/runpod_sdk_check.py).
@Suite("RunPod's SDK against the local engine", .timeLimit(.minutes(5)))
struct RunPodSDKTests {
    @Test func everyCallTheSDKOffersWorks() async throws {
        let key = "sdk-test-key-0123456789abcdef"
        // 6 s a render: the script's cancel and purge checks make up to six calls while one job runs,
        // and expect the jobs behind it still queued (at 2.5 s a loaded machine could miss that).
        let engine = try await EngineHarness(simulateMs: 6000, concurrency: 1, queueLimit: 8, apiKey: key, endpoint: "sdk-endpoint")
        defer { Task { await engine.stop() } }
        let base = String(engine.base.dropLast("/sdk-endpoint".count))
        let outcome = try await PythonTool.run(
            "python", [PythonTool.script("runpod_sdk_check.py")],
            environment: [
                "ENGINE_BASE": base, "RUNPOD_ENDPOINT_BASE_URL": base, "ENDPOINT_ID": "sdk-endpoint", "API_KEY": key,
                "IMAGE": Samples.dataURI(Samples.tinyPNG),
            ],
            deadline: .seconds(240))
        #expect(outcome.status == 0, "\(outcome.output)\nengine log:\n\(engine.process.log().suffix(3000))")
        let report = outcome.report
        #expect(report?["ok"] as? Bool == true, "\(outcome.output)")
        let calls = Set((report?["calls"] as? [String: Any] ?? [:]).keys)
        #expect(calls == ["health", "run_sync", "run", "stream", "cancel", "purge_queue", "retry", "asyncio"], "\(calls)")
    }
}
