import Foundation
import Testing
import TestSupport

/// `GET` / `PUT /api/ai-image/settings` through the settings-service, both run in process on a
/// broker virtual host of their own: validation of every key, and the settings authority. (The RunPod
/// key's path through the dispatcher is `SystemSuites.SettingsAPITests`.)
@Suite("Settings API in process", .timeLimit(.minutes(3)))
struct SettingsAPITests {
    @Test func validationMatrix() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let contract = try await APIContract.load(from: gateway)
            let read = try await gateway.call(.GET, "/api/ai-image/settings")
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
                let answer = try await gateway.call(.PUT, "/api/ai-image/settings", json: body)
                #expect(answer.status == 400, "\(body) → \(answer.status) \(answer.text)")
                #expect(answer.error?.message.hasPrefix(field) == true, "\(body) → \(answer.text)")
                contract.check(answer, "put", "/api/ai-image/settings")
            }
            // All or nothing: one bad key keeps the good one from being written.
            let mixed = try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageInferenceSteps": 30, "aiImageResolution": 999}"#)
            #expect(mixed.status == 400)
            let unchanged = try #require(try await gateway.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])
            #expect(unchanged["aiImageInferenceSteps"] == "28")

            let accepted = try await gateway.call(
                .PUT, "/api/ai-image/settings",
                json: ##"{"aiImageInferenceSteps": 32, "aiImageGuidance": 4.5, "aiImageResolution": "2048", "aiImageMaxConcurrent": 10, "aiImageDefaultBackground": "#f0f9ff", "aiImageEnableUpscaling": true, "aiImageWebhookUrl": "https://shop.example.com", "aiImageDefaultShadow": "dramatic"}"##)
            #expect(accepted.status == 200, "\(accepted.text)")
            contract.check(accepted, "put", "/api/ai-image/settings")
            #expect(try accepted.json()["message"] as? String == "Settings updated")
            let stored = try #require(try await gateway.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])
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
        try await InProcessGateway.test(environment: ["SETTINGS_AUTHORITY_KEY": String(repeating: "w", count: 40)], settingsService: true) { gateway in
            let answer = try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageDefaultShadow": "dramatic"}"#)
            #expect(answer.status == 500, "\(answer.text)")
            let error = try #require(try answer.json()["error"] as? [String: Any])
            #expect(error["code"] as? String == "settings_authority_mismatch")
            #expect((error["message"] as? String)?.contains("SETTINGS_AUTHORITY_KEY") == true, "\(error)")
            let settings = try #require(try await gateway.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: Any])
            #expect(settings["aiImageDefaultShadow"] as? String == "soft")
        }
    }

    @Test func switchingGenerationOffRefusesNewJobsWithAConflict() async throws {
        try await InProcessGateway.test(settingsService: true) { gateway in
            let contract = try await APIContract.load(from: gateway)
            let mediaId = try await gateway.upload(try Samples.bytes("dev05", "input.jpg"))
            #expect(try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": false, "aiImageAbTestEnabled": true}"#).status == 200)
            let refusals = [
                ("/api/ai-image/generate/\(mediaId)", "{}", "/api/ai-image/generate/{mediaId}"),
                ("/api/ai-image/batch", #"{"mediaIds": ["\#(mediaId)"]}"#, "/api/ai-image/batch"),
                ("/api/ai-image/variations/\(mediaId)", "{}", "/api/ai-image/variations/{mediaId}"),
            ]
            for (path, body, route) in refusals {
                let refused = try await gateway.call(.POST, path, json: body)
                #expect(refused.status == 409, "\(path): \(refused.text)")
                #expect(refused.error?.code == "generation_disabled")
                #expect(refused.error?.message.contains("aiImageEnabled") == true)
                contract.check(refused, "post", route)
            }
            #expect(try await gateway.jobCount() == 0, "nothing was started")
            #expect(try await gateway.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageEnabled": true}"#).status == 200)
            #expect(try await gateway.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").status == 202)
        }
    }
}
