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
}
