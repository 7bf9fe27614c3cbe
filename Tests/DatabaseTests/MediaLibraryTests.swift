import Database
import Foundation
import PostgresNIO
import Testing
import TestSupport

/// The library's listing (search, sort, state filters), each item's state, and the trash.
@Suite("Media library listing")
struct MediaLibraryTests {
    private func file(_ tag: Character, bytes: Int) -> StoredFile {
        StoredFile(path: "\(tag)\(tag)/\(tag).jpg", mimeType: "image/jpeg", width: 10, height: 10, bytes: bytes,
                   sha256: String(repeating: tag, count: 64))
    }

    /// A single job's result (`file`) applied to `media` as the ingestor applies one: the version it became.
    private func applyResult(_ file: StoredFile, to media: UUID, _ store: MediaStore, _ ledger: JobLedger) async throws -> UUID {
        let job = UUID()
        try await ledger.insert(NewJob(id: job, mediaId: media, correlationId: "\(job)"))
        let outcome = try await store.applyGeneration(GenerationResult(
            jobId: job, mediaId: media, kind: "single", batchId: nil, variationName: nil, correlationId: "\(job)",
            backend: "local", backendJobId: "l-\(job)", cost: 0, file: file))
        guard case .applied(let version, _) = outcome else { throw FixtureError(message: "not applied: \(outcome)") }
        return version
    }

    private func names(_ store: MediaStore, _ query: MediaQuery) async throws -> [String] {
        try await store.list(query).items.map { $0.originalFilename ?? "-" }
    }

    @Test func searchSortAndPagesNeverOverlap() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            for (name, tag, bytes) in [("Red Shoe.jpg", "a", 300), ("blue_bag.png", "b", 100), (nil, "c", 200), ("100%_cotton.jpg", "d", 50)] {
                _ = try await store.create(collection: "PRODUCTS", originalFilename: name, file: file(Character(tag), bytes: bytes))
            }
            _ = try await store.create(collection: "BANNERS", originalFilename: "shoe banner.png", file: file("e", bytes: 10))

            let products = MediaQuery(collection: "PRODUCTS")
            #expect(try await names(store, products) == ["100%_cotton.jpg", "-", "blue_bag.png", "Red Shoe.jpg"], "newest first")
            var query = products
            query.sort = .oldest
            #expect(try await names(store, query) == ["Red Shoe.jpg", "blue_bag.png", "-", "100%_cotton.jpg"])
            query.sort = .name
            #expect(try await names(store, query) == ["100%_cotton.jpg", "blue_bag.png", "Red Shoe.jpg", "-"], "case-insensitive, unnamed last")
            query.sort = .nameDescending
            #expect(try await names(store, query) == ["Red Shoe.jpg", "blue_bag.png", "100%_cotton.jpg", "-"])
            query.sort = .largest
            #expect(try await names(store, query) == ["Red Shoe.jpg", "-", "blue_bag.png", "100%_cotton.jpg"])
            query.sort = .smallest
            #expect(try await names(store, query) == ["100%_cotton.jpg", "blue_bag.png", "-", "Red Shoe.jpg"])

            // The search is a literal, case-insensitive part of the name, within the collection asked for.
            query = products
            query.search = "SHOE"
            #expect(try await names(store, query) == ["Red Shoe.jpg"])
            query.collection = nil
            #expect(try await names(store, query) == ["shoe banner.png", "Red Shoe.jpg"])
            query.search = "%"
            #expect(try await names(store, query) == ["100%_cotton.jpg"], "% is not a wildcard")
            query.search = "_"
            #expect(try await names(store, query) == ["100%_cotton.jpg", "blue_bag.png"], "_ is not a wildcard")
            query.search = "e%b" // as a pattern it would match "blue_bag.png"
            #expect(try await store.list(query).total == 0)

