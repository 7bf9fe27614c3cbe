import RunPod
import Shared
import Foundation
import Testing
import TestSupport

@testable import LocalEngine

/// The RunPod protocol's status transitions, over a real socket, against the engine in simulated mode.
@Suite("local-engine job lifecycle", .timeLimit(.minutes(2)))
struct JobLifecycleTests {
    @Test func aJobGoesFromQueuedToInProgressToCompletedAndItsImageIsServed() async throws {
        // Seconds of simulated work, so a loaded machine still sees the job IN_PROGRESS.
        try await InProcessEngine.test(simulateMs: 10000) { engine in
            let image = Samples.tinyPNG
            let reply = try await engine.submit(["image": Samples.dataURI(image)])
            #expect(reply.status == 200)
            // RunPod's receipt: exactly {id, status}.
            #expect(Set(reply.json.keys) == ["id", "status"])
            let receipt = try reply.decode(JobReceipt.self)
            #expect(receipt.status == .inQueue)

            let running = try await engine.wait(for: receipt.id, until: .inProgress)
            #expect(running.output == nil && running.error == nil)
            #expect(running.delayTime != nil)
            #expect(running.workerId?.hasPrefix("local-engine-") == true)

            let done = try await engine.wait(for: receipt.id)
            #expect(done.status == .completed)
            #expect((done.executionTime ?? 0) >= 10000)
            #expect((done.delayTime ?? -1) >= 0)
            let output = try #require(done.output)
            #expect(output.width == 2 && output.height == 2)
            #expect(output.format == "png" && output.cost == 0)
            #expect(output.imageBase64 == nil, "not asked for")
            #expect(output.timings["total"] != nil && output.timings["fetch"] != nil)

            // The raw JSON uses RunPod's snake_case output keys.
            let raw = try await engine.status(receipt.id).json
            let rawOutput = try #require(raw["output"] as? [String: Any])
            #expect(rawOutput["image_url"] is String)
            #expect(raw["delayTime"] is Int && raw["executionTime"] is Int)

            // image_url serves the image (simulated mode hands back the input) without a key.
            let served = try await engine.call(.GET, output.imageURL)
            #expect(served.status == 200)
            #expect(served.body == image)
            let wrongFormat = try await engine.call(.GET, output.imageURL.replacingOccurrences(of: ".png", with: ".jpeg"))
            #expect(wrongFormat.status == 404)

            let health = try await engine.health()
            #expect(health.jobs.completed == 1 && health.jobs.inQueue == 0 && health.jobs.inProgress == 0)
            #expect(health.workers.idle == 1 && health.workers.running == 0)
            #expect(health.renderer.mode == "simulated" && health.renderer.simulatedLatencyMs == 10000)
        }
    }

    @Test func unknownJobsAre404AndAnyEndpointIdIsAccepted() async throws {
        try await InProcessEngine.test(simulateMs: 10) { engine in
            #expect(try await engine.status("no-such-job").status == 404)
            #expect(try await engine.call(.POST, "/cancel/no-such-job").status == 404)
            #expect(try await engine.call(.POST, "/retry/no-such-job").status == 404)
            let other = engine.base.replacingOccurrences(of: "/v2/", with: "/v2/another-endpoint-")
            let reply = try await engine.call(.GET, other + "/health")
            #expect(reply.status == 200)
        }
    }

    @Test func sigtermStopsTheEngineCleanlyAfterItsRunningJob() async throws {
        // A 12 s render the test sees running however slow the machine, within a grace that lets it end.
        let engine = try await EngineHarness(simulateMs: 12_000, environment: ["SHUTDOWN_GRACE_SECONDS": "60"])
        let id = try await engine.run(["image": Samples.dataURI(Samples.tinyPNG)])
        _ = try await engine.wait(for: id, until: .inProgress)
        let stopped = try #require(await engine.process.stop(timeout: .seconds(60)), "did not exit after SIGTERM")
        #expect(stopped.status == 0, "log:\n\(engine.process.log())")
        #expect(engine.process.log().contains("completed"), "the running job finished before exit")
    }

    @Test func runsyncAnswersTheFinishedJobOrItsCurrentStatus() async throws {
        // 5 s a job: the 100 ms wait below answers long before the job could end, however late.
        try await InProcessEngine.test(simulateMs: 5000) { engine in
            let image = Samples.tinyPNG

            // Waits long enough: the completed job, with the image inline when asked.
            let done = try await engine.submit(["image": Samples.dataURI(image), "returnBase64": true], path: "/runsync").decode(JobStatusBody.self)
            #expect(done.status == .completed)
            #expect(done.output?.imageBase64 == Data(image).base64EncodedString())
            #expect((done.executionTime ?? 0) >= 5000)

            // A short wait: still IN_PROGRESS (or IN_QUEUE), then poll as with RunPod.
            let early = try await engine.submit(["image": Samples.dataURI(image)], path: "/runsync?wait=100")
            #expect(early.status == 200)
            let body = try early.decode(JobStatusBody.self)
            #expect(body.status == .inProgress || body.status == .inQueue)
            #expect(try await engine.wait(for: body.id).status == .completed)

            // A bad wait value is a 400.
            #expect(try await engine.submit(["image": Samples.dataURI(image)], path: "/runsync?wait=soon").status == 400)
        }
    }

