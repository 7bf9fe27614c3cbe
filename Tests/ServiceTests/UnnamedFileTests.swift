import Database
import Foundation
import Logging
import PostgresNIO
import ServiceCore
import ServiceSupport
import Testing
import TestSupport

@testable import ApiGateway

/// Files that nothing names: a process that died between storing a file and committing the row
/// naming it (an upload, a result whose job then ended otherwise) leaves a file no sweep knew of.
/// The gateway's walk of the media folder queues those untouched for a day, and the sweeper erases
/// them with the same checks as any purged file (docs/data.md, "Files nothing names").
@Suite("Files that nothing names")
struct UnnamedFileTests {
    let image = SniffedImage(mimeType: "image/png", fileExtension: "png", width: 1, height: 1)

    /// A migrated database, an empty media folder, its queue and its sweeper (grace 60 s), for `body`.
    func withSweeper(
        _ body: @Sendable (PostgresClient, MediaFiles, PurgedFileStore, PurgedFileSweeper) async throws -> Void
    ) async throws {
        let files = MediaFiles(root: try TestEnvironment.scratchDirectory().appendingPathComponent("media"))
        let database = try await TemporaryDatabase.create()
        defer { Task { await database.drop() } }
        try await SystemDatabase.withClient(database.url) { client in
            _ = try await Migrator(logger: Logger(label: "test.migrator")).migrate(on: client)
            let store = PurgedFileStore(client: client)
            let sweeper = PurgedFileSweeper(
                store: store, files: files, thumbnails: Thumbnails(files: files, maxPixels: 1_000_000), grace: .seconds(60),
                logger: Logger(label: "test.sweeper"))
            try await body(client, files, store, sweeper)
        }
    }

    @Test func aWalkQueuesOnlyOldFilesNoRowNamesAndTheSweeperErasesThem() async throws {
        try await withSweeper { client, files, store, sweeper in
            let root = files.root
            let twoDays: TimeInterval = 2 * 86_400
            func age(_ path: String) throws {
                try FileManager.default.setAttributes(
                    [.modificationDate: Date().addingTimeInterval(-twoDays)], ofItemAtPath: root.appendingPathComponent(path).path)
            }
            func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path) }