            // Pages of one, in every order, add up to the whole list once.
            for sort in MediaSort.allCases {
                var whole = MediaQuery(sort: sort)
                let all = try await store.list(whole).items.map(\.id)
                var paged: [UUID] = []
                whole.pageSize = 1
                for page in 1...all.count {
                    whole.page = page
                    let (items, total) = try await store.list(whole)
                    #expect(total == 5)
                    paged += items.map(\.id)
                }
                #expect(paged == all, "\(sort)")
            }
        }
    }

    @Test func eachItemSaysWhereItStandsAndTheFilterFollows() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let running = try await store.create(collection: "PRODUCTS", originalFilename: "running", file: file("a", bytes: 1))
            let failing = try await store.create(collection: "PRODUCTS", originalFilename: "failing", file: file("b", bytes: 1))
            let done = try await store.create(collection: "PRODUCTS", originalFilename: "done", file: file("c", bytes: 1))
            let untouched = try await store.create(collection: "PRODUCTS", originalFilename: "untouched", file: file("d", bytes: 1))
            #expect(untouched.state == .unprocessed)

            let runningJob = UUID()
            try await ledger.insert(NewJob(id: runningJob, mediaId: running.id, correlationId: "r"))
            let failedJob = UUID()
            try await ledger.insert(NewJob(id: failedJob, mediaId: failing.id, correlationId: "f"))
            _ = try await ledger.fail(failedJob, code: "backend_failed", message: "no")
            // A failed variation candidate does not mark the image failed.
            let variation = UUID()
            try await ledger.insert(NewJob(id: variation, kind: "variation", mediaId: untouched.id, variationName: "v", correlationId: "v"))
            _ = try await ledger.fail(variation, code: "backend_failed", message: "no")
            let doneJob = UUID()
            try await ledger.insert(NewJob(id: doneJob, mediaId: done.id, correlationId: "d"))
            guard case .applied(let generated, _) = try await store.applyGeneration(GenerationResult(
                jobId: doneJob, mediaId: done.id, kind: "single", batchId: nil, variationName: nil, correlationId: "d",
                backend: "local", backendJobId: "l-1", cost: 0, file: file("e", bytes: 2))) else {
                Issue.record("the generation was not applied")
                return
            }

            func state(_ media: MediaRecord) async throws -> MediaState? { try await store.media(media.id)?.state }
            #expect(try await state(running) == .inProgress)
            #expect(try await state(failing) == .failed)
            #expect(try await state(done) == .processed)
            #expect(try await state(untouched) == .unprocessed)
            for wanted in MediaState.allCases {
                let listed = try await store.list(MediaQuery(state: wanted))
                #expect(listed.items.allSatisfy { $0.state == wanted } && listed.total == listed.items.count, "\(wanted)")
            }
            #expect(try await names(store, MediaQuery(state: .inProgress)) == ["running"])
            #expect(try await names(store, MediaQuery(state: .failed)) == ["failing"])
            #expect(try await names(store, MediaQuery(state: .processed)) == ["done"])
            #expect(try await names(store, MediaQuery(state: .unprocessed)) == ["untouched"])

            // Back to the photo: unprocessed; back to the studio shot (a revert of it): processed again.
            let upload = try #require(try await store.versions(of: done.id).last)
            _ = try await store.revert(done.id, to: upload.id)
            #expect(try await state(done) == .unprocessed)
            _ = try await store.revert(done.id, to: generated)
            #expect(try await state(done) == .processed)
            // A failure is old news once the image changed after it (here: a revert).
            let failingUpload = try #require(try await store.versions(of: failing.id).last)
            _ = try await store.revert(failing.id, to: failingUpload.id)
            #expect(try await state(failing) == .unprocessed)
            // A job that ends leaves "in progress".
            #expect(try await ledger.cancel(runningJob) == .cancelled)
            #expect(try await state(running) == .unprocessed)
        }
    }

    @Test func theTrashKeepsWhatWasDeletedUntilItIsRestored() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let first = try await store.create(collection: "PRODUCTS", originalFilename: "first", file: file("a", bytes: 1))
            let second = try await store.create(collection: "PRODUCTS", originalFilename: "second", file: file("b", bytes: 1))
            #expect(try await store.delete(first.id))
            #expect(try await store.delete(first.id) == false, "in the trash already")
            #expect(try await store.delete(second.id))

            #expect(try await store.media(first.id) == nil)
            #expect(try await store.media(first.id, includingTrash: true)?.deletedAt != nil)
            #expect(try await store.list(MediaQuery()).total == 0)
            let trash = try await store.list(MediaQuery(trash: true))
            #expect(trash.items.map(\.originalFilename) == ["second", "first"], "most recently deleted first")
            #expect(trash.items.allSatisfy { $0.deletedAt != nil })
            var oldest = MediaQuery(trash: true)
            oldest.sort = .oldest
            #expect(try await names(store, oldest) == ["first", "second"])

            let restored = try #require(try await store.restore(first.id))
            #expect(restored.deletedAt == nil && restored.originalFilename == "first" && restored.currentVersionId == first.currentVersionId)
            #expect(try await store.restore(first.id) == restored, "restoring twice changes nothing")
            #expect(try await store.restore(UUID()) == nil)
            #expect(try await names(store, MediaQuery()) == ["first"])
            #expect(try await names(store, MediaQuery(trash: true)) == ["second"])
            #expect(try await store.versions(of: first.id).count == 1, "the history came back with it")
        }
    }

    /// A batch item's candidate replaces only the image it was made from: one whose media was
    /// reverted while the job ran is skipped at approval (its source is an older version than the
    /// one shown) until that photo is shown again; one made from the image still shown is approved.
    @Test func aCandidateIsApprovedOnlyOverThePhotoItWasMadeFrom() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let reviews = ReviewStore(client: client)
            let media = try await store.create(collection: "PRODUCTS", originalFilename: "shoe", file: file("a", bytes: 1))
            // Version 2: a result (file b), shown when the batch is asked for.
            let second = try await applyResult(file("b", bytes: 2), to: media.id, store, ledger)

            let batch = UUID()
            let (stale, fresh) = (UUID(), UUID())
            #expect(try await ledger.insertBatch(id: batch, optionsJSON: "{}", review: true, jobs: [
                NewJob(id: stale, kind: "batch", batchId: batch, mediaId: media.id, correlationId: "stale"),
                NewJob(id: fresh, kind: "batch", batchId: batch, mediaId: media.id, correlationId: "fresh"),
            ]))
            func result(_ job: UUID, from source: String, _ tag: Character) -> GenerationResult {
                GenerationResult(
                    jobId: job, mediaId: media.id, kind: "batch", batchId: batch, variationName: nil, correlationId: "\(job)",
                    backend: "local", backendJobId: "l-\(job)", cost: 0, file: file(tag, bytes: 3), sourcePath: source)
            }
            // While the first item runs (made from file b), the image is reverted to the upload (file a).
            let reverted = try #require(try await store.revert(media.id, to: media.currentVersionId))
            _ = try await reviews.keep(result(stale, from: "bb/b.jpg", "c"))
            // The second item was made from the image shown now.
            _ = try await reviews.keep(result(fresh, from: "aa/a.jpg", "d"))
            let candidates = try await reviews.candidates(batch: batch)
            #expect(candidates.first { $0.jobId == stale }?.baseVersionId == second, "made from version 2")
            #expect(candidates.first { $0.jobId == fresh }?.baseVersionId == reverted.currentVersionId, "the newest version holding its file")

            let decided = try await reviews.decide(batch: batch, jobIds: [stale, fresh], .approved)
            #expect(decided.decided == [fresh], "\(decided)")
            #expect(decided.skipped[stale]?.contains("changed after this result was made") == true, "\(decided)")
            #expect(try await store.media(media.id)?.file.path == "dd/d.jpg")
            // Shown again (reverted back to the file it was made from: a newer version, the same
            // photo), the first one may be approved.
            _ = try #require(try await store.revert(media.id, to: second))
            let again = try await reviews.decide(batch: batch, jobIds: [stale], .approved)
            #expect(again.decided == [stale], "\(again)")
            #expect(try await store.media(media.id)?.file.path == "cc/c.jpg")
        }
    }

    /// An A/B candidate replaces only the photo it was made from: chosen after the image changed
    /// (another job's result), it is refused and nothing changes; once that photo is shown again
    /// (reverted back: the same file), it is chosen.
    @Test func aVariationIsChosenOnlyOverThePhotoItWasMadeFrom() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let variations = VariationStore(client: client)
            let media = try await store.create(collection: "PRODUCTS", originalFilename: "mug", file: file("a", bytes: 1))
            let variation = UUID()
            try await ledger.insert(NewJob(id: variation, kind: "variation", mediaId: media.id, variationName: "Soft", correlationId: "v"))
            let kept = try await variations.applyVariation(GenerationResult(
                jobId: variation, mediaId: media.id, kind: "variation", batchId: nil, variationName: "Soft", correlationId: "v",
                backend: "local", backendJobId: "l-v", cost: 0, file: file("e", bytes: 2), sourcePath: "aa/a.jpg"))
            guard case .applied = kept else { Issue.record("\(kept)"); return }
            // Meanwhile another job's result replaces the photo.
            let newer = try await applyResult(file("b", bytes: 3), to: media.id, store, ledger)

            #expect(try await variations.choose(mediaId: media.id, jobId: variation) == .imageChanged)
            #expect(try await store.media(media.id)?.currentVersionId == newer, "nothing changed")
            _ = try #require(try await store.revert(media.id, to: media.currentVersionId))
            guard case .chosen = try await variations.choose(mediaId: media.id, jobId: variation) else {
                Issue.record("not chosen over the photo it was made from"); return
            }
            #expect(try await store.media(media.id)?.file.path == "ee/e.jpg")
        }
    }

    /// The ingestor reads a job's source only when it is one of that media's versions (trash or
    /// not): a path another item owns, or none owns, is not the job's photo.
    @Test func aVersionFileIsFoundOnlyUnderItsOwnMedia() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let first = try await store.create(collection: "PRODUCTS", originalFilename: "first", file: file("a", bytes: 1))
            let second = try await store.create(collection: "PRODUCTS", originalFilename: "second", file: file("b", bytes: 2))
            #expect(try await store.versionFile(of: first.id, path: first.file.path) == first.file)
            #expect(try await store.versionFile(of: second.id, path: first.file.path) == nil, "another item's file")
            #expect(try await store.versionFile(of: first.id, path: "cc/c.jpg") == nil, "nobody's file")
            #expect(try await store.delete(first.id))
            #expect(try await store.versionFile(of: first.id, path: first.file.path) == first.file, "in the trash, still its version")
        }
    }

    /// Deleting for good: only from the trash; the item and its history go, its ledger rows (and
    /// the month's spend) stay, and every file it referred to is queued for the sweeper, which is
    /// told a file is still someone's when another item has the same bytes.
    @Test func deletingForGoodKeepsTheLedgerAndQueuesItsFiles() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let ledger = JobLedger(client: client)
            let kept = try await store.create(collection: "PRODUCTS", originalFilename: "kept", file: file("a", bytes: 1))
            let twin = try await store.create(collection: "PRODUCTS", originalFilename: "twin", file: file("a", bytes: 1))
            let gone = try await store.create(collection: "PRODUCTS", originalFilename: "gone", file: file("b", bytes: 1))
            let job = UUID()
            try await ledger.insert(NewJob(id: job, mediaId: gone.id, correlationId: "g"))
            guard case .applied = try await store.applyGeneration(GenerationResult(
                jobId: job, mediaId: gone.id, kind: "single", batchId: nil, variationName: nil, correlationId: "g",
                backend: "runpod", backendJobId: "r-1", cost: 0.25, file: file("c", bytes: 2))) else {
                Issue.record("the generation was not applied")
                return
            }
            let spend = try await ledger.spendThisMonth()
            #expect(spend == 0.25)
            // A variation and a batch item under review, still running when it is deleted for good.
            let variation = UUID()
            try await ledger.insert(NewJob(id: variation, kind: "variation", mediaId: gone.id, variationName: "A", correlationId: "v"))
            let batch = UUID()
            let item = UUID()
            #expect(try await ledger.insertBatch(id: batch, optionsJSON: "{}", review: true, jobs: [
                NewJob(id: item, kind: "batch", batchId: batch, mediaId: gone.id, correlationId: "b"),
            ]))

            #expect(try await store.purge([gone.id]).isEmpty, "an item in the library is not deleted for good")
            #expect(try await store.media(gone.id) != nil)
            #expect(try await store.delete(gone.id))
            #expect(try await store.delete(twin.id))
            #expect(try await store.purge([gone.id, kept.id]) == [gone.id], "only what is in the trash")

            #expect(try await store.media(gone.id, includingTrash: true) == nil)
            #expect(try await store.restore(gone.id) == nil, "it cannot come back")
            #expect(try await store.versions(of: gone.id).isEmpty)
            #expect(try await names(store, MediaQuery(trash: true)) == ["twin"])
            #expect(try await store.purge([gone.id]).isEmpty, "deleted for good once")
            // Their results come in after: kept as candidates of nothing, never (their files would stay).
            func result(_ id: UUID, _ kind: String, _ name: String?, _ batchId: UUID?) -> GenerationResult {
                GenerationResult(
                    jobId: id, mediaId: gone.id, kind: kind, batchId: batchId, variationName: name, correlationId: "late",
                    backend: "local", backendJobId: "l-\(id)", cost: 0, file: file("d", bytes: 3))
            }
            #expect(try await VariationStore(client: client).applyVariation(result(variation, "variation", "A", nil)) == .mediaGone)
            #expect(try await ReviewStore(client: client).keep(result(item, "batch", nil, batch)) == .mediaGone)
            let record = try #require(try await ledger.job(job), "the job stays in the ledger")
            #expect(record.mediaId == gone.id && record.status == .completed)
            #expect(try await ledger.spendThisMonth() == spend, "and so does the spend")
            let tombstone = try await client.query("SELECT original_filename FROM media WHERE id = \(gone.id)", logger: TestDatabase.logger)
            for try await name in tombstone.decode(String?.self) { #expect(name == nil, "the name is gone") }

            // Its photo and its studio shot wait for the sweeper; nobody refers to them any more.
            let files = PurgedFileStore(client: client)
            #expect(try await files.count() == 2)
            let seen = LockedValue<[String: Bool]>([:])
            #expect(try await files.sweep(limit: 10) { path, isReferenced in
                let referenced = try await isReferenced()
                seen.withLock { $0[path] = referenced }
                return .later
            } == (0, 0))
            #expect(seen.value == ["bb/b.jpg": false, "cc/c.jpg": false])

            // Emptying the trash: the twin's file is the kept item's too, so it is still referred to.
            #expect(try await store.purge(nil) == [twin.id])
            seen.withLock { $0 = [:] }
            #expect(try await files.sweep(limit: 10) { path, isReferenced in
                let referenced = try await isReferenced()
                seen.withLock { $0[path] = referenced }
                return referenced ? .settled : .erased
            } == (3, 2))
            #expect(seen.value == ["aa/a.jpg": true, "bb/b.jpg": false, "cc/c.jpg": false])
            #expect(try await files.count() == 0)
            #expect(try await names(store, MediaQuery()) == ["kept"])
            #expect(try await store.purge(nil).isEmpty, "an empty trash")
        }
    }

    /// The trash's keeping time: only what went to the trash before the cutoff is deleted for good;
    /// what went later, and the library, stay.
    @Test func theTrashKeepsWhatWentThereAfterTheCutoff() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            _ = try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = MediaStore(client: client)
            let old = try await store.create(collection: "PRODUCTS", originalFilename: "old", file: file("a", bytes: 1))
            let recent = try await store.create(collection: "PRODUCTS", originalFilename: "recent", file: file("b", bytes: 1))
            _ = try await store.create(collection: "PRODUCTS", originalFilename: "library", file: file("c", bytes: 1))
            #expect(try await store.delete(old.id))
            #expect(try await store.delete(recent.id))
            try await client.query("UPDATE media SET deleted_at = now() - interval '31 days' WHERE id = \(old.id)", logger: TestDatabase.logger)
            let cutoff = Date().addingTimeInterval(-30 * 86_400)
            #expect(try await store.purge(nil, deletedBefore: cutoff) == [old.id])
            #expect(try await store.purge(nil, deletedBefore: cutoff).isEmpty, "once")
            #expect(try await names(store, MediaQuery(trash: true)) == ["recent"])
            #expect(try await names(store, MediaQuery()) == ["library"])
            #expect(try await PurgedFileStore(client: client).count() == 1, "its file queued for the sweeper")
        }
    }
}
