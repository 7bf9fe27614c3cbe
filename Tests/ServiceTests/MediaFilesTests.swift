import Foundation
import ServiceCore
import ServiceSupport
import Testing
import TestSupport

/// Erasing the files of media deleted for good while others may store the same bytes
/// (`MediaFiles.erase`): a file goes only when nobody refers to it and nobody stored it lately, and
/// a writer storing it while it is being erased ends up with the file in place.
@Suite("Media files: erasing what is deleted for good")
struct MediaFilesTests {
    let files: MediaFiles
    let bytes = Array("not really a picture, but bytes all the same".utf8)
    let image = SniffedImage(mimeType: "image/png", fileExtension: "png", width: 1, height: 1)

    init() throws {
        files = MediaFiles(root: try TestEnvironment.scratchDirectory().appendingPathComponent("media"))
    }

    func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: files.root.appendingPathComponent(path).path)
    }

    /// Makes the stored file look written `age` ago.
    func age(_ path: String, by age: TimeInterval) throws {
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: files.root.appendingPathComponent(path).path)
    }

    /// Nothing but the file itself is left in its folder (no copy moved aside and forgotten).
    func folderHoldsOnly(_ path: String?, besides stored: String) throws -> Bool {
        let folder = files.root.appendingPathComponent(stored).deletingLastPathComponent()
        return try FileManager.default.contentsOfDirectory(atPath: folder.path) == (path.map { [$0] } ?? [])
    }

    @Test func aFileGoesOnlyWhenNobodyRefersToItNorStoredItLately() async throws {
        let stored = try files.store(bytes, as: image)
        let name = URL(fileURLWithPath: stored.path).lastPathComponent
        var asked = 0
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { asked += 1; return false } == .touchedRecently)
        #expect(asked == 0 && exists(stored.path), "just stored: kept without asking")

        try age(stored.path, by: 120)
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { true } == .referenced)
        #expect(try exists(stored.path) && folderHoldsOnly(name, besides: stored.path))

        // Storing the same bytes again touches the file: a sweep now keeps it.
        _ = try files.store(bytes, as: image)
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { false } == .touchedRecently)

        try age(stored.path, by: 120)
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { false } == .erased)
        #expect(try !exists(stored.path) && folderHoldsOnly(nil, besides: stored.path))
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { false } == .absent)
        #expect(try await files.erase("../../etc/passwd", unlessTouchedWithin: .zero) { false } == .absent, "never outside the root")
    }

    /// The race the design is for: an upload of the same bytes while the sweeper has moved the file
    /// aside and is asking the database again. The writer finds no file to touch and writes it again;
    /// the sweeper erases only the copy it moved aside. A file is moved aside only when the first
    /// question (file in place) found it old and nobody's.
    @Test func aWriterStoringTheBytesDuringAnErasureKeepsItsFile() async throws {
        let stored = try files.store(bytes, as: image)
        try age(stored.path, by: 3600)
        var asked = 0
        let outcome = try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { () async throws -> Bool in
            asked += 1
            #expect(exists(stored.path) == (asked == 1), "in place when first asked, aside when asked again")
            if asked == 2 {
                let again = try files.store(bytes, as: image)
                #expect(again == stored)
            }
            return false // the writer has not committed its row yet
        }
        #expect(outcome == .erased && asked == 2)
        #expect(exists(stored.path), "the writer's copy is in place")
        #expect(try Array(Data(contentsOf: files.root.appendingPathComponent(stored.path))) == bytes)
        #expect(try folderHoldsOnly(URL(fileURLWithPath: stored.path).lastPathComponent, besides: stored.path))
    }

    /// Referred to by the time it is asked again (a row committed meanwhile): put back and touched,
    /// so that a later sweep gives it the grace again.
    @Test func aFileReferredToMeanwhileIsPutBackAndTouched() async throws {
        let stored = try files.store(bytes, as: image)
        try age(stored.path, by: 3600)
        var asked = 0
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { asked += 1; return asked == 2 } == .referenced)
        let modified = try #require(try FileManager.default.attributesOfItem(
            atPath: files.root.appendingPathComponent(stored.path).path)[.modificationDate] as? Date)
        #expect(Date().timeIntervalSince(modified) < 60, "touched when put back")
        #expect(try folderHoldsOnly(URL(fileURLWithPath: stored.path).lastPathComponent, besides: stored.path))
    }

    /// A sweeper that died with the file moved aside: the next erasure puts it back before judging it.
    @Test func aFileLeftAsideByACrashIsPutBack() async throws {
        let stored = try files.store(bytes, as: image)
        try age(stored.path, by: 3600)
        let url = files.root.appendingPathComponent(stored.path)
        let aside = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).erasing")
        #expect(rename(url.path, aside.path) == 0)
        #expect(try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { true } == .referenced)
        #expect(try exists(stored.path) && folderHoldsOnly(url.lastPathComponent, besides: stored.path))
    }

    /// A database that fails mid-sweep leaves the file where it was.
    @Test func aFailedQuestionPutsTheFileBack() async throws {
        struct Down: Error {}
        let stored = try files.store(bytes, as: image)
        try age(stored.path, by: 3600)
        await #expect(throws: Down.self) { try await files.erase(stored.path, unlessTouchedWithin: .seconds(60)) { throw Down() } }
        #expect(try exists(stored.path) && folderHoldsOnly(URL(fileURLWithPath: stored.path).lastPathComponent, besides: stored.path))
    }
}
