import Foundation
import Imaging
import Testing
import TestSupport

extension SystemSuites {
    /// Switching the backend to RunPod says so before it costs money: the key and the endpoint are
    /// checked with RunPod's `/health` at the switch, "Test connection" reports the same check, and a
    /// dispatcher whose configuration became unusable says why in `/healthz` and its log.
    @Suite("Switching to RunPod", .timeLimit(.minutes(15)))
    struct RunPodSwitchTests {
        static let good = "rpa_SWITCHGOOD_0123456789abcdef"
        static let wrong = "rpa_SWITCHWRONG_0123456789abcdef"

        @Test func aSwitchIsCheckedWithRunPodsHealthAndRefusedWhenRunPodWouldRefuse() async throws {
            let standIn = try await RunPodStandIn(
                scenarios: ["default": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]])],
                acceptedKeys: [Self.good])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides(dispatcher: ["DISPATCH_RUNPOD_CHECK_SECONDS": "1"])) { system in
                let contract = try await APIContract.load(from: system)
                func backend() async throws -> String? {
                    try (try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])?["aiImageBackend"]
                }
                func put(_ json: String) async throws -> HTTPAnswer {
                    let answer = try await system.call(.PUT, "/api/ai-image/settings", json: json)
                    contract.check(answer, "put", "/api/ai-image/settings")
                    return answer
                }

                // No key: refused, nothing changed.
                let keyless = try await put(#"{"aiImageBackend": "runpod"}"#)
                #expect(keyless.status == 409, "\(keyless.text)")
                #expect(keyless.error?.code == "runpod_key_missing")
                #expect(keyless.error?.message.contains("runpodApiKey") == true, "\(keyless.text)")
                #expect(try await backend() == "local")

                // A key RunPod refuses: refused, neither the backend nor the key stored, the key never echoed.
                let wrong = try await put(#"{"aiImageBackend": "runpod", "runpodApiKey": "\#(Self.wrong)"}"#)
                #expect(wrong.status == 400, "\(wrong.text)")
                #expect(wrong.error?.code == "runpod_key_refused")
                #expect(wrong.error?.message.contains("stays local") == true, "\(wrong.text)")
                #expect(!wrong.text.contains(Self.wrong))
                #expect(try await backend() == "local")
                let settings = try #require(try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: String])
                #expect(settings["runpodApiKey"] == "", "the refused key was not stored")
                #expect(standIn.allRuns().isEmpty, "no job was sent")

                // "Test connection": the typed key, then the stored one (none yet).
                let tested = try await system.call(.POST, "/api/ai-image/settings/test-connection", json: #"{"runpodApiKey": "\#(Self.good)"}"#)
                contract.check(tested, "post", "/api/ai-image/settings/test-connection")
                let report = try tested.json()
                #expect(tested.status == 200 && report["ok"] as? Bool == true, "\(tested.text)")
                #expect(report["endpoint"] as? String == standIn.endpointURL)
                #expect((report["health"] as? [String: Any])?["workers"] != nil, "\(tested.text)")
                let untyped = try await system.call(.POST, "/api/ai-image/settings/test-connection", body: nil)
                #expect(try untyped.json()["ok"] as? Bool == false && untyped.json()["code"] as? String == "runpod_key_missing", "\(untyped.text)")

                // The right key: switched, and a job completes on RunPod.
                let switched = try await put(#"{"aiImageBackend": "runpod", "runpodApiKey": "\#(Self.good)"}"#)
                #expect(switched.status == 200, "\(switched.text)")
                #expect(try await backend() == "runpod")
                let mediaId = try await system.upload(try Samples.bytes("dev03", "input.jpg"))
                let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")

                // A new key while on RunPod is checked too; the stored one with an empty body stays in use.
                let badChange = try await put(#"{"runpodApiKey": "\#(Self.wrong)"}"#)
                #expect(badChange.status == 400 && badChange.error?.code == "runpod_key_refused", "\(badChange.text)")
                let stored = try await system.call(.POST, "/api/ai-image/settings/test-connection", body: nil)
                #expect(try stored.json()["ok"] as? Bool == true, "the stored key: \(stored.text)")

                // The dispatcher: ready, then RunPod revokes the key: /healthz and the log say why.
                let dispatcherHealth = "http://127.0.0.1:\(system.ports["runpod-dispatcher"]!)/healthz"
                func runpodDetail() async throws -> String? {
                    let (_, body) = try await HTTPProbe.get(dispatcherHealth)
                    let report = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                    return (report?["detail"] as? [String: String])?["runpod"]
                }
                try await eventually("the dispatcher's RunPod check says ready", timeout: .seconds(30)) {
                    try await runpodDetail()?.hasPrefix("ready") == true
                }
                // Photos sent as links while the gateway is on loopback: RunPod could not fetch them.
                #expect(try await put(#"{"runpodImageDelivery": "url"}"#).status == 200)
                try await eventually("the dispatcher's /healthz says RunPod cannot fetch the photos", timeout: .seconds(30)) {
                    try await runpodDetail()?.contains("MEDIA_BASE_URL (\(system.gatewayURL)) is not a public address") == true
                }
                #expect(try await put(#"{"runpodImageDelivery": "auto"}"#).status == 200)
                try await eventually("ready again with photos inline", timeout: .seconds(30)) {
                    try await runpodDetail()?.hasPrefix("ready") == true
                }
                standIn.acceptKeys(["rpa_SOMEOTHERKEY_0000000000"])
                try await eventually("the dispatcher's /healthz says the key is refused", timeout: .seconds(30)) {
                    try await runpodDetail()?.contains("RunPod refused the API key") == true
                }
                #expect(await HTTPProbe.status(of: dispatcherHealth) == 200, "a note, not an outage: local jobs still run")
                let log = system.process("runpod-dispatcher")?.log() ?? ""
                #expect(log.contains("the RunPod configuration is unusable") && log.contains("runpod_key_refused"))

                // A dispatcher that starts with that configuration says why from its first check.
                _ = await system.process("runpod-dispatcher")?.stop()
                let before = (system.process("runpod-dispatcher")?.log() ?? "").utf8.count
                try system.launch("runpod-dispatcher")
                try await system.waitUntilHealthy("runpod-dispatcher")
                try await eventually("a fresh dispatcher's /healthz says the key is refused", timeout: .seconds(15)) {
                    try await runpodDetail()?.contains("unusable: RunPod refused the API key") == true
                }
                let freshLog = String(decoding: (system.process("runpod-dispatcher")?.log() ?? "").utf8.dropFirst(before), as: UTF8.self)
                #expect(freshLog.contains("the RunPod configuration is unusable") && freshLog.contains("runpod_key_refused"), "\(freshLog.suffix(3000))")
                for name in CycloramaSystem.serviceNames {
                    for key in [Self.good, Self.wrong] {
                        #expect(system.process(name)?.log().contains(key) != true, "\(name) logged a key")
                    }
                }
            }
            await standIn.stop()
        }

        /// An endpoint that does not exist is refused at the switch with its own reason.
        @Test func anEndpointThatDoesNotExistIsRefusedAtTheSwitch() async throws {
            let standIn = try await RunPodStandIn(scenarios: [:], acceptedKeys: [Self.good])
            try await CycloramaSystem.run(
                without: ["local-engine", "prompt-service", "result-ingestor"],
                overrides: ["runpod-dispatcher": ["RUNPOD_ENDPOINT_URL": standIn.baseURL + "/v2/no-such-endpoint"]]
            ) { system in
                let answer = try await system.call(
                    .PUT, "/api/ai-image/settings", json: #"{"aiImageBackend": "runpod", "runpodApiKey": "\#(Self.good)"}"#)
                #expect(answer.status == 400, "\(answer.text)")
                #expect(answer.error?.code == "runpod_endpoint_not_found")
                #expect(answer.error?.message.contains("RUNPOD_ENDPOINT_URL") == true, "\(answer.text)")
            }
            await standIn.stop()
        }
    }
}

extension SystemSuites.RunPodSwitchTests {
    /// Issue 20's "done when": from the defaults, with only the RunPod endpoint pointed at the
    /// stand-in (one variable, read by every service as `make up` passes it), switching to RunPod
    /// with a key completes a job: the photo goes inline (the gateway is on loopback), the result
    /// comes from the endpoint's origin, and it has the photo's geometry.
    @Test func onlyTheEndpointAndAKeyAreNeeded() async throws {
        let standIn = try await RunPodStandIn(
            scenarios: ["default": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]], fetchesInput: true)],
            acceptedKeys: [Self.good])
        try await CycloramaSystem.run(without: ["local-engine"], overrides: [
            "runpod-dispatcher": ["RUNPOD_ENDPOINT_URL": standIn.endpointURL]
        ]) { system in
            let put = try await system.call(
                .PUT, "/api/ai-image/settings", json: #"{"aiImageBackend": "runpod", "runpodApiKey": "\#(Self.good)"}"#)
            #expect(put.status == 200, "\(put.text)")
            let mediaId = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
            let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
            let done = try await system.waitForTerminal(jobId)
            #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
            #expect(done["backend"] as? String == "runpod" && done["cost"] as? Double == 0.025)
            let image = try #require(standIn.runs("default").first?.body["input"]?["image"]?.stringValue)
            #expect(image.hasPrefix("data:image/"), "inline: \(image.prefix(40))")
            let media = try #require(done["media"] as? [String: Any])
            let photo = try ImageCodec.decodeRGB(try Samples.bytes("dev05", "input.jpg"), maxPixels: 50_000_000)
            #expect(media["width"] as? Int == photo.width && media["height"] as? Int == photo.height, "\(media)")
        }
        await standIn.stop()
    }
}
