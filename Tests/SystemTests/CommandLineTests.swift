import Foundation
import Imaging
import Testing
import TestSupport

/// `cyclorama`, the command line, against a whole running system: a folder of photos in, studio
/// shots out; a run interrupted and resumed without uploading or paying twice; a failing photo
/// reported; status, settings and the media list.
@Suite("The command line", .systemSlot, .tags(.longSystemTest), .timeLimit(.minutes(15)))
struct CommandLineTests {
    /// What a run of `cyclorama` gave.
    struct Outcome {
        var status: Int32
        var out: String
        var err: String
        func json() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "not JSON: \(out)\n\(err)")
        }
    }

    /// A `cyclorama` process (output to files: nothing of ours is held by a pipe).
    final class Command: @unchecked Sendable {
        let process = Process()
        let outFile: URL, errFile: URL

        init(_ arguments: [String], system: CycloramaSystem, scratch: URL) throws {
            let id = UUID().uuidString.prefix(8)
            outFile = scratch.appendingPathComponent("cli-\(id).out")
            errFile = scratch.appendingPathComponent("cli-\(id).err")
            FileManager.default.createFile(atPath: outFile.path, contents: nil)
            FileManager.default.createFile(atPath: errFile.path, contents: nil)
            process.executableURL = TestEnvironment.binaryDirectory.appendingPathComponent("cyclorama")
            process.arguments = arguments
            process.currentDirectoryURL = scratch
            var environment = ProcessInfo.processInfo.environment
            environment["CYCLORAMA_URL"] = system.gatewayURL
            environment["CYCLORAMA_TOKEN"] = system.token
            process.environment = environment
            process.standardOutput = try FileHandle(forWritingTo: outFile)
            process.standardError = try FileHandle(forWritingTo: errFile)
            try process.run()
        }

        func interrupt() { kill(process.processIdentifier, SIGINT) }

        func finish(timeout: Duration = .seconds(180)) async throws -> Outcome {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                guard ContinuousClock.now < deadline else {
                    process.terminate()
                    throw FixtureError(message: "cyclorama did not finish in \(timeout): \((try? String(contentsOf: errFile, encoding: .utf8)) ?? "")")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            return Outcome(
                status: process.terminationStatus, out: try String(contentsOf: outFile, encoding: .utf8),
                err: try String(contentsOf: errFile, encoding: .utf8))
        }
    }

    func run(_ arguments: String..., system: CycloramaSystem, scratch: URL) async throws -> Outcome {
        try await Command(arguments, system: system, scratch: scratch).finish()
    }

    /// A folder of sample photos (and one file that is not an image).
    func photos(_ names: [(String, String)], in scratch: URL) throws -> URL {
        let folder = scratch.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (sample, name) in names {
            try Data(try Samples.bytes(sample, "input.jpg")).write(to: folder.appendingPathComponent(name))
        }
        return folder
    }

    func mediaTotal(_ system: CycloramaSystem) async throws -> Int {
        try (try await system.call(.GET, "/api/media?pageSize=1").json()["total"] as? Int) ?? -1
    }

    func runState(_ folder: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(".cyclorama-run.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Three photos and a text file named like a photo: three studio shots written next to their
    /// names, the fourth reported with the gateway's reason, exit status 1; run again, nothing
    /// is uploaded twice.
    @Test func aFolderOfPhotosBecomesStudioShotsAndAFailureIsReported() async throws {
        try await CycloramaSystem.run { system in
            let scratch = try TestEnvironment.scratchDirectory()
            let folder = try photos([("dev01", "bottle.jpg"), ("dev03", "shoe.jpg"), ("dev08", "lamp.jpg")], in: scratch)
            try Data("not a photo".utf8).write(to: folder.appendingPathComponent("notes.png"))
            let before = try await mediaTotal(system)
            let out = scratch.appendingPathComponent("out")
            let first = try await run("process", folder.path, "--out", out.path, "--shadow", "soft", "--json", system: system, scratch: scratch)
            #expect(first.status == 1, "a photo failed: the exit status says so\n\(first.err)")
            let summary = try first.json()
            #expect(summary["done"] as? Int == 3 && summary["failed"] as? Int == 1, "\(summary)\n\(first.err)\n\(system.logs())")
            let failures = summary["failures"] as? [[String: String]] ?? []
            #expect(failures.first?["name"] == "notes.png" && failures.first?["reason"]?.contains("415") == true, "\(failures)")
            for name in ["bottle", "shoe", "lamp"] {
                let results = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(name + ".") }
                try #require(results.count == 1, "\(name): \(results)")
                let bytes = try Data(contentsOf: out.appendingPathComponent(results[0]))
                let input = try Data(contentsOf: folder.appendingPathComponent(name + ".jpg"))
                #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) || bytes.starts(with: [0xFF, 0xD8, 0xFF]), "\(results[0]) is an image")
                #expect(bytes != input, "\(results[0]) is the result, not the photo")
            }
            #expect(try await mediaTotal(system) == before + 3)
            #expect(first.err.contains("failed  notes.png"), "a line for the failure:\n\(first.err)")

            // Again: what is done is skipped (no upload, no job), the failure is tried again.
            let second = try await run("process", folder.path, "--out", out.path, "--shadow", "soft", "--json", system: system, scratch: scratch)
            #expect(second.status == 1)
            #expect(try second.json()["done"] as? Int == 3)
            // The upload asked for again is the same request (the same bytes under the same key):
            // the gateway's first answer comes back, not a 409 for a different body.
            let again = try second.json()["failures"] as? [[String: String]] ?? []
            #expect(again.first?["name"] == "notes.png" && again.first?["reason"]?.contains("415") == true, "\(again)")
            #expect(try await mediaTotal(system) == before + 3, "nothing uploaded twice")
            // Other options on the same output folder: refused, so results never mix.
            let other = try await run("process", folder.path, "--out", out.path, "--shadow", "dramatic", system: system, scratch: scratch)
            #expect(other.status != 0 && other.err.contains("other options"), "\(other.err)")

            // A marketplace frame by name (docs/framing.md); a word that names none is refused before anything is sent.
            let framedOut = scratch.appendingPathComponent("framed")
            let framed = try await run(
                "process", folder.appendingPathComponent("bottle.jpg").path, "--out", framedOut.path, "--framing", "amazon", "--json",
                system: system, scratch: scratch)
            #expect(framed.status == 0, "\(framed.err)")
            let shot = try FileManager.default.contentsOfDirectory(atPath: framedOut.path).first { $0.hasPrefix("bottle.") }
            let picture = try RasterImage(decoding: Array(try Data(contentsOf: framedOut.appendingPathComponent(try #require(shot)))))
            #expect(picture.width == picture.height && (1600...2000).contains(picture.width), "\(picture.width)x\(picture.height)")
            let bogus = try await run("process", folder.path, "--out", scratch.appendingPathComponent("bogus").path, "--framing", "etsy",
                                      system: system, scratch: scratch)
            #expect(bogus.status != 0 && bogus.err.contains("--framing"), "\(bogus.err)")

            // Results held for review: the media shows the photo until someone approves, and the
            // command writes each job's own result.
            try await system.updateSettings(["aiImageReviewBeforeReplace": "true"])
            let reviewedOut = scratch.appendingPathComponent("reviewed")
            let reviewed = try await run(
                "process", folder.appendingPathComponent("shoe.jpg").path, "--out", reviewedOut.path, "--json", system: system, scratch: scratch)
            #expect(reviewed.status == 0, "\(reviewed.err)")
            let written = try #require(try FileManager.default.contentsOfDirectory(atPath: reviewedOut.path).first { $0.hasPrefix("shoe.") })
            let result = try Data(contentsOf: reviewedOut.appendingPathComponent(written))
            let photo = try Data(contentsOf: folder.appendingPathComponent("shoe.jpg"))
            #expect(result != photo, "the studio shot held for review, not the photo the media still shows")
            let mediaId = try #require((try reviewed.json()["results"] as? [[String: Any]])?.first?["mediaId"] as? String)
            #expect(try await system.call(.GET, "/api/media/\(mediaId)/file").body == Array(photo), "not replaced before approval")
        }
    }

    /// A job that did not succeed (here cancelled) is asked for again when the command runs again:
    /// a new job, not the cancelled one given back under the same Idempotency-Key.
    @Test func aJobThatDidNotSucceedIsAskedForAgainAsANewJob() async throws {
        try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "50"]]) { system in
            try system.holdEngineJobs()
            let scratch = try TestEnvironment.scratchDirectory()
            let folder = try photos([("dev01", "a.jpg"), ("dev02", "b.jpg")], in: scratch)
            let out = scratch.appendingPathComponent("out")
            let command = try Command(["process", folder.path, "--out", out.path, "--json"], system: system, scratch: scratch)
            let deadline = ContinuousClock.now + .seconds(60)
            var batch: String?
            while batch == nil, ContinuousClock.now < deadline {
                let items = (try? runState(out))?["items"] as? [[String: Any]] ?? []
                batch = items.compactMap { $0["batchId"] as? String }.first
                try await Task.sleep(for: .milliseconds(50))
            }
            let batchId = try #require(batch, "the batch was never sent")
            #expect(try await system.call(.POST, "/api/ai-image/batch/\(batchId)/cancel", json: "{}").status == 200)
            try system.releaseEngineJobs()
            let first = try await command.finish()
            let firstFailed = try first.json()["failed"] as? Int
            #expect(first.status == 1 && firstFailed == 2, "\(first.out)\(first.err)")
            let cancelledJobs = Set((try runState(out)["items"] as? [[String: Any]] ?? []).compactMap { $0["jobId"] as? String })
            #expect(cancelledJobs.count == 2)

            let second = try await run("process", folder.path, "--out", out.path, "--json", system: system, scratch: scratch)
            let secondDone = try second.json()["done"] as? Int
            #expect(second.status == 0 && secondDone == 2, "\(second.out)\(second.err)")
            let newJobs = Set((try runState(out)["items"] as? [[String: Any]] ?? []).compactMap { $0["jobId"] as? String })
            #expect(newJobs.count == 2 && newJobs.isDisjoint(with: cancelledJobs), "new jobs: \(newJobs), cancelled: \(cancelledJobs)")
        }
    }

    /// Ctrl-C detaches: the batch goes on in Cyclorama; the same command again follows it and
    /// fetches the results — the same jobs (nothing paid twice), no upload repeated.
    @Test func anInterruptedRunIsResumedWithoutUploadingOrPayingTwice() async throws {
        // The engine's jobs are held until the command was interrupted, so it is interrupted before
        // any ended however loaded the machine (timed jobs once all finished first under a full
        // test run's load), and let go before it is run again.
        try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]]) { system in
            try system.holdEngineJobs()
            let scratch = try TestEnvironment.scratchDirectory()
            let folder = try photos([("dev01", "a.jpg"), ("dev02", "b.jpg"), ("dev03", "c.jpg"), ("dev04", "d.jpg")], in: scratch)
            let out = scratch.appendingPathComponent("out")
            let before = try await mediaTotal(system)
            let command = try Command(["process", folder.path, "--out", out.path], system: system, scratch: scratch)
            // Interrupted once the batch is accepted (its jobs are in the state file).
            let deadline = ContinuousClock.now + .seconds(60)
            var jobs: [String] = []
            while jobs.count < 4, ContinuousClock.now < deadline {
                let items = (try? runState(out))?["items"] as? [[String: Any]] ?? []
                jobs = items.compactMap { $0["jobId"] as? String }
                try await Task.sleep(for: .milliseconds(50))
            }
            try #require(jobs.count == 4, "the batch was never sent")
            // A second run on the same output folder while this one runs is refused: two would
            // rewrite each other's state and send its batches again.
            let second = try await run("process", folder.path, "--out", out.path, system: system, scratch: scratch)
            #expect(second.status != 0 && second.err.contains("another cyclorama run is using"), "\(second.err)")
            command.interrupt()
            let interrupted = try await command.finish(timeout: .seconds(30))
            #expect(interrupted.status == 130, "\(interrupted.err)")
            #expect(interrupted.out.contains("the jobs go on"), "\(interrupted.out)")
            let open = (try runState(out)["items"] as? [[String: Any]] ?? []).filter { $0["stage"] as? String == "submitted" }
            #expect(open.count == 4, "interrupted before any job ended (they are held)")
            try system.releaseEngineJobs()

            let resumed = try await run("process", folder.path, "--out", out.path, "--json", system: system, scratch: scratch)
            #expect(resumed.status == 0, "\(resumed.err)")
            #expect(try resumed.json()["done"] as? Int == 4)
            let after = try runState(out)["items"] as? [[String: Any]] ?? []
            #expect(after.compactMap { $0["jobId"] as? String }.sorted() == jobs.sorted(), "the same jobs, followed, not sent again")
            #expect(try await mediaTotal(system) == before + 4, "nothing uploaded twice")
            let results = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
            #expect(results.count == 4, "\(results)")
        }
    }

    /// `status`, `settings get|set` and `media ls` speak the API; a refusal is an error with the
    /// gateway's reason and a non-zero exit status.
    @Test func statusSettingsAndTheMediaList() async throws {
        try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "20"]]) { system in
            let scratch = try TestEnvironment.scratchDirectory()
            let media = try await system.upload(try Samples.bytes("dev03", "input.jpg"))
            let job = try await system.call(.POST, "/api/ai-image/generate/\(media)", json: "{}").json()["jobId"] as? String ?? ""
            _ = try await system.waitForTerminal(job)

            let status = try await run("status", job, system: system, scratch: scratch)
            #expect(status.status == 0 && status.out.contains("COMPLETED") && status.out.contains(media), "\(status.out)\(status.err)")
            let unknown = try await run("status", UUID().uuidString.lowercased(), system: system, scratch: scratch)
            #expect(unknown.status != 0 && unknown.err.contains("404"), "\(unknown.err)")

            let get = try await run("settings", "get", "aiImageDefaultShadow", system: system, scratch: scratch)
            #expect(get.out == "aiImageDefaultShadow=soft\n", "\(get.out)\(get.err)")
            let set = try await run("settings", "set", "aiImageDefaultShadow=dramatic", system: system, scratch: scratch)
            #expect(set.status == 0 && set.out == "aiImageDefaultShadow=dramatic\n", "\(set.out)\(set.err)")
            let wrong = try await run("settings", "set", "aiImageDefaultShadow=spooky", system: system, scratch: scratch)
            #expect(wrong.status != 0 && wrong.err.contains("aiImageDefaultShadow must be one of"), "\(wrong.err)")
            #expect(try await run("settings", "get", "--json", system: system, scratch: scratch).json()["aiImageDefaultShadow"] as? String == "dramatic")

            let list = try await run("media", "ls", "--json", system: system, scratch: scratch)
            let items = try list.json()["items"] as? [[String: Any]] ?? []
            #expect(items.contains { $0["id"] as? String == media }, "\(list.out)")
            let plain = try await run("media", "ls", system: system, scratch: scratch)
            #expect(plain.out.contains(media) && plain.out.contains("page 1: 1 of 1"), "\(plain.out)")
            #expect(plain.out.contains("  processed  "), "the state is listed: \(plain.out)")
            let unprocessed = try await run("media", "ls", "--state", "unprocessed", system: system, scratch: scratch)
            #expect(unprocessed.out.contains("page 1: 0 of 0"), "\(unprocessed.out)")
            let searched = try await run("media", "ls", "--search", "no such name", "--sort", "name", system: system, scratch: scratch)
            #expect(searched.out.contains("page 1: 0 of 0"), "\(searched.out)")
            #expect(try await system.call(.DELETE, "/api/media/\(media)").status == 200)
            let trash = try await run("media", "ls", "--trash", system: system, scratch: scratch)
            #expect(trash.out.contains(media) && trash.out.contains("deleted 20") && trash.out.contains(", erased 20"), "\(trash.out)")
            let badState = try await run("media", "ls", "--state", "done", system: system, scratch: scratch)
            #expect(badState.status != 0 && badState.err.contains("state must be one of"), "\(badState.err)")
            let noToken = try await Command(["media", "ls", "--token", "wrong"], system: system, scratch: scratch).finish()
            #expect(noToken.status != 0 && noToken.err.contains("401"), "\(noToken.err)")
        }
    }
}
