import Foundation
import PostgresNIO
import Testing
import TestSupport

extension SystemSuites {
    /// The HTTP API as a tool that takes its OpenAPI document literally sees it (issue 19):
    /// schemathesis (pinned in scripts/python-tools.txt) runs every check in every phase — examples,
    /// coverage, fuzzing and stateful sequences along the document's links — against a whole
    /// running system, with the settings in Tests/Python/schemathesis.toml (its exceptions, each
    /// with its reason, are in docs/api.md). `make test` runs `SCHEMATHESIS_EXAMPLES` (20) cases per
    /// operation with a fixed seed; `make fuzz` runs it longer.
    ///
    /// Nothing leaves loopback: RunPod is the stand-in (it takes any key, so a switch to RunPod the
    /// fuzzer sends succeeds; it calls back only loopback webhooks), the engine is locked to the
    /// gateway, and the failed-token limit is raised so a fuzzer's many wrong tokens meet the 401s
    /// the document promises rather than the limiter's 429.
    @Suite("schemathesis against the gateway", .tags(.longestSystemTest), .timeLimit(.minutes(20)))
    struct SchemathesisTests {
        static let environment = ProcessInfo.processInfo.environment

        /// The lines of `output` from the heading holding `start` to the one holding `end`, each
        /// at most 400 characters.
        static func section(of output: String, from start: String, to end: String) -> String {
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            guard let first = lines.firstIndex(where: { $0.contains(start) }) else { return "" }
            let last = lines[first...].firstIndex(where: { $0.contains(end) }) ?? lines.endIndex
            return lines[first..<last].map { $0.prefix(400) }.joined(separator: "\n")
        }

        @Test func theAPIKeepsEveryPromiseOfItsDocument() async throws {
            let examples = Self.environment["SCHEMATHESIS_EXAMPLES"] ?? "20"
            let seed = Self.environment["SCHEMATHESIS_SEED"] ?? "20261204"
            let standIn = try await RunPodStandIn(
                scenarios: ["default": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]], fetchesInput: true)])
            defer { Task { await standIn.stop() } }
            try await CycloramaSystem.run(overrides: [
                "api-gateway": ["API_AUTH_FAILURE_BURST": "100000", "RUNPOD_ENDPOINT_URL": standIn.endpointURL],
                "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "200"],
            ]) { system in
                let document = try await system.call(.GET, "/api/openapi.json").json()
                let operations = (document["paths"] as? [String: [String: Any]] ?? [:]).values
                    .flatMap { $0.keys.filter { ["get", "put", "post", "delete", "patch"].contains($0) } }.count
                #expect(operations >= 27, "the document was read")
                let mediaId = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                let reportFile = try TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("schemathesis"))
                    .appendingPathComponent("report.json")
                let outcome = try await PythonTool.run(
                    "st",
                    [
                        "--config-file", PythonTool.script("schemathesis.toml"), "--no-color", "run", system.gatewayURL + "/api/openapi.json",
                        "-H", "Authorization: Bearer \(system.token)", "--checks", "all", "--max-examples", examples, "--seed", seed,
                        "--workers", "1", "--request-timeout", "30", "--report", "json", "--report-json-path", reportFile.path,
                    ],
                    // schemathesis_hooks.py: generated Idempotency-Keys never collide by chance.
                    environment: [
                        "CYCLORAMA_MEDIA_ID": mediaId, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                        "PYTHONPATH": TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Python").path,
                    ],
                    deadline: .seconds(900))
                // The whole output beside the report; the message shows the failures (their
                // requests, lines cut at 400 characters) and the summary.
                try Data(outcome.output.utf8).write(to: reportFile.deletingLastPathComponent().appendingPathComponent("output.txt"))
                let failures = Self.section(of: outcome.output, from: "FAILURES", to: "WARNINGS")
                let summary = failures + "\n" + outcome.output.suffix(4000)
                #expect(!outcome.output.contains(system.token), "the token is never printed")
                let report = try #require(
                    (try? JSONSerialization.jsonObject(with: Data(contentsOf: reportFile))) as? [String: Any],
                    "schemathesis wrote no report:\n\(summary)")
                #expect(outcome.status == 0 && report["exit_code"] as? Int == 0, "\(summary)\n\(system.logs())")
                #expect(report["complete"] as? Bool == true, "\(summary)")
                #expect((report["failures"] as? [Any])?.isEmpty == true, "\(report["failures"] ?? "none")\n\(summary)")
                #expect((report["errors"] as? [Any])?.isEmpty == true, "\(report["errors"] ?? "none")\n\(summary)")
                let counts = report["operations"] as? [String: Any] ?? [:]
                // Every operation but the one schemathesis read the document from (it leaves that one out).
                #expect(counts["total"] as? Int == operations - 1 && counts["tested"] as? Int == operations - 1, "\(counts)")
                let phases = report["phases"] as? [String: [String: Any]] ?? [:]
                #expect(Set(phases.keys) == ["examples", "coverage", "fuzzing", "stateful"], "\(phases)")
                for (name, phase) in phases {
                    #expect(phase["status"] as? String == "success", "phase \(name): \(phase)")
                }
                let generated = (report["test_cases"] as? [String: Any])?["generated"] as? Int ?? 0
                #expect(generated >= operations * 10, "\(generated) cases")
                // The fuzzer's generations reached the backend: the pinned media item is a real one.
                let jobs = try await SystemDatabase.withClient(system.database.url) { client in
                    var count = 0
                    let id = try #require(UUID(uuidString: mediaId))
                    for try await n in try await client.query("SELECT count(*)::int FROM generation_jobs WHERE media_id = \(id)").decode(Int.self) {
                        count = n
                    }
                    return count
                }
                #expect(jobs > 0, "no generation reached the pinned media")
            }
        }
    }
}