    @Test func cancellingAQueuedJobIsImmediateAndARunningJobsResultIsDiscarded() async throws {
        // A render that outlasts the test: however slow the machine, the first job is still running
        // when it is cancelled (an 8 s one once finished first on a machine busy starting two suites).
        try await InProcessEngine.test(simulateMs: 600_000) { engine in
            let input = ["image": Samples.dataURI(Samples.tinyPNG)]
            let first = try await engine.run(input)
            let second = try await engine.run(input)
            _ = try await engine.wait(for: first, until: .inProgress)
            #expect(try await engine.status(second).decode(JobStatusBody.self).status == .inQueue)

            let cancelQueued = try await engine.call(.POST, "/cancel/\(second)")
            #expect(cancelQueued.status == 200)
            #expect(try cancelQueued.decode(JobReceipt.self) == JobReceipt(id: second, status: .cancelled))
            #expect(try await engine.status(second).decode(JobStatusBody.self).status == .cancelled)

            let cancelRunning = try await engine.call(.POST, "/cancel/\(first)")
            #expect(try cancelRunning.decode(JobReceipt.self).status == .cancelled)
            // The slot frees at once (the simulated render stops), so a new job runs straight away. Its
            // own render would take 10 minutes: it can end by its 300 ms execution timeout only if it ran.
            let third = try await engine.run(input, policy: ["executionTimeout": 300])
            let ended = try await engine.wait(for: third, timeout: .seconds(30))
            #expect(ended.status == .timedOut, "\(ended)")
            let cancelled = try await engine.status(first).decode(JobStatusBody.self)
            #expect(cancelled.status == .cancelled && cancelled.output == nil)
            // A finished job stays as it is; cancel is idempotent.
            #expect(try await engine.call(.POST, "/cancel/\(third)").decode(JobReceipt.self).status == .timedOut)
            #expect(try await engine.call(.POST, "/cancel/\(first)").decode(JobReceipt.self).status == .cancelled)
            let health = try await engine.health()
            #expect(health.jobs.cancelled == 2 && health.jobs.timedOut == 1 && health.jobs.completed == 0)
        }
    }

    /// RunPod's `/purge-queue`: queued jobs end (CANCELLED, with the reason), the running one goes on.
    @Test func purgeQueueEndsTheQueuedJobsAndLeavesTheRunningOne() async throws {
        // A render long enough that under a loaded machine's delays the running job is still
        // running at the purge (at 6 s it once finished first and a queued job was running).
        try await InProcessEngine.test(simulateMs: 20_000) { engine in
            let input = ["image": Samples.dataURI(Samples.tinyPNG)]
            let running = try await engine.run(input)
            _ = try await engine.wait(for: running, until: .inProgress)
            let queued = [try await engine.run(input), try await engine.run(input)]
            let purge = try await engine.call(.POST, "/purge-queue")
            #expect(purge.status == 200, "\(purge.text)")
            #expect(try purge.decode(PurgeBody.self) == PurgeBody(removed: 2, status: "completed"))
            for id in queued {
                let body = try await engine.status(id).decode(JobStatusBody.self)
                #expect(body.status == .cancelled && body.error?.contains("purge") == true, "\(body)")
            }
            #expect(try await engine.status(running).decode(JobStatusBody.self).status == .inProgress, "a running job is not purged")
            #expect(try await engine.call(.POST, "/purge-queue").decode(PurgeBody.self).removed == 0)
            #expect(try await engine.status(running).decode(JobStatusBody.self).status == .inProgress, "nor by a second purge")
            #expect(try await engine.wait(for: running).status == .completed, "and it completes")
        }
    }

