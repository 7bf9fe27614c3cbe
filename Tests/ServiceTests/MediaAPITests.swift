import Database
import Foundation
import Imaging
import NIOHTTP1
import ServiceCore
import ServiceSupport
import Shared
import Testing
import TestSupport

/// The media library's API against the gateway run in process (`InProcessGateway`: its routes,
/// middleware and workers as the executable builds them), on the real PostgreSQL, Redis, broker and disk.
@Suite("Media library API", .timeLimit(.minutes(3)))
struct MediaAPITests {
    /// A raw upload named as RFC 6266 names it: `filename*` for the real name (non-ASCII, a `;`
    /// in it), `filename` as the fallback for older readers. Until 2026-12-08 the gateway split the
    /// header on `;` and knew only `filename`: this one was stored as "fallback.png".
    @Test func aRawUploadTakesItsNameFromFilenameStar() async throws {
        try await InProcessGateway.test { gateway in
            let named = try await gateway.call(
                .POST, "/api/media", body: try Samples.bytes("dev01", "alpha.png"),
                headers: [("Content-Type", "image/png"), ("Content-Disposition", #"attachment; filename="fallback.png"; filename*=UTF-8''na%C3%AFve%3B%20shoe.png"#)])
            #expect(named.status == 201, "\(named.text)")
            #expect((try named.json()["media"] as? [String: Any])?["originalName"] as? String == "naïve; shoe.png")
        }
    }

    @Test func uploadListShowDownloadVersionsRevertDelete() async throws {
        try await InProcessGateway.test { gateway in
            let jpeg = try Samples.bytes("dev01", "input.jpg")

            // Upload (multipart): 201 with the seed's field names; the type is sniffed from the bytes.
            let created = try await gateway.uploadForm(jpeg, fileName: "../../evil/name.png", collection: "products")
            #expect(created.status == 201, "\(created.text)")
            let media = try #require(try created.json()["media"] as? [String: Any])
            let id = try #require(media["id"] as? String)
            #expect(media["mimeType"] as? String == "image/jpeg", "sniffed from content, not the .png name")
            #expect(media["collection"] as? String == "PRODUCTS")
            #expect(media["originalName"] as? String == "name.png", "only the last path component is kept")
            #expect(media["width"] as? Int == 1024 && media["height"] as? Int == 1024)
            #expect(media["size"] as? Int == jpeg.count)
            #expect(media["url"] as? String == "/api/media/\(id)/file")

            // A raw-body upload of a PNG into another collection.
            let png = try Samples.bytes("dev01", "alpha.png")
            let raw = try await gateway.call(.POST, "/api/media?collection=BANNERS", body: png, headers: [("Content-Type", "image/png")])
            #expect(raw.status == 201, "\(raw.text)")
            let pngId = try #require((try raw.json()["media"] as? [String: Any])?["id"] as? String)

            // List with the collection filter and paging.
            let products = try await gateway.call(.GET, "/api/media?collection=PRODUCTS&page=1&pageSize=10").json()
            #expect((products["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            #expect(products["total"] as? Int == 1)
            let everything = try await gateway.call(.GET, "/api/media?page=2&pageSize=1").json()
            #expect(everything["total"] as? Int == 2)
            #expect((everything["items"] as? [[String: Any]])?.count == 1)

            // Show and download: the bytes come back unchanged, typed by content.
            #expect(try await gateway.call(.GET, "/api/media/\(id)").status == 200)
            let file = try await gateway.call(.GET, "/api/media/\(id)/file")
            #expect(file.status == 200 && file.body == jpeg)
            #expect(file.header("content-type") == "image/jpeg")
            // A cache revalidates by ETag (the file's SHA-256): 304 without a body while it is current.
            let etag = try #require(file.header("etag"))
            #expect(etag == "\"\(media["sha256"] as? String ?? "-")\"", "\(etag)")
            let unchanged = try await gateway.call(.GET, "/api/media/\(id)/file", headers: [("If-None-Match", etag)])
            #expect(unchanged.status == 304 && unchanged.body.isEmpty && unchanged.header("etag") == etag)
            let stale = try await gateway.call(.GET, "/api/media/\(id)/file", headers: [("If-None-Match", "\"0000\"")])
            #expect(stale.status == 200 && stale.body == jpeg)

            // Versions: one upload. Reverting to it adds a version (history only grows) and keeps the file.
            let versions = try await gateway.call(.GET, "/api/media/\(id)/versions").json()
            let history = try #require(versions["versions"] as? [[String: Any]])
            #expect(history.count == 1 && history.first?["source"] as? String == "upload")
            let first = try #require(history.first?["id"] as? String)
            let reverted = try await gateway.call(.POST, "/api/media/\(id)/revert/\(first)")
            #expect(reverted.status == 200, "\(reverted.text)")
            let after = try await gateway.call(.GET, "/api/media/\(id)/versions").json()
            #expect((after["versions"] as? [[String: Any]])?.map { $0["source"] as? String } == ["revert", "upload"])
            #expect(try await gateway.call(.GET, "/api/media/\(id)/file").body == jpeg)
            let wrongVersion = try await gateway.call(.POST, "/api/media/\(id)/revert/\(UUID().uuidString)")
            #expect(wrongVersion.status == 404)
            // On a condition (an Undo): only while the media still shows `ifCurrent`, checked with the revert itself.
            let shown = try #require(after["currentVersionId"] as? String)
            let conditional = try await gateway.call(.POST, "/api/media/\(id)/revert/\(first)?ifCurrent=\(first)")
            try expectError(conditional, 409, "image_changed")
            #expect(try await gateway.call(.GET, "/api/media/\(id)/versions").json()["currentVersionId"] as? String == shown, "nothing was reverted")
            let held = try await gateway.call(.POST, "/api/media/\(id)/revert/\(first)?ifCurrent=\(shown)")
            #expect(held.status == 200, "\(held.text)")
            #expect((try await gateway.call(.GET, "/api/media/\(id)/versions").json()["versions"] as? [[String: Any]])?.count == 3)
            try expectError(try await gateway.call(.POST, "/api/media/\(id)/revert/\(first)?ifCurrent=latest"), 400, "invalid_field")

            // Each version's own file, for history thumbnails and before/after views.
            let firstFile = try await gateway.call(.GET, "/api/media/\(id)/versions/\(first)/file")
            #expect(firstFile.status == 200 && firstFile.body == jpeg)
            #expect(firstFile.header("content-type") == "image/jpeg")
            #expect(try await gateway.call(.GET, "/api/media/\(id)/versions/\(UUID().uuidString)/file").status == 404)
            let pngVersion = try #require(
                ((try await gateway.call(.GET, "/api/media/\(pngId)/versions").json()["versions"] as? [[String: Any]])?.first?["id"]) as? String)
            #expect(try await gateway.call(.GET, "/api/media/\(id)/versions/\(pngVersion)/file").status == 404, "another media's version")
            #expect(try await gateway.call(.GET, "/api/media/\(id)/versions/\(first)/file", token: "").status == 401)

            // Delete: gone from reads and lists.
            #expect(try await gateway.call(.DELETE, "/api/media/\(pngId)").status == 200)
            #expect(try await gateway.call(.GET, "/api/media/\(pngId)").status == 404)
            #expect(try await gateway.call(.DELETE, "/api/media/\(pngId)").status == 404)
            #expect(try await gateway.call(.GET, "/api/media").json()["total"] as? Int == 1)

            // ...but in the trash, with its thumbnail, until it is restored as it was.
            let trash = try await gateway.call(.GET, "/api/media?trash=true").json()
            let trashed = try #require((trash["items"] as? [[String: Any]])?.first)
            #expect(trash["total"] as? Int == 1 && trashed["id"] as? String == pngId && trashed["deletedAt"] is String)
            #expect(try await gateway.call(.GET, "/api/media/\(pngId)/thumbnail").status == 200)
            let restored = try await gateway.call(.POST, "/api/media/\(pngId)/restore")
            #expect(restored.status == 200, "\(restored.text)")
            let back = try #require(try restored.json()["media"] as? [String: Any])
            #expect(back["collection"] as? String == "BANNERS" && back["deletedAt"] == nil && back["state"] as? String == "unprocessed")
            #expect(try await gateway.call(.POST, "/api/media/\(pngId)/restore").status == 200, "an undo sent twice is harmless")
            #expect(try await gateway.call(.POST, "/api/media/\(UUID().uuidString)/restore").status == 404)
            #expect(try await gateway.call(.GET, "/api/media?trash=true").json()["total"] as? Int == 0)
            #expect(try await gateway.call(.GET, "/api/media/\(pngId)/file").body == png)

            // Search, sort and state over HTTP (the rules themselves: MediaLibraryTests).
            let found = try await gateway.call(.GET, "/api/media?q=%20NAME.&sort=name&state=unprocessed").json()
            #expect((found["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [id], "\(found)")
            #expect(try await gateway.call(.GET, "/api/media?state=processed").json()["total"] as? Int == 0)
            let bySize = try await gateway.call(.GET, "/api/media?sort=smallest&q=&state=").json()
            #expect((bySize["items"] as? [[String: Any]])?.compactMap { $0["size"] as? Int } == [png.count, jpeg.count].sorted())
        }
    }

    /// Deleting for good: only from the trash (409 from the library), one item or the whole trash;
    /// it cannot be restored, its files and thumbnails are erased unless another item has the same
    /// bytes, and its jobs stay in the ledger with the month's spend.
    @Test func theTrashIsEmptiedForGoodButTheLedgerKeepsItsJobs() async throws {
        try await InProcessGateway.test { gateway in
            let jpeg = try Samples.bytes("dev01", "input.jpg")
            let other = try Samples.bytes("dev02", "input.jpg")
            func upload(_ bytes: [UInt8], _ name: String) async throws -> (id: String, file: URL) {
                let media = try #require(try await gateway.uploadForm(bytes, fileName: name).json()["media"] as? [String: Any])
                let sha = try #require(media["sha256"] as? String)
                return (try #require(media["id"] as? String), gateway.mediaRoot.appendingPathComponent("\(sha.prefix(2))/\(sha.dropFirst(2).prefix(2))/\(sha).jpg"))
            }
            func exists(_ file: URL) -> Bool { FileManager.default.fileExists(atPath: file.path) }
            let kept = try await upload(jpeg, "kept.jpg")
            let twin = try await upload(jpeg, "twin.jpg")
            let gone = try await upload(other, "gone.jpg")
            let fresh = try await upload(try Samples.bytes("dev03", "input.jpg"), "fresh.jpg")
            #expect(kept.file == twin.file && exists(gone.file))
            // Stored an hour ago, all but the fresh one: past the grace that protects a file just stored.
            for file in [kept.file, gone.file] {
                try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: file.path)
            }
            func queued() async throws -> Int { try await SystemDatabase.withClient(gateway.database.url) { try await PurgedFileStore(client: $0).count() } }
            // A job that cost something, to show the spend outlives the item.
            let job = UUID()
            let spend = try await SystemDatabase.withClient(gateway.database.url) { client in
                let ledger = JobLedger(client: client)
                try await ledger.insert(NewJob(id: job, mediaId: try #require(UUID(uuidString: gone.id)), correlationId: "purge-test"))
                try await client.query("UPDATE generation_jobs SET cost = 0.04 WHERE id = \(job)")
                return try await ledger.spendThisMonth()
            }
            #expect(spend == 0.04)

            try expectError(try await gateway.call(.DELETE, "/api/media/\(gone.id)?permanently=true"), 409, "not_in_trash")
            try expectError(try await gateway.call(.DELETE, "/api/media/\(gone.id)?permanently=yes"), 400, "invalid_field")
            #expect(try await gateway.call(.GET, "/api/media/\(gone.id)").status == 200, "two steps, never one")
            #expect(try await gateway.call(.DELETE, "/api/media/\(gone.id)").status == 200)
            let thumbnail = try await gateway.call(.GET, "/api/media/\(gone.id)/thumbnail")
            #expect(thumbnail.status == 200)
            let thumbnails = try FileManager.default.subpathsOfDirectory(atPath: gateway.mediaRoot.appendingPathComponent("thumbnails").path)
            #expect(thumbnails.contains { $0.contains(gone.file.deletingPathExtension().lastPathComponent) }, "\(thumbnails)")

            let purged = try await gateway.call(.DELETE, "/api/media/\(gone.id)?permanently=true")
            #expect(try purged.status == 200 && (purged.json()["success"] as? Bool) == true, "\(purged.text)")
            try await eventually("its file is erased, beside the answer", timeout: .seconds(30)) { !exists(gone.file) }
            try await eventually("the queue is empty", timeout: .seconds(30)) { try await queued() == 0 }
            let left = try FileManager.default.subpathsOfDirectory(atPath: gateway.mediaRoot.appendingPathComponent("thumbnails").path)
            #expect(!left.contains { $0.contains(gone.file.deletingPathExtension().lastPathComponent) }, "and its thumbnails: \(left)")
            #expect(try await gateway.call(.GET, "/api/media/\(gone.id)/thumbnail").status == 404)
            #expect(try await gateway.call(.POST, "/api/media/\(gone.id)/restore").status == 404, "it cannot come back")
            #expect(try await gateway.call(.DELETE, "/api/media/\(gone.id)?permanently=true").status == 404)
            #expect(try await gateway.call(.GET, "/api/media?trash=true").json()["total"] as? Int == 0)
            let status = try await gateway.call(.GET, "/api/ai-image/status/\(job.uuidString.lowercased())")
            #expect(status.status == 200, "the job is still on record: \(status.text)")
            #expect(try await SystemDatabase.withClient(gateway.database.url) { try await JobLedger(client: $0).spendThisMonth() } == spend)

            // Emptying the trash: the twin goes, its file stays (it is the kept item's too); the fresh
            // one's file, stored a moment ago, waits in the queue for a later sweep.
            #expect(try await gateway.call(.DELETE, "/api/media/\(twin.id)").status == 200)
            #expect(try await gateway.call(.DELETE, "/api/media/\(fresh.id)").status == 200)
            // Only what was in the trash when it was asked: an item trashed after the cutoff (by
            // someone who may still undo it) stays. The cutoff is the newest deletion, 1 ms on.
            let trashed = try await gateway.call(.GET, "/api/media?trash=true&sort=newest&pageSize=1").json()
            let newest = try #require((trashed["items"] as? [[String: Any]])?.first?["deletedAt"] as? String)
            let cutoff = MessageCoding.formatTimestamp(try #require(MessageCoding.parseTimestamp(newest)).addingTimeInterval(0.001))
            let later = try await gateway.upload(try Samples.bytes("dev09", "input.jpg"))
            #expect(try await gateway.call(.DELETE, "/api/media/\(later)").status == 200)
            let bad = try await gateway.call(.DELETE, "/api/media/trash?deletedBefore=yesterday")
            #expect(bad.status == 400 && bad.error?.code == "invalid_field", "\(bad.text)")
            let emptied = try await gateway.call(.DELETE, "/api/media/trash?deletedBefore=\(cutoff)")
            #expect(try emptied.status == 200 && (emptied.json()["deleted"] as? Int) == 2, "\(emptied.text)")
            #expect(try await gateway.call(.POST, "/api/media/\(later)/restore").status == 200, "trashed after the cutoff: still there to undo")
            try await eventually("only the fresh file is left queued", timeout: .seconds(30)) { try await queued() == 1 }
            #expect(exists(kept.file) && exists(fresh.file))
            #expect(try await gateway.call(.GET, "/api/media/\(kept.id)/file").body == jpeg)
            #expect(try await gateway.call(.DELETE, "/api/media/trash").json()["deleted"] as? Int == 0, "an empty trash")
            #expect(try await gateway.call(.GET, "/api/media").json()["total"] as? Int == 2, "the kept item and the one restored")
        }
    }

    /// The trash keeps an item `TRASH_KEEP_DAYS` (each trashed item says until when in `erasesAt`),
    /// then it is deleted for good by itself, as "Delete for good" does.
    @Test func theTrashDeletesForGoodWhatWasThereLongerThanItKeeps() async throws {
        try await InProcessGateway.test(environment: ["TRASH_KEEP_DAYS": "30", "PURGE_SWEEP_INTERVAL_SECONDS": "1"]) { gateway in
            var ids: [String] = []
            for (scene, name) in [("dev01", "old.jpg"), ("dev02", "recent.jpg")] {
                let media = try #require(try await gateway.uploadForm(try Samples.bytes(scene, "input.jpg"), fileName: name).json()["media"] as? [String: Any])
                let id = try #require(media["id"] as? String)
                #expect(try await gateway.call(.DELETE, "/api/media/\(id)").status == 200)
                ids.append(id)
            }
            let listed = try #require(try await gateway.call(.GET, "/api/media?trash=true").json()["items"] as? [[String: Any]])
            for item in listed {
                let deleted = try #require((item["deletedAt"] as? String).flatMap(MessageCoding.parseTimestamp))
                let erases = try #require((item["erasesAt"] as? String).flatMap(MessageCoding.parseTimestamp), "\(item)")
                #expect(abs(erases.timeIntervalSince(deleted) - 30 * 86_400) < 1, "30 days after it went to the trash")
            }
            #expect(try await gateway.call(.GET, "/api/media").json()["items"].map { ($0 as? [[String: Any]])?.allSatisfy { $0["erasesAt"] == nil } } == true,
                    "nothing in the library is to be erased")
            // The old one went to the trash 31 days ago.
            let old = try #require(UUID(uuidString: ids[0]))
            try await SystemDatabase.withClient(gateway.database.url) { client in
                try await client.query("UPDATE media SET deleted_at = now() - interval '31 days' WHERE id = \(old)")
            }
            try await eventually("the old one is deleted for good", timeout: .seconds(30)) {
                try await gateway.call(.GET, "/api/media?trash=true").json()["total"] as? Int == 1
            }
            #expect(try await gateway.call(.POST, "/api/media/\(ids[0])/restore").status == 404, "it cannot come back")
            #expect(try await gateway.call(.POST, "/api/media/\(ids[1])/restore").status == 200, "the recent one can")
        }
    }

    /// A selection as a ZIP: a signed, token-free link; the stored files as they are, or re-encoded
    /// and bounded in size; names unique; what was deleted since, or whose file is gone, is named in
    /// NOTES.txt.
    @Test func aSelectionDownloadsAsAZipBySignedLink() async throws {
        try await InProcessGateway.test { gateway in
            let jpeg = try Samples.bytes("dev01", "input.jpg")
            let png = try Samples.bytes("dev01", "alpha.png")
            var ids: [String] = []
            for (bytes, name) in [(jpeg, "Shoe: side?.jpg"), (png, "cut-out.png"), (jpeg, "shoe_ side_.jpeg"), (jpeg, "gone.jpg")] {
                let created = try await gateway.uploadForm(bytes, fileName: name)
                ids.append(try #require((try created.json()["media"] as? [String: Any])?["id"] as? String))
            }
            func export(_ body: String) async throws -> HTTPAnswer {
                try await gateway.call(.POST, "/api/exports", body: Array(body.utf8), headers: [("Content-Type", "application/json")])
            }
            func idList(_ which: [Int]) -> String { which.map { "\"\(ids[$0])\"" }.joined(separator: ", ") }

            // As stored: the bytes unchanged, names from the media (made safe and unique), in the order asked.
            let asStored = try await export(#"{"mediaIds": [\#(idList([0, 1, 2, 0]))]}"#)
            #expect(asStored.status == 201, "\(asStored.text)")
            let made = try #require(try asStored.json()["export"] as? [String: Any])
            let link = try #require(made["url"] as? String)
            #expect(made["items"] as? Int == 3 && made["format"] as? String == "original" && made["maxSide"] == nil)
            #expect(asStored.header("location") == link)
            #expect(link.hasPrefix("/exports/") && link.contains("signature="))
            let archive = try await gateway.call(.GET, link, token: "")
            #expect(archive.status == 200 && archive.header("content-type") == "application/zip", "\(archive.text.prefix(200))")
            #expect(archive.header("content-disposition") == "attachment; filename=\"\(made["fileName"] as? String ?? "-")\"")
            let stored = try await ZipReader.entries(of: archive.body)
            #expect(stored.map(\.name) == ["Shoe_ side_.jpg", "cut-out.png", "shoe_ side_ (2).jpg"], "\(stored.map(\.name))")
            #expect(stored.map(\.bytes) == [jpeg, png, jpeg])

            // Re-encoded: JPEG, at most 300 px, transparency onto white; a media deleted since is named.
            let small = try await export(#"{"mediaIds": [\#(idList([1, 3]))], "format": "jpeg", "maxSide": 300}"#)
            let smallLink = try #require((try small.json()["export"] as? [String: Any])?["url"] as? String)
            #expect(try await gateway.call(.DELETE, "/api/media/\(ids[3])").status == 200)
            let converted = try await ZipReader.entries(of: try await gateway.call(.GET, smallLink, token: "").body)
            #expect(converted.map(\.name) == ["cut-out.jpg", "NOTES.txt"], "\(converted.map(\.name))")
            let first = try #require(converted.first)
            #expect(first.bytes.starts(with: [0xFF, 0xD8, 0xFF]), "a JPEG")
            let size = try ImageCodec.size(of: first.bytes)
            #expect(max(size.width, size.height) == 300, "\(size)")
            #expect(String(decoding: converted[1].bytes, as: UTF8.self).contains(ids[3]))
            let webp = try await export(#"{"mediaIds": [\#(idList([0]))], "format": "webp"}"#)
            let webpLink = try #require((try webp.json()["export"] as? [String: Any])?["url"] as? String)
            let webpEntries = try await ZipReader.entries(of: try await gateway.call(.GET, webpLink, token: "").body)
            #expect(webpEntries.map(\.name) == ["Shoe_ side_.webp"] && webpEntries.first?.bytes.starts(with: Array("RIFF".utf8)) == true, "\(webpEntries.map(\.name)) \(webpEntries.first?.bytes.prefix(12) ?? [])")
            #expect(try ImageCodec.size(of: webpEntries[0].bytes) == (width: 1024, height: 1024), "never resized without maxSide")

            // A file gone from the store when its entry is written (deleted for good and erased by the
            // sweeper while the link was out; here before the first entry, the same code path as in
            // the middle): left out and named in NOTES.txt, the rest delivered whole — never a
            // cut-off archive.
            let pngSha = try #require((try await gateway.call(.GET, "/api/media/\(ids[1])").json()["media"] as? [String: Any])?["sha256"] as? String)
            try FileManager.default.removeItem(at: gateway.mediaRoot.appendingPathComponent("\(pngSha.prefix(2))/\(pngSha.dropFirst(2).prefix(2))/\(pngSha).png"))
            let partial = try await gateway.call(.GET, link, token: "")
            #expect(partial.status == 200, "\(partial.text.prefix(200))")
            let delivered = try await ZipReader.entries(of: partial.body)
            #expect(delivered.map(\.name) == ["Shoe_ side_.jpg", "shoe_ side_ (2).jpg", "NOTES.txt"], "\(delivered.map(\.name))")
            #expect(delivered.prefix(2).map(\.bytes) == [jpeg, jpeg])
            let notes = String(decoding: delivered.last?.bytes ?? [], as: UTF8.self)
            #expect(notes.contains("could not be read from the store") && notes.contains(ids[1].lowercased()), "\(notes)")

            // The link is the key: a changed signature or expiry is refused, before anything is read.
            try expectError(try await gateway.call(.GET, link.replacingOccurrences(of: "signature=", with: "signature=0"), token: ""), 403, "invalid_signature")
            // The signature covers the expiry: a second later (well within the allowed lifetime) is refused.
            let expires = try #require(link.firstMatch(of: /expires=(\d+)/).flatMap { Int($0.1) })
            let later = link.replacingOccurrences(of: "expires=\(expires)", with: "expires=\(expires + 1)")
            try expectError(try await gateway.call(.GET, later, token: ""), 403, "invalid_signature")
            // What an export may hold.
            try expectError(try await export(#"{"mediaIds": []}"#), 400, "invalid_field")
            try expectError(try await export(#"{"mediaIds": ["nope"]}"#), 400, "invalid_field")
            try expectError(try await export(#"{"mediaIds": [\#(idList([0]))], "format": "tiff"}"#), 400, "invalid_field")
            try expectError(try await export(#"{"mediaIds": [\#(idList([0]))], "maxSide": 8}"#), 400, "invalid_field")
            try expectError(try await export(#"{"mediaIds": [\#(idList([0]))], "size": 8}"#), 400, "invalid_field")
            try expectError(try await export("[1]"), 400, "invalid_body")
            let many = (0...500).map { _ in "\"\(UUID().uuidString)\"" }.joined(separator: ",")
            try expectError(try await export(#"{"mediaIds": [\#(many)]}"#), 400, "invalid_field")
            try expectError(try await export(#"{"mediaIds": [\#(idList([3]))]}"#), 404, "not_found")
            try expectError(try await gateway.call(.POST, "/api/exports", body: Array(#"{"mediaIds": [\#(idList([0]))]}"#.utf8), token: ""), 401, "unauthorized")
        }
    }

    /// The answer is `status` with the JSON error shape, `code` and a message.
    func expectError(_ answer: HTTPAnswer, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(answer.status == status, "\(answer.text)", sourceLocation: sourceLocation)
        let error = try #require(try answer.json()["error"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(error["code"] as? String == code, sourceLocation: sourceLocation)
        #expect((error["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    }

    @Test func badInputGetsClearJSONErrors() async throws {
        try await InProcessGateway.test { gateway in

            try expectError(try await gateway.call(.GET, "/api/media", token: ""), 401, "unauthorized")
            try expectError(try await gateway.call(.GET, "/api/media", token: "not-a-real-token"), 401, "unauthorized")
            try expectError(try await gateway.call(.GET, "/api/media/\(UUID().uuidString)"), 404, "not_found")
            try expectError(try await gateway.call(.GET, "/api/media/not-a-uuid"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?pageSize=5000"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?sort=size"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?state=done"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?trash=yes"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?q=\(String(repeating: "x", count: 201))"), 400, "invalid_field")
            try expectError(try await gateway.call(.GET, "/api/media?q=a%0Ab"), 400, "invalid_field")
            try expectError(try await gateway.call(.POST, "/api/media/not-a-uuid/restore"), 400, "invalid_field")
            try expectError(try await gateway.uploadForm(Array("just some text".utf8), fileName: "photo.jpg"), 415, "unsupported_media_type")
            try expectError(try await gateway.call(.POST, "/api/media", body: []), 400, "invalid_upload")
            let huge = [UInt8](repeating: 0xFF, count: 16 << 20)
            try expectError(try await gateway.call(.POST, "/api/media", body: huge), 413, "payload_too_large")
            // 10 KB claiming 20000 x 20000 (400 MP): refused from its header, before any decoder sees it.
            let bomb = ImageInspectionTests.png(width: 20000, height: 20000, idat: 10_000)
            try expectError(try await gateway.uploadForm(bomb, fileName: "bomb.png"), 413, "too_many_pixels")
            // A file cut short, or with a damaged header, is named as what it claims to be.
            let jpeg = try Samples.bytes("dev03", "input.jpg")
            try expectError(try await gateway.uploadForm(Array(jpeg.prefix(jpeg.count / 2))), 422, "corrupt_image")
            try expectError(try await gateway.uploadForm(Array(bomb.prefix(20)), fileName: "x.png"), 422, "corrupt_image")
            // A collection given empty is refused, even when a multipart field names a good one.
            try expectError(try await gateway.call(.POST, "/api/media?collection=", body: jpeg), 400, "invalid_field")
            try expectError(try await gateway.uploadForm(jpeg, collection: ""), 400, "invalid_field")
            try expectError(try await gateway.uploadForm(jpeg, collection: "GOOD", query: "?collection="), 400, "invalid_field")
            #expect(try await gateway.call(.GET, "/api/media").json()["total"] as? Int == 0, "nothing refused was stored")
            let kept = try await gateway.uploadForm(jpeg, collection: "GOOD", query: "?collection=OTHER").json()["media"] as? [String: Any]
            #expect(kept?["collection"] as? String == "GOOD", "the form's field wins over the query's")
            // The gateway still serves after all of that.
            #expect(try await gateway.call(.GET, "/api/media").status == 200)
        }
    }

    /// A phone photo stored landscape with EXIF orientation 6 is a portrait: the media's width and
    /// height are the upright ones, as every browser and the engine (which applies the orientation)
    /// show it. The pixel cap is configurable.
    @Test func aRotatedPhotoIsStoredWithItsUprightSizeAndThePixelCapIsConfigurable() async throws {
        try await InProcessGateway.test(environment: ["UPLOAD_MAX_PIXELS": "1000000"]) { gateway in
            let jpeg = try ImageInspectionTests.encoded(.jpeg, width: 320, height: 200)
            let stored = try #require(ImageSniffer.sniff(jpeg))
            let answer = try await gateway.uploadForm(ImageInspectionTests.withEXIF(jpeg, orientation: 6))
            #expect(answer.status == 201, "\(answer.text)")
            let media = try #require(try answer.json()["media"] as? [String: Any])
            #expect(media["width"] as? Int == 200 && media["height"] as? Int == 320, "\(media) (stored \(stored))")

            let big = ImageInspectionTests.png(width: 1001, height: 1000)
            let refused = try await gateway.uploadForm(big, fileName: "big.png")
            #expect(refused.status == 413, "\(refused.text)")
            #expect((try refused.json()["error"] as? [String: Any])?["message"] as? String
                == "the image is 1001x1000 (1.0 MP); uploads are limited to 1.0 MP (UPLOAD_MAX_PIXELS)")
        }
    }

    /// The grid and the history show thumbnails, never the full files: small, upright, JPEG (PNG
    /// when transparent), made once and kept on disk, revalidated by ETag.
    @Test func thumbnailsAreSmallUprightCachedAndRevalidated() async throws {
        try await InProcessGateway.test { gateway in
            func decoded(_ answer: HTTPAnswer) throws -> (width: Int, height: Int, bands: Int) {
                let image = try ImageCodec.decode(answer.body, maxPixels: 1 << 20, keepAlpha: true)
                return (image.width, image.height, image.bands)
            }
            let jpeg = try Samples.bytes("dev01", "input.jpg")
            let created = try await gateway.uploadForm(jpeg)
            let media = try #require(try created.json()["media"] as? [String: Any])
            let id = try #require(media["id"] as? String)
            let versionId = try #require(media["currentVersionId"] as? String)
            let sha = try #require(media["sha256"] as? String)
            #expect(media["thumbnailUrl"] as? String == "/api/media/\(id)/thumbnail")

            // 256 px by default, JPEG, an ETag of the file and the size.
            let thumbnail = try await gateway.call(.GET, "/api/media/\(id)/thumbnail")
            #expect(thumbnail.status == 200 && thumbnail.header("content-type") == "image/jpeg", "\(thumbnail.status) \(thumbnail.text.prefix(200))")
            #expect(try decoded(thumbnail) == (256, 256, 3))
            #expect(thumbnail.body.count < jpeg.count / 4, "\(thumbnail.body.count) bytes")
            #expect(thumbnail.header("etag") == "\"\(sha)-256\"" && thumbnail.header("cache-control") == "private, no-cache")
            // Made once, kept beside the media.
            let kept = gateway.mediaRoot.appendingPathComponent("thumbnails/256/\(sha.prefix(2))/\(sha).jpg")
            #expect(FileManager.default.contents(atPath: kept.path).map(Array.init) == thumbnail.body)
            let again = try await gateway.call(.GET, "/api/media/\(id)/thumbnail", headers: [("If-None-Match", "\"\(sha)-256\"")])
            #expect(again.status == 304 && again.body.isEmpty)
            let small = try await gateway.call(.GET, "/api/media/\(id)/thumbnail?size=128")
            #expect(try decoded(small) == (128, 128, 3) && small.header("etag") == "\"\(sha)-128\"")
            for bad in ["100", "abc", "1024", "-1"] {
                try expectError(try await gateway.call(.GET, "/api/media/\(id)/thumbnail?size=\(bad)"), 400, "invalid_field")
            }

            // A version's thumbnail never changes: cached for a year; an unknown version is 404.
            let version = try await gateway.call(.GET, "/api/media/\(id)/versions/\(versionId)/thumbnail?size=512")
            #expect(try decoded(version) == (512, 512, 3) && version.header("cache-control") == "private, max-age=31536000, immutable")
            try expectError(try await gateway.call(.GET, "/api/media/\(id)/versions/\(UUID().uuidString.lowercased())/thumbnail"), 404, "not_found")
            try expectError(try await gateway.call(.GET, "/api/media/\(UUID().uuidString.lowercased())/thumbnail"), 404, "not_found")

            // Upright: a landscape JPEG turned by its EXIF orientation is a portrait thumbnail, and a
            // small image is never enlarged.
            let rotated = try await gateway.uploadForm(ImageInspectionTests.withEXIF(try ImageInspectionTests.encoded(.jpeg, width: 320, height: 200), orientation: 6))
            let rotatedId = try #require((try rotated.json()["media"] as? [String: Any])?["id"] as? String)
            #expect(try decoded(try await gateway.call(.GET, "/api/media/\(rotatedId)/thumbnail?size=128")) == (80, 128, 3))
            #expect(try decoded(try await gateway.call(.GET, "/api/media/\(rotatedId)/thumbnail?size=512")) == (200, 320, 3))

            // Transparency stays: a PNG with alpha gives a PNG with alpha.
            var rgba = [UInt8](repeating: 0, count: 300 * 150 * 4)
            for i in stride(from: 0, to: rgba.count, by: 4) { rgba[i] = 200; rgba[i + 3] = i % 8 == 0 ? 255 : 0 }
            let png = try ImageCodec.encode(rgba, width: 300, height: 150, bands: 4, format: .png)
            let transparent = try await gateway.uploadForm(png, fileName: "cut-out.png")
            let transparentId = try #require((try transparent.json()["media"] as? [String: Any])?["id"] as? String)
            let cutOut = try await gateway.call(.GET, "/api/media/\(transparentId)/thumbnail")
            let cutOutSize = try decoded(cutOut)
            #expect(cutOut.header("content-type") == "image/png" && cutOutSize == (256, 128, 4), "\(cutOutSize)")
        }
    }

    /// A page of tiles asks for every thumbnail at once: one asked for again while it is being
    /// made is waited for, not made again (the gateway's counter says how many were made).
    @Test func aThumbnailAskedForManyTimesAtOnceIsMadeOnce() async throws {
        // A process of its own: the counter is its process's metrics (swift-metrics' global system,
        // which the tests' process does not bootstrap).
        let gateway = try await GatewayFixture.start()
        defer { Task { await gateway.stop() } }
        let created = try await gateway.uploadForm(try Samples.bytes("dev07", "input.jpg"))
        let id = try #require((try created.json()["media"] as? [String: Any])?["id"] as? String)
        let answers = try await withThrowingTaskGroup(of: HTTPAnswer.self) { group in
            for _ in 0..<8 { group.addTask { try await gateway.call(.GET, "/api/media/\(id)/thumbnail?size=512") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 200 } && Set(answers.map(\.body)).count == 1)
        _ = try await gateway.call(.GET, "/api/media/\(id)/thumbnail?size=512")
        let metrics = try await gateway.call(.GET, "/metrics", token: "").text
        let made = metrics.split(separator: "\n").first { $0.hasPrefix("gateway_thumbnails_made_total") && $0.contains("size=\"512\"") }
        #expect(made?.split(separator: " ").last == "1", "\(made ?? "no counter")")
    }

    @Test func theAdminUIIsServedWithoutATokenAndWithAStrictPolicy() async throws {
        try await InProcessGateway.test { gateway in
            let page = try await gateway.call(.GET, "/", token: "")
            #expect(page.status == 200)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            #expect(page.text.contains("<script type=\"module\" src=\"/ui/app.js\"></script>"))
            let policy = try #require(page.header("content-security-policy"))
            #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "\(policy)")
            let styles = try await gateway.call(.GET, "/ui/styles.css", token: "")
            #expect(styles.status == 200 && styles.header("content-type") == "text/css; charset=utf-8" && !styles.body.isEmpty)
            // Every module the page loads, following the imports from app.js: served, as JavaScript.
            var pending = ["app.js"], served: Set<String> = []
            while let file = pending.popLast() {
                guard served.insert(file).inserted else { continue }
                let answer = try await gateway.call(.GET, "/ui/\(file)", token: "")
                #expect(answer.status == 200 && answer.header("content-type") == "text/javascript; charset=utf-8", "\(file): \(answer.status)")
                #expect(!answer.body.isEmpty, "\(file)")
                let imports = try NSRegularExpression(pattern: #"(?:from|import) "\./([a-z]+\.js)""#)
                let text = answer.text
                for match in imports.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    if let range = Range(match.range(at: 1), in: text) { pending.append(String(text[range])) }
                }
            }
            #expect(served.count >= 9, "the page's modules: \(served.sorted())")
            let missing = try await gateway.call(.GET, "/ui/missing.js", token: "")
            #expect(missing.status == 404)
            #expect(try missing.json()["error"] != nil, "the JSON error shape")
            #expect(try await gateway.call(.GET, "/ui/..%2Fopenapi.json", token: "").status == 404, "only the UI's own files")
        }
    }

    /// A method a documented path does not take is 405 with `Allow` (the methods the OpenAPI
    /// document gives it); an unknown path and a handler's own 404 stay 404.
    @Test func anUndeclaredMethodIs405WithAllow() async throws {
        try await InProcessGateway.test { gateway in
            let cases: [(HTTPMethod, String, String)] = [
                (.RAW(value: "TRACE"), "/metrics", "GET"),
                (.DELETE, "/api/ai-image/settings", "GET, PUT"),
                (.PUT, "/api/media/\(UUID().uuidString)", "DELETE, GET, PATCH"),
                (.PUT, "/api/ai-image/variations/\(UUID().uuidString)/choose", "POST"),
                // A literal segment wins over a parameter, as in the router: not /api/media/{id}'s methods.
                (.PATCH, "/api/media/trash", "DELETE"),
                (.GET, "/api/media/trash", "DELETE"),
            ]
            for (method, path, allow) in cases {
                let answer = try await gateway.call(method, path)
                #expect(answer.status == 405, "\(method) \(path): \(answer.status) \(answer.text)")
                #expect(answer.header("allow") == allow, "\(method) \(path): \(answer.header("allow") ?? "-")")
                #expect(try answer.json()["error"] != nil, "the JSON error shape")
            }
            #expect(try await gateway.call(.GET, "/api/no-such-thing").status == 404)
            #expect(try await gateway.call(.GET, "/api/media/\(UUID().uuidString)").status == 404, "a handler's 404 stays")
        }
    }

    /// A 503 says when to try again: this gateway has a broker virtual host of its own, where no
    /// settings-service answers (those of tests running meanwhile are on other hosts).
    @Test func aDependencyAwayIs503WithRetryAfter() async throws {
        let broker = try await SettingsServiceTests.ownVirtualHost()
        defer { Task { await broker.delete() } }
        try await InProcessGateway.test(environment: ["AMQP_URL": broker.url]) { gateway in
            let answer = try await gateway.call(.GET, "/api/ai-image/settings")
            #expect(answer.status == 503, "\(answer.text)")
            #expect(try answer.json()["error"] != nil, "the JSON error shape")
            #expect(answer.header("retry-after") == "5")
        }
    }

    @Test func mediaLibraryAnswersMatchTheDocument() async throws {
        try await InProcessGateway.test { gateway in
            let contract = try await APIContract.load(from: gateway)
            let uploaded = try await gateway.call(
                .POST, "/api/media?collection=BANNERS", body: try Samples.bytes("dev01", "input.jpg"),
                headers: [("Content-Type", "application/octet-stream")])
            #expect(uploaded.status == 201)
            contract.check(uploaded, "post", "/api/media")
            let id = try #require((try uploaded.json()["media"] as? [String: Any])?["id"] as? String)
            let notImage = try await gateway.call(.POST, "/api/media", body: Array("just text".utf8))
            #expect(notImage.status == 415)
            contract.check(notImage, "post", "/api/media")
            let list = try await gateway.call(.GET, "/api/media?collection=BANNERS&page=1&pageSize=10")
            #expect(list.status == 200)
            contract.check(list, "get", "/api/media")
            let badPage = try await gateway.call(.GET, "/api/media?page=0")
            #expect(badPage.status == 400)
            contract.check(badPage, "get", "/api/media")
            let show = try await gateway.call(.GET, "/api/media/\(id)")
            contract.check(show, "get", "/api/media/{id}")
            let forbidden = try await gateway.call(.GET, "/api/media/\(id)", token: "not-a-token")
            #expect(forbidden.status == 401)
            contract.check(forbidden, "get", "/api/media/{id}")
            let deleted = try await gateway.call(.DELETE, "/api/media/\(id)")
            #expect(deleted.status == 200)
            contract.check(deleted, "delete", "/api/media/{id}")
            let gone = try await gateway.call(.GET, "/api/media/\(id)/versions")
            #expect(gone.status == 404)
            contract.check(gone, "get", "/api/media/{id}/versions")
            let health = try await gateway.call(.GET, "/healthz", token: "")
            contract.check(health, "get", "/healthz")
            let unsigned = try await gateway.call(.GET, "/media/\(id)/file?expires=1&signature=00", token: "")
            #expect(unsigned.status == 403)
            contract.check(unsigned, "get", "/media/{id}/file")
        }
    }
}
