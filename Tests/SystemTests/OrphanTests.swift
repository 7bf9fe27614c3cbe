import Foundation
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// A job ended here whose backend job could not be cancelled keeps its slot and is cancelled
    /// again until the backend confirms (docs/reliability.md, I3 and I4).
    @Suite("Orphans", .timeLimit(.minutes(15)))
    struct OrphanTests {
        @Test func aCancelThatDoesNotGetThroughKeepsTheSlotUntilTheOrphanSweepCancelsIt() async throws {
            let standIn = try await RunPodStandIn(scenarios: [
                "held": .init(jobs: [[.holdUntilReleased]]),
                "next": .init(jobs: [[.runFor(.milliseconds(300))]]),
            ])
            try await CycloramaSystem.run(
                without: ["local-engine"],
                overrides: standIn.overrides(dispatcher: ["DISPATCH_ORPHAN_SWEEP_SECONDS": "1"])
            ) { system in
                try await system.updateSettings([
                    "aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": RunPodBackendTests.apiKey, "aiImageMaxConcurrent": "1",
                ])
                let mediaId = try await system.upload(try Samples.bytes("dev04", "input.jpg"))
                func generate(_ scenario: String) async throws -> String {
                    let answer = try await system.call(
                        .POST, "/api/ai-image/generate/\(mediaId)", json: #"{"customInstructions": "case:\#(scenario)"}"#)
                    return try #require(try answer.json()["jobId"] as? String, "\(answer.text)")
                }
                let held = try await generate("held")
                try await eventually("the first job is at the backend") { standIn.runs("held").count == 1 }

                // RunPod refuses every cancel until the test lifts it (however slow the machine, the
                // checks below run while it lasts): the job ends here, but still runs there.
                standIn.inject {
                    $0.cancelStorm = 503
                    $0.cancelStormUntil = .now + .seconds(3600)
                }
                #expect(try await system.call(.POST, "/api/ai-image/jobs/\(held)/cancel").status == 200)
                let next = try await generate("next")
                // Time for the sweep (every second) to try, and fail, a few times.
                try await Task.sleep(for: .seconds(3))
                #expect(standIn.runs("next").isEmpty, "the orphan still holds the only slot")
                #expect(standIn.backendJobs().first { $0.id == standIn.jobId("held", 0) }?.cancelled == false)

                // Once RunPod answers, the sweep cancels the orphan, frees its slot, and the next job runs.
                standIn.inject { $0.cancelStorm = nil }
                let done = try await system.waitForTerminal(next, timeout: .seconds(60))
                #expect(done["status"] as? String == "COMPLETED", "\(done)")
                #expect(standIn.backendJobs().first { $0.id == standIn.jobId("held", 0) }?.cancelled == true, "cancelled at the backend in the end")
                #expect(standIn.peakActive() == 1, "never two at the backend with a limit of 1")
                #expect(try await system.call(.GET, "/api/ai-image/status/\(held)").json()["status"] as? String == "CANCELLED")
            }
            await standIn.stop()
        }
    }
}
