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
            let file = StoredFile(path: "cc/dd/b.png", mimeType: "image/png", width: 20, height: 20, bytes: 200,
                                  sha256: String(repeating: "b", count: 64))
            let result = GenerationResult(
                jobId: jobId, mediaId: media.id, kind: "single", batchId: nil, variationName: nil, correlationId: "c",
                backend: "runpod", backendJobId: "rp-9", cost: 0.025, file: file)
            // Only a job Cyclorama accepted (a ledger row) can have a result applied.
            guard case .refused(let unknown) = try await store.applyGeneration(result) else {
                Issue.record("a result for a job nobody accepted was applied")
                return
            }
            #expect(unknown.contains("no job \(jobId.uuidString.lowercased()) in the ledger"), "\(unknown)")
            #expect(try await ledger.job(jobId) == nil, "a result never creates its job")
            try await ledger.insert(NewJob(id: jobId, mediaId: media.id, correlationId: "c"))
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

            // In the trash the media still takes its result (restored, it shows it); deleted for
            // good, it does not.
            var trashed = result
            trashed.jobId = UUID()
            trashed.backendJobId = "rp-10"
            try await ledger.insert(NewJob(id: trashed.jobId, mediaId: media.id, correlationId: "c4"))
            _ = try await store.delete(media.id)
            guard case .applied = try await store.applyGeneration(trashed) else {
                Issue.record("a result for media in the trash was not applied")
                return
            }
            #expect(try await store.restore(media.id) != nil, "restored")
            #expect(try await store.versions(of: media.id).count == 3, "with the result made while it was in the trash")
            _ = try await store.delete(media.id)
            var orphan = result
            orphan.jobId = UUID()
            orphan.backendJobId = "rp-11"
            try await ledger.insert(NewJob(id: orphan.jobId, mediaId: media.id, correlationId: "c5"))
            #expect(try await store.purge([media.id]) == [media.id])
            #expect(try await store.applyGeneration(orphan) == .mediaGone)
        }
    }

    @Test func aResultIsAppliedOnlyToTheMediaAndKindItsJobNames() async throws {
        try await withMedia { client, media in
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let other = try await store.create(
                collection: "PRODUCTS", originalFilename: "b.jpg",
                file: StoredFile(path: "aa/bb/b.jpg", mimeType: "image/jpeg", width: 10, height: 10, bytes: 100,
                                 sha256: String(repeating: "c", count: 64)))
            let jobId = UUID()
            try await ledger.insert(NewJob(id: jobId, mediaId: media.id, correlationId: "c"))
            // A message claiming the job of `media` for `other`: refused, nothing changes, the job stays open.
            let forged = GenerationResult(
                jobId: jobId, mediaId: other.id, kind: "single", batchId: nil, variationName: nil, correlationId: "c",
                backend: "local", backendJobId: "x", cost: 0,
                file: StoredFile(path: "ee/ff/x.png", mimeType: "image/png", width: 20, height: 20, bytes: 200,
                                 sha256: String(repeating: "e", count: 64)))
            guard case .refused(let reason) = try await store.applyGeneration(forged) else {
                Issue.record("a result was applied to a media its job does not name")
                return
            }
            #expect(reason.contains("is for media \(media.id.uuidString.lowercased()), not \(other.id.uuidString.lowercased())"), "\(reason)")
            #expect(try await store.versions(of: other.id).count == 1)
            #expect(try await store.versions(of: media.id).count == 1)
            #expect(try await ledger.job(jobId)?.status == .queued, "the job it named is left alone")

            // Nor as a variation candidate of the right media: the job is not a variation job.
            var asVariation = forged
            asVariation.mediaId = media.id
            asVariation.variationName = "A"
            guard case .refused(let kind) = try await VariationStore(client: client).applyVariation(asVariation) else {
                Issue.record("a single job's result was kept as a variation")
                return
            }
            #expect(kind.contains("is a single job"), "\(kind)")
            #expect(try await ledger.job(jobId)?.status == .queued)
        }
    }

    /// The dispatcher's copy of a RunPod job's record: a later save replaces it, an earlier one
    /// (a follower that stalled between its Redis save and this one) does not.
    @Test func theDispatchRecordCopyOnlyMovesForward() async throws {
        try await withMedia { client, media in
            let ledger = JobLedger(client: client)
            let id = UUID()
            try await ledger.insert(NewJob(id: id, mediaId: media.id, correlationId: "c"))
            #expect(try await ledger.dispatchRecord(of: id) == nil)
            try await ledger.saveDispatchRecord(id, json: #"{"saves": 2, "backendJobId": "rp-2"}"#, saves: 2)
            try await ledger.saveDispatchRecord(id, json: #"{"saves": 1, "backendJobId": "rp-1"}"#, saves: 1)
            try await ledger.saveDispatchRecord(id, json: #"{"saves": 2, "backendJobId": "rp-x"}"#, saves: 2)
            let kept = try await ledger.dispatchRecord(of: id)
            #expect(kept?.contains("rp-2") == true, "\(String(describing: kept))")
            try await ledger.saveDispatchRecord(id, json: #"{"saves": 3, "finished": true}"#, saves: 3)
            #expect(try await ledger.dispatchRecord(of: id)?.contains("finished") == true)
        }
    }

    @Test func anIdempotencyKeyIsClaimedOnceAndReplayed() async throws {
        try await withMedia { client, _ in
            let records = IdempotencyStore(client: client)
            let k1 = try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1")
            #expect(k1.proceeds)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1") == .inProgress)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h2") == .conflict)
            #expect(try await records.claim(scope: "cancel", key: "k1", requestSHA256: "h1").proceeds, "scopes are apart")
            try await records.finish(scope: "generate", key: "k1", take: try #require(k1.take), status: 202, body: #"{"jobId": "x"}"#)
            #expect(try await records.claim(scope: "generate", key: "k1", requestSHA256: "h1") == .replay(status: 202, body: #"{"jobId": "x"}"#))
            let first = try await records.claim(scope: "generate", key: "k2", requestSHA256: "h1")
            #expect(first.proceeds)
            try await records.release(scope: "generate", key: "k2", take: try #require(first.take))
            // Released after a failure (its first run may have created a job before its connection
            // dropped): the same request takes the claim back with its id, and so finds that job.
            let again = try await records.claim(scope: "generate", key: "k2", requestSHA256: "h1")
            #expect(again.claimId != nil && again.claimId == first.claimId && again.take != first.take, "the same claim, a new take: \(again)")
            #expect(try await records.claim(scope: "generate", key: "k2", requestSHA256: "h1") == .inProgress, "taken back once")
            try await records.release(scope: "generate", key: "k2", take: try #require(again.take))
            // Another request under the key replaces a released claim, with a claim of its own.
            let other = try await records.claim(scope: "generate", key: "k2", requestSHA256: "h2")
            #expect(other.proceeds && other.claimId != first.claimId, "\(other)")
        }
    }

    @Test func aClaimLeftUnfinishedIsTakenOverByTheSameRequestOnly() async throws {
        try await withMedia { client, _ in
            let store = IdempotencyStore(client: client)
            let first = try await store.claim(scope: "POST", key: "k", requestSHA256: "one")
            #expect(first.claimId != nil, "a new claim has an id: \(first)")
            #expect(try await store.claim(scope: "POST", key: "k", requestSHA256: "one") == .inProgress, "still running")
            // Its process died half-way: a minute later the same request takes the claim over, another one may not.
            try await client.query("UPDATE idempotency_records SET created_at = now() - interval '61 seconds'")
            #expect(try await store.claim(scope: "POST", key: "k", requestSHA256: "two") == .conflict)
            let takenOver = try await store.claim(scope: "POST", key: "k", requestSHA256: "one")
            #expect(takenOver.claimId == first.claimId, "the same claim, taken over")
            #expect(try await store.claim(scope: "POST", key: "k", requestSHA256: "one") == .inProgress, "taken over once")
            // The first run had only stalled: what it does at its end no longer counts — neither
            // its failure (releasing the claim the second run holds) nor its answer.
            try await store.release(scope: "POST", key: "k", take: try #require(first.take))
            try await store.finish(scope: "POST", key: "k", take: try #require(first.take), status: 500, body: #"{"stale": true}"#)
            #expect(try await store.claim(scope: "POST", key: "k", requestSHA256: "two") == .conflict, "not released by the stalled run")
            try await store.finish(scope: "POST", key: "k", take: try #require(takenOver.take), status: 202, body: #"{"jobId": "y"}"#)
            #expect(try await store.claim(scope: "POST", key: "k", requestSHA256: "one") == .replay(status: 202, body: #"{"jobId": "y"}"#))
        }
    }

    /// A key used again after its record expired is a new request with a claim of its own, so what
    /// it creates is new too (the gateway derives ids from the key and the claim).
    @Test func aKeyUsedAgainAfterItsRecordExpiredIsANewClaim() async throws {
        try await withMedia { client, _ in
            let store = IdempotencyStore(client: client)
            let first = try await store.claim(scope: "POST", key: "sku-1", requestSHA256: "one")
            try await store.finish(scope: "POST", key: "sku-1", take: try #require(first.take), status: 202, body: #"{"jobId": "x"}"#)
            #expect(try await store.claim(scope: "POST", key: "sku-1", requestSHA256: "one") == .replay(status: 202, body: #"{"jobId": "x"}"#))
            try await client.query("UPDATE idempotency_records SET created_at = now() - interval '25 hours'")
            let again = try await store.claim(scope: "POST", key: "sku-1", requestSHA256: "one")
            guard case .proceed(let firstClaim?, _) = first, case .proceed(let nextClaim?, _) = again else {
                Issue.record("both are new claims with ids: \(first), \(again)")
                return
            }
            #expect(firstClaim != nextClaim)
        }
    }
}

extension IdempotencyClaim {
    /// A first claim (whatever its id).
    var proceeds: Bool {
        if case .proceed = self { return true }
        return false
    }

    var claimId: UUID? {
        if case .proceed(let claim, _) = self { return claim }
        return nil
    }

    var take: UUID? {
        if case .proceed(_, let take) = self { return take }
        return nil
    }
}
