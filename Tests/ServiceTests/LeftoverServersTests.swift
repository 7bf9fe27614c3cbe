import Foundation
import Testing
import TestSupport

/// What `scripts/leftover-servers.sh` (which a fault suite's lane runs before it starts, and `make
/// test-faults-stop` for every lane) takes from an earlier, interrupted run's `servers.env` before it
/// stops that run's servers: only what it can trust, and never something that would make
/// `scripts/servers.sh stop` take the shared servers. Driven through its `--print` mode.
@Suite struct LeftoverServersTests {
    static let boot = ServerScript.bootID ?? ""

    /// The script's environment for a folder holding `lines` as its servers.env (nil when it will
    /// not stop anything), plus whether the folder it named is the file's own.
    static func leftover(_ lines: [String]?) async throws -> [String: String]? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leftover-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        if let lines {
            try (lines.joined(separator: "\n") + "\n")
                .write(to: folder.appendingPathComponent("servers.env"), atomically: true, encoding: .utf8)
        }
        let run = await ServerScript.capture("leftover-servers.sh", ["--print", folder.path])
        let printed = run.output
        guard run.status == 0 else {
            #expect(run.status == 1, "nothing to stop is 1, not an error: \(run.errors)")
            #expect(printed.isEmpty)
            return nil
        }
        var environment: [String: String] = [:]
        for line in printed.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : nil
        }
        environment["folder is the file's own"] = String(environment["CYCLORAMA_VAR"] == folder.resolvingSymlinksInPath().path)
        return environment
    }

    static let written = [
        "CYCLORAMA_FAULTS_BOOT_ID=\(boot)", "CYCLORAMA_POSTGRES_PORT=5445", "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT=",
        "CYCLORAMA_RABBITMQ_NODE=fault-tests-2@localhost", "CYCLORAMA_RABBITMQ_PORT=5685", "CYCLORAMA_REDIS_PORT=6395",
        "CYCLORAMA_VAR=/elsewhere",
    ]

    @Test func aFileOfThisBootGivesItsPortsAndItsOwnFolder() async throws {
        let environment = try #require(try await Self.leftover(Self.written))
        #expect(environment["CYCLORAMA_RABBITMQ_PORT"] == "5685")
        #expect(environment["CYCLORAMA_RABBITMQ_NODE"] == "fault-tests-2@localhost")
        #expect(environment["CYCLORAMA_REDIS_PORT"] == "6395")
        #expect(environment["CYCLORAMA_POSTGRES_PORT"] == "5445")
        #expect(environment["CYCLORAMA_RABBITMQ_MANAGEMENT_PORT"] == "", "empty: no management API, as it was started")
        #expect(environment["folder is the file's own"] == "true", "never /elsewhere, never the shared .var")
        #expect(environment.count == 7, "the five names, the folder, and nothing else from the file")
    }

    @Test func nothingIsStoppedWithoutCertainty() async throws {
        #expect(try await Self.leftover(nil) == nil, "no file")
        #expect(try await Self.leftover([]) == nil, "an empty file")
        #expect(try await Self.leftover(Self.written.filter { !$0.hasPrefix("CYCLORAMA_FAULTS_BOOT_ID") }) == nil, "no boot")
        #expect(try await Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_FAULTS_BOOT_ID") ? "CYCLORAMA_FAULTS_BOOT_ID=before" : $0 }) == nil,
                "written before the machine last started: its pid files may name other processes")
        #expect(try await Self.leftover(Self.written.filter { !$0.hasPrefix("CYCLORAMA_REDIS_PORT") }) == nil, "a port missing: the default is the shared one")
        #expect(try await Self.leftover(Self.written.filter { !$0.hasPrefix("CYCLORAMA_RABBITMQ_MANAGEMENT_PORT") }) == nil,
                "no management port: the default is the shared one's")
        #expect(try await Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_RABBITMQ_NODE") ? "CYCLORAMA_RABBITMQ_NODE=x' y" : $0 }) == nil,
                "a value that is not plain")
        #expect(try await Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_REDIS_PORT") ? "CYCLORAMA_REDIS_PORT=$(true)" : $0 }) == nil,
                "a value that is not plain")
        #expect(try await Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_REDIS_PORT") ? "CYCLORAMA_REDIS_PORT=" : $0 }) == nil,
                "an empty port: the shared one's")
        #expect(try await Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_RABBITMQ_NODE") ? "CYCLORAMA_RABBITMQ_NODE=" : $0 }) == nil,
                "an empty node: the shared one's")
    }
}
