import Foundation
import Imaging
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// The `runpod` backend against a stand-in speaking RunPod's protocol: what the dispatcher sends
    /// (FLUX.1 Kontext's input exactly, the Bearer key) and how each kind of trouble ends (RUNPOD.md).
    @Suite("RunPod backend", .timeLimit(.minutes(15)))
    struct RunPodBackendTests {
        static let apiKey = "rpa_TESTKEY0123456789abcdefghijklmnop"

        @Test func kontextInputRetriesAndFailuresEndAsDocumented() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "happy": .init(runRejections: [429, 429], jobs: [[.inQueue, .inProgress("4/10"), .completed(["image_url": "$RESULT", "cost": 0.025])]]),
                "flaky": .init(jobs: [[.http(500), .http(502), .completed(["result": "$RESULT"])]]),
                "expired": .init(jobs: [[.inQueue, .http(404)], [.completed(["image_url": "$RESULT", "cost": 0.03])]]),
                "empty": .init(jobs: [[.inProgress(nil), .completed(nil)]]),
                "broken": .init(jobs: [[.failed(#"{"error_type": "OOM", "error_message": "CUDA out of memory"}"#)]]),
                "refused": .init(jobs: [[.completed(nil)]], refusedAtRun: "Invalid image URL"),
                "running": .init(jobs: [[.inQueue, .running, .running, .completed(["image_url": "$RESULT"])]]),
                "redirected": .init(jobs: [[.completed(["image_url": "$REDIRECTED"])]]),
                "away": .init(jobs: [[.completed(["image_url": "$REDIRECTED_AWAY"])]]),
            ])
            try await CycloramaSystem.run(overrides: standIn.overrides()) { system in
                // Links, not inline photos, so this test can follow the signed link RunPod is given.
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": Self.apiKey, "aiImageResolution": "1536", "runpodImageDelivery": "url"])
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))

                func start(_ scenario: String, upscale: Int = 1) async throws -> String {
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)",
                        json: #"{"customInstructions": "case:\#(scenario)", "upscale": \#(upscale)}"#)
                    guard answer.status == 202, let jobId = try answer.json()["jobId"] as? String else {
                        throw FixtureError(message: "generate for \(scenario): \(answer.status) \(answer.text)")
                    }
                    return jobId
                }
                let happy = try await start("happy", upscale: 2)
                let happyDone = try await system.waitForTerminal(happy)
                let happyFile = try await system.call(.GET, "/api/media/\(mediaId)/file")
                // One at a time: each result replaces the same media, so their versions stay in order.
                let flaky = try await system.waitForTerminal(try await start("flaky"))
                let expired = try await system.waitForTerminal(try await start("expired"))
                let empty = try await system.waitForTerminal(try await start("empty"))
                let broken = try await system.waitForTerminal(try await start("broken"))
                let redirected = try await system.waitForTerminal(try await start("redirected"))
                let away = try await system.waitForTerminal(try await start("away"))
                let refused = try await system.waitForTerminal(try await start("refused"))
                let running = try await system.waitForTerminal(try await start("running"))

                // 429 on /run twice, then accepted: retried with backoff; the result and its cost recorded.
                #expect(happyDone["status"] as? String == "COMPLETED", "\(happyDone)\n\(system.logs())")
                #expect(happyDone["cost"] as? Double == 0.025)
                #expect(happyDone["backend"] as? String == "runpod")
                let runs = standIn.runs("happy")
                #expect(runs.count == 3, "two 429s, then the accepted submission")
                let call = try #require(runs.last)
                #expect(call.authorization == "Bearer \(Self.apiKey)")
                let input = try #require(call.body["input"]?.objectValue)
                #expect(Set(input.keys) == ["prompt", "image", "negative_prompt", "size", "num_inference_steps", "guidance", "seed",
                                            "output_format", "enable_safety_checker"], "the Kontext schema, nothing else: \(input.keys.sorted())")
                #expect(input["prompt"]?.stringValue?.contains("Replace the background with a clean professional pure white studio background.") == true)
                #expect(input["size"] == "1536*1536", "from aiImageResolution")
                #expect(input["num_inference_steps"] == 28)
                #expect(input["guidance"]?.doubleValue == 3.5)
                #expect(input["seed"] == -1)
                #expect(input["output_format"] == "png")
                #expect(input["negative_prompt"] == "")
                #expect(input["enable_safety_checker"] == true)
                #expect(call.body["policy"]?["executionTimeout"]?.intValue != nil, "a per-job policy bounds the job at RunPod too")
                #expect(!call.body.encodedText.contains(Self.apiKey), "the key never goes into the body (RunPod echoes input)")
                // The image is a link RunPod can fetch without our API token, to the exact file the
                // job was asked for (served from disk: the gateway need not reach PostgreSQL for it).
                let image = try #require(input["image"]?.stringValue)
                #expect(image.hasPrefix(system.gatewayURL + "/media/\(mediaId)/file?v="), "\(image.prefix(80))")
                let fetched = try await HTTPProbe.send(.GET, image)
                #expect(fetched.status == 200, "the signed link works without a token")
                let history = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                let original = try #require(history.last?["id"] as? String)
                let asked = try await system.call(.GET, "/api/media/\(mediaId)/versions/\(original)/file")
                #expect(fetched.body == asked.body, "the link serves the file the job was asked for, not whatever is current later")
                var forged = image
                forged.replaceSubrange(forged.index(before: forged.endIndex)..., with: forged.hasSuffix("0") ? "1" : "0")
                #expect(try await HTTPProbe.send(.GET, forged).status == 403, "a tampered signature is refused")
                // The result keeps the photo's geometry, as the local engine's: the 64x48 render
                // is given the square photo's 1024x1024 (its centre kept), then RunPod does not
                // upscale, so the ingestor did (2x); the result's transparency survived both.
                let media = try #require(happyDone["media"] as? [String: Any])
                #expect(media["width"] as? Int == 2048 && media["height"] as? Int == 2048, "\(media)")
                let stored = try ImageCodec.decode(happyFile.body, maxPixels: 2048 * 2048, keepAlpha: true)
                #expect(stored.bands == 4, "the enlarged result keeps its alpha")
                if stored.bands == 4, stored.width == 2048 {
                    // The product's right edge (x = 42 of 64) lands at about 2 x (42 x 1024/48 - 171) = 1450.
                    func alpha(_ x: Int, _ y: Int) -> UInt8 { stored.pixels[(y * 2048 + x) * 4 + 3] }
                    #expect(alpha(100, 1000) == 255 && alpha(1300, 1000) == 255, "opaque stays opaque")
                    #expect(alpha(1600, 1000) == 0 && alpha(2040, 1000) == 0, "transparent stays transparent")
                }

                // 5xx on /status: retried; `output.result` is accepted like `image_url`.
                #expect(flaky["status"] as? String == "COMPLETED", "\(flaky)\n\(system.logs())")

                // 404 after expiry: the job is lost, submitted again once, and completes.
                #expect(expired["status"] as? String == "COMPLETED", "\(expired)")
                #expect(standIn.runs("expired").count == 2)
                #expect(expired["cost"] as? Double == 0.03)

                // A result behind a redirect is followed within the allowed hosts, and only there
                // (the refusal comes before any connection to the other host).
                #expect(redirected["status"] as? String == "COMPLETED", "\(redirected)")
                #expect(away["status"] as? String == "FAILED")
                let awayError = try #require(away["error"] as? [String: Any])
                #expect(awayError["code"] as? String == "invalid_output")
                #expect((awayError["message"] as? String)?.contains("refused http://203.0.113.9/result.png (a redirect from") == true, "\(awayError)")

                // COMPLETED without output: FAILED with a reason.
                #expect(empty["status"] as? String == "FAILED")
                let emptyError = try #require(empty["error"] as? [String: Any])
                #expect(emptyError["code"] as? String == "invalid_output")
                #expect((emptyError["message"] as? String)?.contains("without an output") == true, "\(emptyError)")

                // FAILED: the reason from RunPod's (JSON) error string.
                #expect(broken["status"] as? String == "FAILED")
                let brokenError = try #require(broken["error"] as? [String: Any])
                #expect(brokenError["code"] as? String == "backend_failed")
                #expect((brokenError["message"] as? String)?.contains("CUDA out of memory") == true, "\(brokenError)")

                // A /run answered 400 with a FAILED job ends the job at once with RunPod's message,
                // never submitted again.
                #expect(refused["status"] as? String == "FAILED")
                let refusedError = try #require(refused["error"] as? [String: Any])
                #expect(refusedError["code"] as? String == "backend_failed")
                #expect((refusedError["message"] as? String)?.contains("Invalid image URL") == true, "\(refusedError)")
                #expect(standIn.runs("refused").count == 1)

                // RUNNING is followed as IN_PROGRESS, without a warning.
                #expect(running["status"] as? String == "COMPLETED", "\(running)")
                #expect(standIn.runs("running").count == 1)
                #expect(system.process("runpod-dispatcher")?.log().contains("unknown backend status") == false)

                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 6, "the upload plus the five completed jobs, once each")
            }
            await standIn.stop()
        }

        /// FLUX's image (here the scene's clean photo, as if FLUX had returned it) is framed by the
        /// ingestor as the local engine frames a photo: the product measured from its matte with the
        /// same segmenter, on pure white.
        @Test func aRunPodResultIsFramedAsTheLocalEngineFramesAPhoto() async throws {
            let clean = try Samples.bytes("dev02", "clean.png")
            let standIn = try await RunPodStandIn(
                scenarios: ["framed": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.02])]])], result: clean)
            try await CycloramaSystem.run(overrides: standIn.overrides()) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "runpodApiKey": Self.apiKey])
                let mediaId = try await system.upload(try Samples.bytes("dev02", "input.jpg"))
                let answer = try await system.call(
                    .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:framed", "framing": "amazon", "shadowStyle": "none"}"#)
                #expect(answer.status == 202, "\(answer.text)")
                let done = try await system.waitForTerminal(try #require(try answer.json()["jobId"] as? String))
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                let input = try #require(standIn.runs("framed").last?.body["input"]?.objectValue)
                #expect(input["framing"] == nil, "FLUX is not asked to frame: \(input.keys.sorted())")

                let file = try await system.call(.GET, "/api/media/\(mediaId)/file")
                let shot = try RasterImage(decoding: file.body)
                #expect(shot.width == shot.height && (1600...2000).contains(shot.width), "\(shot.width)x\(shot.height)")
                // The product (away from white) spans 85 % of the side, centred; the rest is pure white.
                let side = shot.width
                var (x0, y0, x1, y1) = (side, side, -1, -1)
                var pure = 0
                for y in 0..<side {
                    for x in 0..<side {
                        let i = (y * side + x) * shot.bands
                        let (r, g, b) = (shot.pixels[i], shot.pixels[i + 1], shot.pixels[i + 2])
                        if r == 255 && g == 255 && b == 255 { pure += 1; continue }
                        if Int(r) + Int(g) + Int(b) < 3 * 235 { (x0, y0, x1, y1) = (min(x0, x), min(y0, y), max(x1, x), max(y1, y)) }
                    }
                }
                let long = Double(max(x1 - x0, y1 - y0) + 1) / Double(side)
                #expect(abs(long - 0.85) < 0.04, "the product takes \(long) of the side")
                #expect(abs(Double(x0 + x1) / 2 / Double(side) - 0.5) < 0.04 && abs(Double(y0 + y1) / 2 / Double(side) - 0.5) < 0.04, "\((x0, y0, x1, y1))")
                #expect(Double(pure) / Double(side * side) > 0.5, "the background is pure white")
            }
            await standIn.stop()
        }

        /// The fidelity guard (docs/fidelity.md) on results a generative backend could return for a
        /// photo: a faithful one and a moved one are kept as they are; one whose label was redrawn
        /// gets the photo's product back (the default, restore); a recoloured one fails the job with
        /// `product_changed` when the setting says reject. The status API shows each verdict.
        @Test func theFidelityGuardKeepsRestoresOrRejectsAsTheSettingSays() async throws {
            let scene = try SampleScene(folder: try Samples.folder("dev02"))
            var scenarios: [String: RunPodStandIn.Scenario] = [:]
            for kind in [SyntheticResult.faithful, .moved, .labelRedrawn, .recoloured] {
                scenarios[kind.rawValue.lowercased()] = .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.02])]], result: try kind.render(scene))
            }
            let standIn = try await RunPodStandIn(scenarios: scenarios)
            try await CycloramaSystem.run(overrides: standIn.overrides()) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "runpodApiKey": Self.apiKey])
                let contract = try await APIContract.load(from: system)
                let seeded = try await system.call(.GET, "/api/ai-image/settings").json()["settings"] as? [String: Any]
                #expect(seeded?["aiImageFidelityMode"] as? String == "restore", "restore is the default")
                func run(_ kind: SyntheticResult) async throws -> (mediaId: String, status: [String: Any]) {
                    let mediaId = try await system.upload(scene.input)
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(kind.rawValue.lowercased())"}"#)
                    guard answer.status == 202, let jobId = try answer.json()["jobId"] as? String else {
                        throw FixtureError(message: "generate: \(answer.status) \(answer.text)")
                    }
                    _ = try await system.waitForTerminal(jobId)
                    let status = try await system.call(.GET, "/api/ai-image/status/\(jobId)")
                    contract.check(status, "get", "/api/ai-image/status/{jobId}")
                    return (mediaId, try status.json())
                }
                func verdict(_ status: [String: Any]) -> (score: Double, decision: String)? {
                    guard let fidelity = status["fidelity"] as? [String: Any], let score = fidelity["score"] as? Double,
                          let decision = fidelity["decision"] as? String else { return nil }
                    #expect(fidelity["threshold"] as? Double == FidelityGuard.threshold)
                    return (score, decision)
                }
                let pipeline = try StudioShotPipeline()
                let photo = try pipeline.cutOut(scene.input, removeWatermark: true)

                for kind in [SyntheticResult.faithful, .moved] {
                    let (mediaId, status) = try await run(kind)
                    #expect(status["status"] as? String == "COMPLETED", "\(status)\n\(system.logs())")
                    let seen = verdict(status)
                    #expect(seen?.decision == "kept" && (seen?.score ?? 0) >= FidelityGuard.threshold, "\(kind): \(status)")
                    let file = try await system.call(.GET, "/api/media/\(mediaId)/file")
                    #expect(file.body == (try kind.render(scene)), "\(kind): the result is stored as it came")
                }

                let (restoredMedia, restored) = try await run(.labelRedrawn)
                #expect(restored["status"] as? String == "COMPLETED", "\(restored)\n\(system.logs())")
                let seen = verdict(restored)
                #expect(seen?.decision == "restored" && (seen?.score ?? 1) < FidelityGuard.threshold, "\(restored)")
                // What replaced the media has the photo's product: the guard finds it unchanged now,
                // where the redrawn result scored below the threshold.
                let stored = try await system.call(.GET, "/api/media/\(restoredMedia)/file").body
                let after = FidelityGuard.compare(photo, try pipeline.cutOut(stored, removeWatermark: false))
                let before = FidelityGuard.compare(photo, try pipeline.cutOut(try SyntheticResult.labelRedrawn.render(scene), removeWatermark: false))
                #expect(after.score >= FidelityGuard.threshold && after.score > before.score, "restored \(after.description); redrawn \(before.description)")

                try await system.updateSettings(["aiImageFidelityMode": "reject"])
                let (_, rejected) = try await run(.recoloured)
                #expect(rejected["status"] as? String == "FAILED", "\(rejected)")
                let error = rejected["error"] as? [String: Any]
                #expect(error?["code"] as? String == "product_changed", "\(rejected)")
                #expect((error?["message"] as? String)?.contains("of the product unchanged") == true, "\(rejected)")
                #expect(verdict(rejected)?.decision == "rejected", "\(rejected)")
            }
            await standIn.stop()
        }

        /// A job is made from the file the media showed when it was asked for; if the media shows
        /// another by the time the result arrives (reverted during the job), the guard still compares
        /// the result with the photo it was made from, never pastes the other photo's pixels, and
        /// the result gets the size of the photo it was made from.
        @Test func aResultIsCheckedAgainstThePhotoItWasMadeFromWhenTheMediaChangesDuringTheJob() async throws {
            let bottle = try SampleScene(folder: try Samples.folder("dev02"))
            let standIn = try await RunPodStandIn(scenarios: [
                "bottle": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.02])]], result: bottle.input),
                "held": .init(jobs: [[.holdUntilReleased]], result: try SyntheticResult.faithful.render(bottle)),
            ])
            try await CycloramaSystem.run(overrides: standIn.overrides()) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "runpodApiKey": Self.apiKey, "aiImageFidelityMode": "off"])
                func generate(_ mediaId: String, _ body: String) async throws -> String {
                    let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: body)
                    guard answer.status == 202, let jobId = try answer.json()["jobId"] as? String else {
                        throw FixtureError(message: "generate: \(answer.status) \(answer.text)")
                    }
                    return jobId
                }
                func shown(_ mediaId: String) async throws -> RasterImage {
                    try RasterImage(decoding: try await system.call(.GET, "/api/media/\(mediaId)/file").body)
                }
                // Version 1 is a white box, 1024 px; version 2 the bottle's photo enlarged 2x (a
                // result the guard, off, keeps as it came), 2048 px.
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                let box = try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["currentVersionId"] as? String
                let first = try await system.waitForTerminal(try await generate(mediaId, #"{"customInstructions": "case:bottle", "upscale": 2}"#))
                #expect(first["status"] as? String == "COMPLETED", "\(first)\n\(system.logs())")
                #expect(try await shown(mediaId).width == 2048)

                // A job made from the bottle; while RunPod runs it, the media is reverted to the box.
                try await system.updateSettings(["aiImageFidelityMode": "restore"])
                let jobId = try await generate(mediaId, #"{"customInstructions": "case:held"}"#)
                try await eventually("the job is at RunPod") { !standIn.runs("held").isEmpty }
                #expect(try await system.call(.POST, "/api/media/\(mediaId)/revert/\(try #require(box))").status == 200)
                #expect(try await shown(mediaId).width == 1024)
                standIn.release("held")
                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                let status = try await system.call(.GET, "/api/ai-image/status/\(jobId)").json()
                let fidelity = status["fidelity"] as? [String: Any]
                #expect(fidelity?["decision"] as? String == "kept" && (fidelity?["score"] as? Double ?? 0) >= FidelityGuard.threshold,
                        "compared with the bottle it was made from, not the box the media showed: \(status)")
                // The result is applied (the box stays in the history, a revert away) at the size of
                // the photo it was made from, not the box's.
                let result = try await shown(mediaId)
                #expect(result.width == 2048 && result.height == 2048, "\(result.width)x\(result.height)")
            }
            await standIn.stop()
        }

        @Test func costsAreRecordedAndTheMonthlyBudgetStopsNewRunPodRequests() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "priced": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]]),
                "unpriced": .init(jobs: [[.completed(["image_url": "$RESULT"])]]),
            ])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides()) { system in
                let contract = try await APIContract.load(from: system)
                let put = try await system.call(
                    .PUT, "/api/ai-image/settings",
                    json: #"{"aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": "\#(Self.apiKey)", "aiImageMonthlyBudget": 0.05}"#)
                #expect(put.status == 200, "\(put.text)")
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                func run(_ scenario: String) async throws -> [String: Any] {
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(scenario)"}"#)
                    let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                    return try await system.waitForTerminal(jobId)
                }
                let priced = try await run("priced")
                #expect(priced["cost"] as? Double == 0.025, "RunPod's output.cost")
                let unpriced = try await run("unpriced")
                // No output.cost: aiImagePricePerMegapixel (0.03) x the output's size, the one asked for
                // the current file (the first run's result: the square photo went out as 1024*1024).
                #expect(standIn.runs("priced").first?.body["input"]?["size"] == "1024*1024")
                let size = try #require(standIn.runs("unpriced").first?.body["input"]?["size"]?.stringValue)
                let sides = size.split(separator: "*").compactMap { Double($0) }
                let expected = 0.03 * sides.reduce(1, *) / 1_000_000
                #expect(sides.count == 2 && expected > 0.025, "\(size)")
                #expect(abs((unpriced["cost"] as? Double ?? 0) - expected) < 0.000_01, "\(unpriced)")

                // 0.025 + about 0.031 reaches the budget of 0.05: new RunPod requests are refused.
                let refused = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}")
                #expect(refused.status == 402, "\(refused.text)")
                #expect(refused.error?.code == "budget_exhausted")
                #expect(refused.error?.message.contains("aiImageMonthlyBudget") == true)
                contract.check(refused, "post", "/api/ai-image/generate/{mediaId}")
                let batch = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": ["\#(mediaId)"]}"#)
                #expect(batch.status == 402)
                // The local engine is free: switching back works at once.
                let local = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageBackend": "local"}"#)
                #expect(local.status == 200)
                let accepted = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}")
                #expect(accepted.status == 202, "\(accepted.text)")
            }
            await standIn.stop()
        }

        /// `runpodImageDelivery`: with the default `auto` and the gateway on loopback, the photo goes
        /// inside the `/run` body (shrunk to the model's side, its aspect kept); with `url`, as the
        /// signed link, and a worker that could not fetch it gets the job again.
        @Test func thePhotoGoesInlineWhenTheMediaLinksAreNotPublicAndAsALinkWhenAsked() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "default": .init(jobs: [[.runFor(.milliseconds(300))]], fetchesInput: true),
            ])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides()) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": Self.apiKey, "aiImageResolution": "1024"])
                func run(_ mediaId: String) async throws -> [String: Any] {
                    let answer = try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}")
                    let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                    return try await system.waitForTerminal(jobId)
                }
                func sentImage(_ index: Int) throws -> String {
                    let runs = standIn.runs("default")
                    try #require(runs.count > index, "\(runs.count) runs")
                    return try #require(runs[index].body["input"]?["image"]?.stringValue)
                }
                func inlineBytes(_ image: String) throws -> [UInt8] {
                    #expect(image.hasPrefix("data:image/jpeg;base64,"), "\(image.prefix(60))")
                    let payload = try #require(image.range(of: ";base64,").map { String(image[$0.upperBound...]) })
                    return [UInt8](try #require(Data(base64Encoded: payload)))
                }

                // A 1024x1024 JPEG within every limit travels as it is.
                let photo = try Samples.bytes("dev06", "input.jpg")
                let small = try await system.upload(photo)
                let first = try await run(small)
                #expect(first["status"] as? String == "COMPLETED", "\(first)\n\(system.logs())")
                #expect(try inlineBytes(try sentImage(0)) == photo, "the uploaded bytes, unchanged")

                // A 1600x1200 PNG is shrunk to the long side of the model's size for it (1184*880), 4:3 kept, as a JPEG.
                var pixels = [UInt8](repeating: 90, count: 1600 * 1200 * 3)
                for y in 0..<1200 {
                    for x in 0..<1600 {
                        pixels[(y * 1600 + x) * 3] = UInt8(x * 255 / 1599)
                        pixels[(y * 1600 + x) * 3 + 1] = UInt8(y * 255 / 1199)
                    }
                }
                let large = try ImageCodec.encode(pixels, width: 1600, height: 1200, bands: 3, format: .png)
                let big = try await system.upload(large)
                let second = try await run(big)
                #expect(second["status"] as? String == "COMPLETED", "\(second)")
                let sent = try ImageCodec.decodeRGB(try inlineBytes(try sentImage(1)), maxPixels: 2_000_000)
                #expect(sent.width == 1184 && sent.height == 888, "\(sent.width)x\(sent.height)")
                // Kontext's size follows the photo: square for the square one, 4:3 for this one.
                #expect(standIn.runs("default")[0].body["input"]?["size"] == "1024*1024")
                #expect(standIn.runs("default")[1].body["input"]?["size"] == "1184*880")
                // ... and the result comes back with the photo's geometry: 1600x1200, 4:3.
                let secondMedia = try #require(second["media"] as? [String: Any])
                #expect(secondMedia["width"] as? Int == 1600 && secondMedia["height"] as? Int == 1200, "\(secondMedia)")

                // `url`: the signed link; the worker's first download fails, the job is submitted again.
                let changed = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"runpodImageDelivery": "url"}"#)
                #expect(changed.status == 200, "\(changed.text)")
                standIn.inject { $0.failInputFetches = 1 }
                let third = try await run(small)
                #expect(third["status"] as? String == "COMPLETED", "\(third)\n\(system.logs())")
                let linked = try sentImage(2)
                #expect(linked.hasPrefix(system.gatewayURL + "/media/\(small)/file?v="), "\(linked.prefix(80))")
                #expect(standIn.runs("default").count == 4, "the link's job ran twice: its worker could not fetch the image the first time")
            }
            await standIn.stop()
        }

        @Test func aStuckJobHitsItsDeadlineAndResultsAreOnlyTakenFromAllowedHostsAsSmallImages() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "stuck": .init(jobs: [[.inQueue]]),
                "foreign": .init(jobs: [[.completed(["image_url": "http://203.0.113.9/result.png"])]]),
                "garbage": .init(jobs: [[.completed(["image_url": "$FILES/not-an-image.png"])]]),
                "damaged": .init(jobs: [[.completed(["image_url": "$FILES/cut-short.png"])]]),
                "large": .init(jobs: [[.completed(["image_url": "$FILES/large.jpg"])]]),
            ])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides(dispatcher: ["DISPATCH_JOB_DEADLINE_SECONDS": "9"], ingestor: ["INGEST_MAX_BYTES": "4096"])) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": Self.apiKey])
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                func run(_ scenario: String) async throws -> [String: Any] {
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(scenario)"}"#)
                    let jobId = try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                    return try await system.waitForTerminal(jobId)
                }
                func error(_ status: [String: Any]) -> (code: String, message: String) {
                    let error = status["error"] as? [String: Any]
                    return (error?["code"] as? String ?? "-", error?["message"] as? String ?? "-")
                }
                // Stuck IN_QUEUE: the deadline fails it and cancels it at RunPod.
                let stuck = try await run("stuck")
                #expect(stuck["status"] as? String == "FAILED")
                #expect(error(stuck).code == "timed_out", "\(stuck)")
                #expect(error(stuck).message.contains("deadline"), "\(error(stuck).message)")
                #expect(standIn.cancels().contains(standIn.jobId("stuck", 0)), "cancelled at the backend: \(standIn.cancels())")
                // A 9 s deadline (6 s left a loaded machine little room to dispatch the other cases)
                // is below RunPod's minimum ttl: the policy keeps to RunPod's floor (the stand-in
                // refuses less, as RunPod does) and the dispatcher keeps the deadline itself.
                let policy = try #require(standIn.runs("stuck").first?.body["policy"])
                #expect(policy["ttl"] == 10_000 && policy["executionTimeout"] == 9_000, "\(policy)")

                let foreign = try await run("foreign")
                #expect(foreign["status"] as? String == "FAILED")
                #expect(error(foreign).code == "invalid_output")
                #expect(error(foreign).message.contains("INGEST_ALLOWED_HOSTS"), "\(error(foreign).message)")

                let garbage = try await run("garbage")
                #expect(garbage["status"] as? String == "FAILED")
                #expect(error(garbage).code == "invalid_output")
                #expect(error(garbage).message.contains("not a PNG, JPEG, WebP or GIF"), "\(error(garbage).message)")

                // Checked like an upload, before anything else is done with it: whole, or refused.
                let damaged = try await run("damaged")
                #expect(damaged["status"] as? String == "FAILED")
                #expect(error(damaged).code == "invalid_output")
                #expect(error(damaged).message.contains("damaged PNG"), "\(error(damaged).message)")

                let large = try await run("large")
                #expect(large["status"] as? String == "FAILED")
                #expect(error(large).message.contains("4096"), "the size cap: \(error(large).message)")

                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 1, "no refused result reached the media")
            }
            await standIn.stop()
        }

        @Test func aSubmissionWhoseAnswerWasLostIsNeverSentTwice() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "lost": .init(jobs: [[.runFor(.milliseconds(800))]]),
                "found": .init(jobs: [[.runFor(.milliseconds(800))]]),
            ])
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides()) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": Self.apiKey])
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                func start(_ scenario: String) async throws -> String {
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(scenario)"}"#)
                    return try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                }
                // RunPod accepts the job, and its answer is lost on the way back. Without a webhook
                // nothing can name that job again: it is not sent twice, and the job says why.
                standIn.inject { $0.loseRunAnswers = 1 }
                let lost = try await system.waitForTerminal(try await start("lost"))
                #expect(lost["status"] as? String == "FAILED", "\(lost)")
                let error = try #require(lost["error"] as? [String: Any])
                #expect(error["code"] as? String == "submission_unconfirmed")
                #expect((error["message"] as? String)?.contains("webhooks") == true, "\(error)")
                #expect(standIn.runs("lost").count == 1, "one /run: never paid twice")

                // With webhooks on, the job's webhook names it when it ends, and the job completes on it.
                // Through the API: the change is broadcast, so every service has it at once.
                let changed = try await system.call(
                    .PUT, "/api/ai-image/settings", json: #"{"aiImageEnableWebhooks": true, "aiImageWebhookUrl": "\#(system.gatewayURL)"}"#)
                #expect(changed.status == 200, "\(changed.text)")
                standIn.inject { $0.loseRunAnswers = 1 }
                let foundJob = try await start("found")
                let found = try await system.waitForTerminal(foundJob)
                #expect(found["status"] as? String == "COMPLETED", "\(found)\n\(system.logs())")
                #expect(standIn.runs("found").count == 1, "one /run")
                #expect(standIn.runs("found").first?.answerLost == true)
            }
            await standIn.stop()
        }

        @Test func withoutAnAPIKeyTheJobFailsAndSaysWhy() async throws {
            try await CycloramaSystem.run(without: ["local-engine"]) { system in
                try await system.updateSettings(["aiImageBackend": "runpod", "aiImageFidelityMode": "off"])
                let mediaId = try await system.upload(try Samples.bytes("dev06", "input.jpg"))
                let jobId = try #require(try await system.call(.POST, "/api/ai-image/generate/\(mediaId)", json: "{}").json()["jobId"] as? String)
                let done = try await system.waitForTerminal(jobId)
                #expect(done["status"] as? String == "FAILED")
                let message = (done["error"] as? [String: Any])?["message"] as? String
                #expect(message?.contains("runpodApiKey") == true, "\(done)")
            }
        }
    }
}