            // Named by a media row, a version, a variation: kept however old.
            let named = try files.store(Array("the media's own file".utf8), as: image)
            let media = try await MediaStore(client: client).create(collection: "PRODUCTS", originalFilename: "a.png", file: named)
            // Nothing names these: an upload whose row never came, and a result whose job ended otherwise.
            let lostUpload = try files.store(Array("an upload the gateway died before naming".utf8), as: image)
            let lostResult = try files.store(Array("a result stored before its job was cancelled".utf8), as: image)
            // Nothing names this one either, but it was stored lately: a writer may be about to name it.
            let recent = try files.store(Array("stored a moment ago".utf8), as: image)
            for path in [named.path, lostUpload.path, lostResult.path] { try age(path) }
            // What a crash leaves mid-write, and files that are not stored media: left alone or tidied.
            let folder = root.appendingPathComponent(lostUpload.path).deletingLastPathComponent()
            let part = folder.appendingPathComponent(".\(UUID().uuidString).part")
            try Data("half a file".utf8).write(to: part)
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-twoDays)], ofItemAtPath: part.path)
            let stranger = root.appendingPathComponent("notes.txt")
            try Data("not a stored file".utf8).write(to: stranger)
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-twoDays)], ofItemAtPath: stranger.path)
            let thumbnail = root.appendingPathComponent("thumbnails/256/\(lostUpload.sha256.prefix(2))/\(lostUpload.sha256).jpg")
            try FileManager.default.createDirectory(at: thumbnail.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("a thumbnail".utf8).write(to: thumbnail)

            let queued = try await sweeper.queueUnnamedFiles(olderThan: .seconds(86_400))
            #expect(queued == 2, "the two old files nothing names")
            #expect(!exists(lostUpload.path) && !exists(lostResult.path), "erased by the sweep that follows")
            #expect(exists(named.path) && exists(recent.path), "named, or stored lately: kept")
            #expect(!FileManager.default.fileExists(atPath: part.path), "an old write's temporary file is removed")
            #expect(FileManager.default.fileExists(atPath: stranger.path), "a file not named like stored media is not ours to judge")
            #expect(try await store.count() == 0, "nothing left in the queue")
            #expect(try await MediaStore(client: client).media(media.id) != nil)

            // A second walk finds nothing new; a file named after the walk queued it is kept by the sweeper.
            #expect(try await sweeper.queueUnnamedFiles(olderThan: .seconds(86_400)) == 0)
            let late = try files.store(Array("named after the walk saw it".utf8), as: image)
            try age(late.path)
            #expect(try await store.enqueueUnreferenced([late.path]) == 1)
            _ = try await MediaStore(client: client).create(collection: "PRODUCTS", originalFilename: "late.png", file: late)
            try await sweeper.sweep()
            #expect(exists(late.path), "named before the sweep: kept")
            #expect(try await store.enqueueUnreferenced([late.path, named.path]) == 0, "named files are never queued")
        }
    }

    /// A copy an erasure moved aside is put back by the walk only once it was moved aside before the
    /// cutoff (by its status change time: a rename keeps the file's old modification time), so an
    /// erasure in progress keeps its copy.
    @Test func onlyACopyMovedAsideBeforeTheCutoffIsPutBack() async throws {
        let files = MediaFiles(root: try TestEnvironment.scratchDirectory().appendingPathComponent("media"))
        let stored = try files.store(Array("a file whose erasure died".utf8), as: image)
        let url = files.root.appendingPathComponent(stored.path)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-2 * 86_400)], ofItemAtPath: url.path)
        let aside = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).erasing")
        try FileManager.default.moveItem(at: url, to: aside)
        try await files.forEachFile(untouchedSince: Date().addingTimeInterval(-3600)) { _ in }
        #expect(FileManager.default.fileExists(atPath: aside.path), "moved aside just now: an erasure's, left to it")
        try await files.forEachFile(untouchedSince: Date().addingTimeInterval(60)) { _ in }
        #expect(FileManager.default.fileExists(atPath: url.path) && !FileManager.default.fileExists(atPath: aside.path), "put back")
    }

    /// A folder whose files a database does not know (a fresh or restored database, another
    /// deployment's folder) is never emptied on that database's word: nothing is queued when it
    /// names no file at all, or when more than a crash's few files are unnamed.
    @Test(arguments: [false, true])
    func aFolderTheDatabaseDoesNotKnowIsLeftAlone(databaseNamesOne: Bool) async throws {
        try await withSweeper { client, files, store, sweeper in
            let root = files.root
            // A library of 5 files, or of 12 of which the database names one.
            let count = databaseNamesOne ? 12 : 5
            var stored: [StoredFile] = []
            for index in 0..<count {
                let file = try files.store(Array("photo number \(index)".utf8), as: image)
                try FileManager.default.setAttributes(
                    [.modificationDate: Date().addingTimeInterval(-2 * 86_400)], ofItemAtPath: root.appendingPathComponent(file.path).path)
                stored.append(file)
            }
            if databaseNamesOne {
                _ = try await MediaStore(client: client).create(collection: "PRODUCTS", originalFilename: "a.png", file: stored[0])
            }
            #expect(try await sweeper.queueUnnamedFiles(olderThan: .seconds(86_400)) == 0, "refused")
            #expect(try await store.count() == 0, "nothing queued")
            for file in stored {
                #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(file.path).path), "\(file.path) kept")
            }
        }
    }

    @Test func aWalkMayQueueTenFilesOrOnePercent() {
        #expect(PurgedFileSweeper.unnamedLimit(lookedAt: 0) == 10)
        #expect(PurgedFileSweeper.unnamedLimit(lookedAt: 1500) == 15)
        #expect(PurgedFileSweeper.unnamedLimit(lookedAt: 50_000_000) == PurgedFileSweeper.mostUnnamed)
    }

    @Test func theWalkIsDailyUnlessSetOtherwiseAndZeroTurnsItOff() throws {
        let secrets = EndpointConfigurationTests.secrets
        #expect(try GatewayConfiguration.fromEnvironment(EnvironmentVariables(secrets)).unnamedFileScanInterval == .seconds(86_400))
        let hourly = secrets.merging(["UNNAMED_FILE_SCAN_HOURS": "1"]) { $1 }
        #expect(try GatewayConfiguration.fromEnvironment(EnvironmentVariables(hourly)).unnamedFileScanInterval == .seconds(3600))
        let off = secrets.merging(["UNNAMED_FILE_SCAN_HOURS": "0"]) { $1 }
        #expect(try GatewayConfiguration.fromEnvironment(EnvironmentVariables(off)).unnamedFileScanInterval == nil)
        let bad = secrets.merging(["UNNAMED_FILE_SCAN_HOURS": "-1"]) { $1 }
        #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment(EnvironmentVariables(bad)) }
    }
}
