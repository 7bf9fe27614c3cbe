import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// A client generated from the OpenAPI document by a maintained generator (openapi-python-client,
    /// pinned in scripts/python-tools.txt), used as it comes: upload -> generate -> status -> versions
    /// and a documented error, each answer parsed into the document's models (issue 19).
    /// Tests/Python/generated_client_check.py does the work; docs/api.md says what the generator
    /// leaves out (raw-image bodies and image downloads, which it cannot model).
    @Suite("A generated client", .timeLimit(.minutes(15)))
    struct GeneratedClientTests {
        @Test func uploadGenerateStatusVersionsWithoutHandEdits() async throws {
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "300"]]) { system in
                let out = try TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("generated-client"))
                let image = out.appendingPathComponent("sneaker.jpg")
                try Data(try Samples.bytes("dev05", "input.jpg")).write(to: image)
                let outcome = try await PythonTool.run(
                    "python", [PythonTool.script("generated_client_check.py"), TestEnvironment.repositoryRoot.path],
                    environment: ["GATEWAY_URL": system.gatewayURL, "TOKEN": system.token, "IMAGE": image.path, "OUT": out.path],
                    deadline: .seconds(240))
                #expect(outcome.status == 0, "\(outcome.output.suffix(4000))\n\(system.logs())")
                let report = try #require(outcome.report, "\(outcome.output.suffix(4000))")
                #expect(report["ok"] as? Bool == true, "\(report["errors"] ?? "")")
                let steps = Set((report["steps"] as? [String: Any] ?? [:]).keys)
                #expect(steps == ["generate the client", "upload", "generate", "status", "versions", "a documented error"], "\(steps)")
                #expect(!outcome.output.contains(system.token), "the token is never printed")
            }
        }
    }
}
