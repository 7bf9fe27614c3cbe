import Foundation
import Testing
import TestSupport

/// Anyone with RunPod code can point it at the local engine: RunPod's official Python SDK
/// (`runpod`, pinned in scripts/python-tools.txt, installed in .var/venv by `make test`) runs every
/// call it offers against a real engine (Tests/Python/runpod_sdk_check.py).
@Suite("RunPod's SDK against the local engine", .timeLimit(.minutes(3)))
struct RunPodSDKTests {
    @Test func everyCallTheSDKOffersWorks() async throws {
        let python = TestEnvironment.repositoryRoot.appendingPathComponent(".var/venv/bin/python")
        try #require(
            FileManager.default.isExecutableFile(atPath: python.path),
            "RunPod's SDK is not installed: run make python-tools (make test does)")
        let key = "sdk-test-key-0123456789abcdef"
        let engine = try await EngineHarness(simulateMs: 2500, concurrency: 1, queueLimit: 8, apiKey: key, endpoint: "sdk-endpoint")
        defer { Task { await engine.stop() } }
        let base = String(engine.base.dropLast("/sdk-endpoint".count))

        // Output to a file and a polled exit, so a hung script can neither block a thread of the
        // test pool nor outlive its deadline: it is killed then.
        let outputFile = try TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("sdk")).appendingPathComponent("output.txt")
        try #require(FileManager.default.createFile(atPath: outputFile.path, contents: nil))
        let output = try FileHandle(forWritingTo: outputFile)
        let process = Process()
        process.executableURL = python
        process.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Python/runpod_sdk_check.py").path]
        process.environment = [
            "ENGINE_BASE": base, "RUNPOD_ENDPOINT_BASE_URL": base, "ENDPOINT_ID": "sdk-endpoint", "API_KEY": key,
            "IMAGE": Samples.dataURI(Samples.tinyPNG), "PATH": "/usr/bin:/bin", "NO_PROXY": "*", "no_proxy": "*",
        ]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = ContinuousClock.now + .seconds(150)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        if process.isRunning { process.terminate() }
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        try output.close()
        let text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(text)\nengine log:\n\(engine.process.log().suffix(3000))")
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        let report = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        #expect(report?["ok"] as? Bool == true, "\(text)")
        let calls = Set((report?["calls"] as? [String: Any] ?? [:]).keys)
        #expect(calls == ["health", "run_sync", "run", "stream", "cancel", "purge_queue", "retry", "asyncio"], "\(calls)")
    }
}
