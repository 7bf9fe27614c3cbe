import RunPod
import Foundation
import Testing
import TestSupport

@testable import LocalEngine

/// `policy.ttl`, result retention, and the API key.
@Suite("local-engine expiry and auth", .timeLimit(.minutes(2)))
struct ExpiryAndAuthTests {
    @Test func aJobPastItsTTLIsDeletedAndAnswers404() async throws {
        // The blocker outlasts the test; 10 s TTLs leave a loaded machine time to look first, and
        // the test then waits for the job to go, however late the engine's sweep comes.
        try await InProcessEngine.test(simulateMs: 600_000) { engine in
            let input = ["image": Samples.dataURI(Samples.tinyPNG)]
            let blocker = try await engine.run(input)
            _ = try await engine.wait(for: blocker, until: .inProgress)
            let submitted = ContinuousClock.now
            let queued = try await engine.run(input, policy: ["ttl": 10_000])
            #expect(try await engine.status(queued).status == 200)
            try await eventually("the queued job is gone") { try await engine.status(queued).status == 404 }
            #expect(ContinuousClock.now - submitted >= .seconds(10), "not before its TTL")
            #expect(try await engine.call(.POST, "/cancel/\(queued)").status == 404)
            // It left the queue: nothing is waiting behind the running job.
            #expect(try await engine.health().jobs.inQueue == 0)

            // A running job past its TTL goes too.
            _ = try await engine.call(.POST, "/cancel/\(blocker)")
            let running = try await engine.run(input, policy: ["ttl": 10_000])
            _ = try await engine.wait(for: running, until: .inProgress)
            try await eventually("the running job is gone") { try await engine.status(running).status == 404 }
        }
    }

    @Test func finishedJobsAndTheirImagesExpireAfterTheRetention() async throws {
        // Ten seconds: a loaded machine may take a few between the job's end and the first read.
        try await InProcessEngine.test(simulateMs: 10, environment: ["LOCAL_ENGINE_RESULT_TTL_SECONDS": "10"]) { engine in
            let done = try await engine.submit(["image": Samples.dataURI(Samples.tinyPNG)], path: "/runsync").decode(JobStatusBody.self)
            let url = try #require(done.output?.imageURL)
            #expect(try await engine.call(.GET, url).status == 200)
            try await Task.sleep(for: .milliseconds(10_500))
            #expect(try await engine.status(done.id).status == 404)
            #expect(try await engine.call(.GET, url).status == 404)
        }
    }

    @Test func aConfiguredKeyIsRequiredOnTheProtocolRoutes() async throws {
        let key = UUID().uuidString
        let engine = try await EngineHarness(simulateMs: 10, apiKey: key)
        defer { Task { await engine.stop() } }
        let body = Array("{\"input\": {\"image\": \"\(Samples.dataURI(Samples.tinyPNG))\"}}".utf8)

        let missing = try await engine.call(.POST, "/run", body: body, token: .some(nil))
        #expect(missing.status == 401)
        #expect(missing.text.contains("unauthorized"))
        #expect(try await engine.call(.POST, "/run", body: body, token: "wrong").status == 401)
        #expect(try await engine.call(.POST, "/run", body: body, token: key + "x").status == 401)
        #expect(try await engine.call(.GET, "/health", token: .some(nil)).status == 401)
        #expect(try await engine.call(.GET, "/status/whatever", token: "wrong").status == 401)

        let done = try await engine.call(.POST, "/runsync", body: body, token: key)
        #expect(done.status == 200)
        let job = try done.decode(JobStatusBody.self)
        #expect(job.status == .completed)
        // The result URL and the operations routes need no key.
        #expect(try await engine.call(.GET, try #require(job.output?.imageURL), token: .some(nil)).status == 200)
        #expect(await HTTPProbe.status(of: "http://127.0.0.1:\(engine.process.port)/healthz") == 200)
        let metrics = try await HTTPProbe.get("http://127.0.0.1:\(engine.process.port)/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("local_engine_jobs_total"))
    }
}
