import RunPod
import Foundation
import Testing
import TestSupport

@testable import LocalEngine

/// What lets a client whose answer was lost, or an engine that restarted, lose nothing and run
/// nothing twice (docs/reliability.md): idempotent submissions, and results that outlive a restart.
@Suite("local-engine resubmission and restarts", .timeLimit(.minutes(2)))
struct ResubmissionTests {
    @Test func aSubmissionSentAgainWithItsIdempotencyKeyGetsTheSameJob() async throws {
        let engine = try await EngineHarness(simulateMs: 200)
        defer { Task { await engine.stop() } }
        let input: [String: Any] = ["image": Samples.dataURI(Samples.tinyPNG)]
        let key = [("Idempotency-Key", "job-\(UUID().uuidString):1")]
        let first = try await engine.submit(input, headers: key).decode(JobReceipt.self)
        let again = try await engine.submit(input, headers: key).decode(JobReceipt.self)
        #expect(again.id == first.id, "the answer to the repeat names the first job")
        let other = try await engine.submit(input, headers: [("Idempotency-Key", "job-\(UUID().uuidString):1")]).decode(JobReceipt.self)
        #expect(other.id != first.id, "another key is another job")
        let plain = try await engine.submit(input).decode(JobReceipt.self)
        #expect(plain.id != first.id)
        _ = try await engine.wait(for: first.id)
        // Still the same job once it has ended: a late repeat does not run it again.
        #expect(try await engine.submit(input, headers: key).decode(JobReceipt.self).id == first.id)
        let health = try await engine.health()
        #expect(health.jobs.completed + health.jobs.inQueue + health.jobs.inProgress == 3, "three jobs ran, not five: \(health.jobs)")
    }

    @Test func aResultAnnouncedBeforeACrashCanStillBeDownloadedAfterTheRestart() async throws {
        let port = freePort()
        let results = try TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("engine-results")).path
        let endpoint = TestEnvironment.uniqueName("endpoint")
        let first = try await EngineHarness(simulateMs: 10, port: port, resultsDirectory: results, endpoint: endpoint)
        let done = try await first.submit(["image": Samples.dataURI(Samples.tinyPNG)], path: "/runsync").decode(JobStatusBody.self)
        let url = try #require(done.output?.imageURL)
        let before = try await first.call(.GET, url)
        #expect(before.status == 200)
        await first.process.crash()

        let second = try await EngineHarness(simulateMs: 10, port: port, resultsDirectory: results, endpoint: endpoint)
        defer { Task { await second.stop() } }
        let after = try await second.call(.GET, url)
        #expect(after.status == 200, "the result is still there: \(after.text.prefix(200))")
        #expect(after.body == before.body)
        #expect(try await second.status(done.id).status == 404, "the job itself did not survive the crash: a client submits again")
    }
}