    /// RunPod's `/stream`: the stages the job reached, each handed out once, then its final output;
    /// a client asks until the status is terminal and nothing new came (as RunPod's SDK does).
    @Test func streamHandsOutEachStageOnceThenTheFinalOutput() async throws {
        try await InProcessEngine.test(simulateMs: 3000) { engine in
            let id = try await engine.run(["image": Samples.dataURI(Samples.tinyPNG)])
            var chunks: [JSONValue] = []
            var rounds = 0
            while true {
                rounds += 1
                let answer = try await engine.call(rounds % 2 == 0 ? .POST : .GET, "/stream/\(id)").decode(StreamBody.self)
                chunks += answer.stream
                if answer.status.isTerminal && answer.stream.isEmpty { break }
                try #require(rounds < 200, "the stream never ended")
                try await Task.sleep(for: .milliseconds(100))
            }
            let stages = chunks.compactMap { $0["output"]?["stage"]?.stringValue }
            #expect(stages == ["fetching", "rendering", "storing"], "\(chunks)")
            let final = try #require(chunks.last?["output"])
            #expect(final["image_url"]?.stringValue?.hasSuffix("/results/\(id).png") == true, "\(final)")
            #expect(try await engine.call(.GET, "/stream/no-such-job").status == 404)
        }
    }

    @Test func executionTimeoutEndsTimedOutAndRetryRunsTheSameIdAgain() async throws {
        try await InProcessEngine.test(simulateMs: 5000) { engine in
            let input = ["image": Samples.dataURI(Samples.tinyPNG)]
            let id = try await engine.run(input, policy: ["executionTimeout": 100])
            let timedOut = try await engine.wait(for: id)
            #expect(timedOut.status == .timedOut)
            #expect(timedOut.error?.contains("executionTimeout of 100 ms") == true, "\(timedOut.error ?? "")")
            // Cut short by the timeout, not run to the simulated 5 s.
            #expect((timedOut.executionTime ?? 0) >= 100 && (timedOut.executionTime ?? 0) < 4900)

            let retry = try await engine.call(.POST, "/retry/\(id)")
            #expect(retry.status == 200)
            #expect(try retry.decode(JobReceipt.self) == JobReceipt(id: id, status: .inQueue))
            #expect(try await engine.wait(for: id).status == .timedOut)
            #expect(try await engine.health().jobs.retried == 1)

            // Retrying anything but FAILED / TIMED_OUT is refused.
            let ok = try await engine.run(input)
            #expect(try await engine.wait(for: ok).status == .completed)
            let refused = try await engine.call(.POST, "/retry/\(ok)")
            #expect(refused.status == 400)
            #expect(refused.text.contains("COMPLETED"))

            // A FAILED job can be retried too (and fails again the same way).
            let bad = try await engine.run(["image": Samples.dataURI(Array("hello".utf8))])
            #expect(try await engine.wait(for: bad).status == .failed)
            #expect(try await engine.call(.POST, "/retry/\(bad)").decode(JobReceipt.self).status == .inQueue)
            #expect(try await engine.wait(for: bad).status == .failed)
        }
    }

    @Test func theQueueIsBoundedWith429() async throws {
        // The running job must outlast the test on a loaded machine, so the queue cannot drain.
        try await InProcessEngine.test(simulateMs: 60000, concurrency: 1, queueLimit: 2) { engine in
            let input = ["image": Samples.dataURI(Samples.tinyPNG)]
            let running = try await engine.run(input)
            _ = try await engine.wait(for: running, until: .inProgress)
            _ = try await engine.run(input)
            let last = try await engine.run(input)
            let rejected = try await engine.submit(input)
            #expect(rejected.status == 429, "\(rejected.text)")
            #expect(rejected.text.contains("queue is full"))
            #expect(rejected.headers["retry-after"].flatMap(Int.init).map { $0 >= 1 } == true, "429 says when to retry: \(rejected.headers)")
            #expect(try await engine.submit(input, path: "/runsync").status == 429)
            // Cancelling a queued job makes room again.
            _ = try await engine.call(.POST, "/cancel/\(last)")
            #expect(try await engine.submit(input).status == 200)
            let health = try await engine.health()
            #expect(health.jobs.inQueue == 2 && health.jobs.inProgress == 1 && health.workers.running == 1)
        }
    }

    @Test func bodiesOverRunPodsLimitsAreRefused() async throws {
        try await InProcessEngine.test(simulateMs: 10) { engine in
            let big = String(repeating: "A", count: 11 << 20)
            let body = Array("{\"input\": {\"image\": \"data:image/png;base64,\(big)\"}}".utf8)
            #expect(try await engine.call(.POST, "/run", body: body).status == 413)
            // /runsync allows 20 MB: accepted, and the image (8 MB decoded, not an image) fails.
            let accepted = try await engine.call(.POST, "/runsync", body: body)
            #expect(accepted.status == 200)
            #expect(try accepted.decode(JobStatusBody.self).status == .failed)
            #expect(try await engine.call(.POST, "/run", body: Array("not json".utf8)).status == 400)
            #expect(try await engine.call(.POST, "/run", body: Array("{\"input\": {}, \"webhook\": \"ftp://x\"}".utf8)).status == 400)
            #expect(try await engine.call(.POST, "/run", body: Array("{\"input\": {}, \"policy\": {\"ttl\": 0}}".utf8)).status == 400)
        }
    }
}
