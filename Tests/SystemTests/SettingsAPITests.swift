import Database
import Foundation
import Testing
import TestSupport

extension SystemSuites {
    /// `GET` / `PUT /api/ai-image/settings` through the settings-service: validation of every key, the
    /// RunPod key write-only and encrypted at rest, and changes applied by running services at once.
    @Suite("Settings API", .timeLimit(.minutes(15)))
    struct SettingsAPITests {
        static let key = "rpa_SETTINGSKEY_9f8e7d6c5b4a39281706"

        @Test func validationMatrix() async throws {
            try await CycloramaSystem.run(without: ["runpod-dispatcher", "result-ingestor", "local-engine", "prompt-service"]) { system in
                let contract = try await APIContract.load(from: system)
                let read = try await system.call(.GET, "/api/ai-image/settings")
                #expect(read.status == 200, "\(read.text)")
                contract.check(read, "get", "/api/ai-image/settings")
                let settings = try #require(try read.json()["settings"] as? [String: String])
                #expect(settings["aiImageBackend"] == "local")
                #expect(settings["runpodApiKey"] == "", "no key ships")

                let refused: [(String, String)] = [
                    (#"{"aiImageDefaultShadow": "spooky"}"#, "aiImageDefaultShadow"),
                    (#"{"aiImageInferenceSteps": 19}"#, "aiImageInferenceSteps"),
                    (#"{"aiImageInferenceSteps": 41}"#, "aiImageInferenceSteps"),
                    (#"{"aiImageGuidance": 5.5}"#, "aiImageGuidance"),
                    (#"{"aiImageGuidance": "1.9"}"#, "aiImageGuidance"),
                    (#"{"aiImageResolution": 1000}"#, "aiImageResolution"),
                    (#"{"aiImageMaxConcurrent": 0}"#, "aiImageMaxConcurrent"),
                    (#"{"aiImageMaxConcurrent": 11}"#, "aiImageMaxConcurrent"),
                    (#"{"aiImageDefaultBackground": "white"}"#, "aiImageDefaultBackground"),
                    (#"{"aiImageWebhookUrl": "ftp://example.com/hook"}"#, "aiImageWebhookUrl"),
                    (#"{"aiImageEnabled": "maybe"}"#, "aiImageEnabled"),
                    (#"{"aiImageBackend": "gpu"}"#, "aiImageBackend"),
                    (#"{"aiImageNonsense": "1"}"#, "aiImageNonsense"),
                    (#"{"runpodApiKey": "has spaces in it"}"#, "runpodApiKey"),
                    // Only the document's spellings: a blank key would otherwise clear the stored one.
                    (#"{"runpodApiKey": "   "}"#, "runpodApiKey"),
                    (#"{"aiImageDefaultShadow": "Dramatic"}"#, "aiImageDefaultShadow"),
                    (#"{"aiImageEnabled": "TRUE"}"#, "aiImageEnabled"),
                    (#"{"aiImageInferenceSteps": "032"}"#, "aiImageInferenceSteps"),
                    // Refused by the message's own validation: answered too, not a 503 after a timeout.
                    (#"{"": 2.0}"#, "updates"),
                ]
                for (body, field) in refused {
                    let answer = try await system.call(.PUT, "/api/ai-image/settings", json: body)
                    #expect(answer.status == 400, "\(body) → \(answer.status) \(answer.text)")
                    #expect(answer.error?.message.hasPrefix(field) == true, "\(body) → \(answer.text)")
                    contract.check(answer, "put", "/api/ai-image/settings")
                }
                // All or nothing: one bad key keeps the good one from being written.
                let mixed = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageInferenceSteps": 30, "aiImageResolution": 999}"#)
                #expect(mixed.status == 400)
                let unchanged = try #require(try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])
                #expect(unchanged["aiImageInferenceSteps"] == "28")

                let accepted = try await system.call(
                    .PUT, "/api/ai-image/settings",
                    json: ##"{"aiImageInferenceSteps": 32, "aiImageGuidance": 4.5, "aiImageResolution": "2048", "aiImageMaxConcurrent": 10, "aiImageDefaultBackground": "#f0f9ff", "aiImageEnableUpscaling": true, "aiImageWebhookUrl": "https://shop.example.com", "aiImageDefaultShadow": "dramatic"}"##)
                #expect(accepted.status == 200, "\(accepted.text)")
                contract.check(accepted, "put", "/api/ai-image/settings")
                #expect(try accepted.json()["message"] as? String == "Settings updated")
                let stored = try #require(try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])
                #expect(stored["aiImageInferenceSteps"] == "32")
                #expect(stored["aiImageGuidance"] == "4.5")
                #expect(stored["aiImageResolution"] == "2048")
                #expect(stored["aiImageDefaultBackground"] == "#F0F9FF", "stored normalised")
                #expect(stored["aiImageDefaultShadow"] == "dramatic")
                #expect(stored["aiImageEnableUpscaling"] == "true")
            }
        }

        /// A gateway holding another settings authority key than the settings-service's cannot change
        /// settings: a 500 that names the mismatch (not a 400 blaming the admin), and nothing changes.
        @Test func aGatewayWithTheWrongAuthorityKeyChangesNothing() async throws {
            try await CycloramaSystem.run(
                without: ["runpod-dispatcher", "result-ingestor", "local-engine", "prompt-service"],
                overrides: ["api-gateway": ["SETTINGS_AUTHORITY_KEY": String(repeating: "w", count: 40)]]
            ) { system in
                let answer = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageDefaultShadow": "dramatic"}"#)
                #expect(answer.status == 500, "\(answer.text)")
                let error = try #require(try answer.json()["error"] as? [String: Any])
                #expect(error["code"] as? String == "settings_authority_mismatch")
                #expect((error["message"] as? String)?.contains("SETTINGS_AUTHORITY_KEY") == true, "\(error)")
                let settings = try #require(try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: Any])
                #expect(settings["aiImageDefaultShadow"] as? String == "soft")
            }
        }

        @Test func switchingGenerationOffRefusesNewJobsWithAConflict() async throws {
            try await CycloramaSystem.run(without: ["runpod-dispatcher", "result-ingestor", "local-engine", "prompt-service"]) { system in
                let contract = try await APIContract.load(from: system)
                let mediaId = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                #expect(try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": false, "aiImageAbTestEnabled": true}"#).status == 200)
                let refusals = [
                    ("/api/ai-image/generate/\(mediaId)", "{}", "/api/ai-image/generate/{mediaId}"),
                    ("/api/ai-image/batch", #"{"mediaIds": ["\#(mediaId)"]}"#, "/api/ai-image/batch"),
                    ("/api/ai-image/variations/\(mediaId)", "{}", "/api/ai-image/variations/{mediaId}"),
                ]
                for (path, body, route) in refusals {
                    let refused = try await system.call(.POST, path, json: body)
                    #expect(refused.status == 409, "\(path): \(refused.text)")
                    #expect(refused.error?.code == "generation_disabled")
                    #expect(refused.error?.message.contains("aiImageEnabled") == true)
                    contract.check(refused, "post", route)
                }
                #expect(try await GenerationFlowTests.jobCount(system) == 0, "nothing was started")
                #expect(try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": true}"#).status == 200)
                #expect(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").status == 202)
            }
        }

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
