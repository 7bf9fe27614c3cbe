import Database
import Foundation
import PostgresNIO
import Testing
import TestSupport

/// The job ledger, idempotency records and the one-transaction apply, on a fresh database each.
@Suite("Job ledger")
struct JobLedgerTests {
    func withMedia<T>(_ body: (PostgresClient, MediaRecord) async throws -> T) async throws -> T {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let media = try await MediaStore(client: client).create(
                collection: "PRODUCTS", originalFilename: "a.jpg",
                file: StoredFile(path: "aa/bb/a.jpg", mimeType: "image/jpeg", width: 10, height: 10, bytes: 100,
                                 sha256: String(repeating: "a", count: 64)))
            return try await body(client, media)
        }
    }

    @Test func aJobOnlyMovesForwardAndTheFirstEndWins() async throws {
        try await withMedia { client, media in
            let ledger = JobLedger(client: client)
            let id = UUID()
            try await ledger.insert(NewJob(id: id, mediaId: media.id, correlationId: "c"))
            #expect(try await ledger.job(id)?.status == .queued)
            #expect(try await ledger.advance(id, to: .submitted, backend: "runpod", backendJobId: "rp-1") == true)
            #expect(try await ledger.advance(id, to: .prompting) == false, "a late PROMPTING does not move it back")
            #expect(try await ledger.advance(id, to: .inProgress) == true)
            let job = try #require(try await ledger.job(id))
            #expect(job.status == .inProgress)
            #expect(job.backend == "runpod" && job.backendJobId == "rp-1")
            #expect(job.submittedAt != nil)
            #expect(try await ledger.cancel(id) == .cancelled)
            #expect(try await ledger.cancel(id) == .alreadyCancelled)
            #expect(try await ledger.fail(id, code: "backend_failed", message: "late") == false, "a terminal state stays")
            #expect(try await ledger.advance(id, to: .downloading) == false)
            #expect(try await ledger.job(id)?.status == .cancelled)
            #expect(try await ledger.cancel(UUID()) == .notFound)

            let failing = UUID()
            try await ledger.insert(NewJob(id: failing, mediaId: media.id, correlationId: "c2"))
            #expect(try await ledger.fail(failing, code: "timed_out", message: "too slow") == true)
            #expect(try await ledger.cancel(failing) == .finished(.failed))
            #expect(try await ledger.job(failing)?.error == "too slow")
        }
    }

    @Test func applyingAResultIsOneTransactionAndHappensOnce() async throws {
        try await withMedia { client, media in
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let jobId = UUID()
            // Straight from the broker: no ledger row yet; the apply writes one.
            let file = StoredFile(path: "cc/dd/b.png", mimeType: "image/png", width: 20, height: 20, bytes: 200,
                                  sha256: String(repeating: "b", count: 64))
            let result = GenerationResult(
                jobId: jobId, mediaId: media.id, kind: "single", batchId: nil, variationName: nil, correlationId: "c",
                backend: "runpod", backendJobId: "rp-9", cost: 0.025, file: file)
            let first = try await store.applyGeneration(result)
            guard case .applied(let versionId, let previous) = first else {
                Issue.record("expected applied, got \(first)")
                return
            }
            #expect(previous == media.currentVersionId)
            #expect(try await store.applyGeneration(result) == .alreadyApplied(versionId: versionId), "a redelivery changes nothing")
            let updated = try #require(try await store.media(media.id))
            #expect(updated.currentVersionId == versionId)
            #expect(updated.file == file)
            #expect(try await store.versions(of: media.id).count == 2)
            let job = try #require(try await ledger.job(jobId))
            #expect(job.status == .completed)
            #expect(job.cost == 0.025)
            #expect(job.resultVersionId == versionId)

            let cancelled = UUID()
            try await ledger.insert(NewJob(id: cancelled, mediaId: media.id, correlationId: "c3"))
            _ = try await ledger.cancel(cancelled)
            var late = result
            late.jobId = cancelled
            #expect(try await store.applyGeneration(late) == .jobEnded(status: "CANCELLED"))
            #expect(try await store.versions(of: media.id).count == 2, "a cancelled job's result is not applied")

            _ = try await store.delete(media.id)
            var orphan = result
            orphan.jobId = UUID()
            #expect(try await store.applyGeneration(orphan) == .mediaGone)
        }
    }

    @Test func anIdempotencyKeyIsClaimedOnceAndReplayed() async throws {
        try await withMedia { client, _ in
            let records = IdempotencyStore(client: client)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1") == .proceed)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1") == .inProgress)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h2") == .conflict)
            #expect(try await records.claim(scope: "cancel", key: "k1", requestSHA256: "h1") == .proceed, "scopes are apart")
            try await records.finish(scope: "generate", key: "k1", status: 202, body: #"{"jobId": "x"}"#)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1") == .replay(status: 202, body: #"{"jobId": "x"}"#))
            #expect(try await records.claim(scope: "generate", key: "k2", requestSHA256: "h1") == .proceed)
            try await records.release(scope: "generate", key: "k2")
            #expect(try await records.claim(scope: "generate", key: "k2", requestSHA256: "h1") == .proceed, "released after a failure")
        }
    }
}
