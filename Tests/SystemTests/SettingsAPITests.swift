import Database
import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// The RunPod key through the whole system: write-only, encrypted at rest, never logged, and used
    /// by the dispatcher at once. (Validation of every key and the settings authority are
    /// ServiceTests' `SettingsAPITests`, on the gateway and the settings-service run in process.)
    @Suite("Settings API", .timeLimit(.minutes(15)))
    struct SettingsAPITests {
        static let key = "rpa_SETTINGSKEY_9f8e7d6c5b4a39281706"

        @Test func theRunPodKeyIsWriteOnlyEncryptedAtRestAndNeverLogged() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "keyed": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]])
            ])
            try await CycloramaSystem.run(overrides: [
                "runpod-dispatcher": ["RUNPOD_ENDPOINT_URL": standIn.endpointURL],
                "result-ingestor": ["INGEST_ALLOWED_HOSTS": "\(standIn.hostAndPort),$ENGINE"],
            ]) { system in
                let mediaId = try await system.upload(try Samples.bytes("dev08", "input.jpg"))
                // A first job on the local engine: every service has read (and cached) the settings.
                let first = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                let firstDone = try await system.waitForTerminal(first)
                #expect(firstDone["status"] as? String == "COMPLETED", "\(firstDone)\n\(system.logs())")

                let put = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"runpodApiKey": "\#(Self.key)", "aiImageBackend": "runpod"}"#)
                #expect(put.status == 200, "\(put.text)")
                let masked = try #require(try put.json()["settings"] as? [String: String])
                #expect(masked["runpodApiKey"] == "rpa_…" + Self.key.suffix(4), "masked: \(masked["runpodApiKey"] ?? "-")")
                #expect(!put.text.contains(Self.key))
                let read = try await system.call(.GET, "/api/ai-image/settings")
                #expect(!read.text.contains(Self.key), "never returned")
                // Sending the mask back (a form saved unchanged) keeps the key.
                let resend = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"runpodApiKey": "\#(masked["runpodApiKey"]!)"}"#)
                #expect(resend.status == 200)

                // At rest: sealed, not the key.
                let stored = try await SystemDatabase.withClient(system.database.url) { try await SettingsStore(client: $0).value(for: "runpodApiKey") }
                #expect(stored?.hasPrefix("v1:") == true, "stored sealed")
                #expect(stored?.contains(Self.key) == false)

                // Applied without a restart: the next job goes to RunPod with the key.
                let second = try #require(
                    try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:keyed"}"#).json()["jobId"] as? String)
                let done = try await system.waitForTerminal(second)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                #expect(done["backend"] as? String == "runpod")
                #expect(standIn.runs("keyed").first?.authorization == "Bearer \(Self.key)")

                for name in CycloramaSystem.serviceNames {
                    #expect(system.process(name)?.log().contains(Self.key) == false, "\(name) logged the key")
                }
            }
            await standIn.stop()
        }
    }
}
