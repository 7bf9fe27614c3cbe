import Foundation
import Testing
import TestSupport

/// What a fault suite's lane reads back from an earlier, interrupted run's `servers.env` before it
/// stops that run's servers: only what it can trust, and never something that would make
/// `scripts/servers.sh stop` take the shared servers.
@Suite struct LeftoverServersTests {
    static let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""

    static func leftover(_ lines: [String]) throws -> [String: String]? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leftover-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let settings = folder.appendingPathComponent("servers.env")
        try (lines.joined(separator: "\n") + "\n").write(to: settings, atomically: true, encoding: .utf8)
        return PrivateServers.leftoverEnvironment(settings, folder: folder).map {
            $0.merging(["folder is the file's own": String($0["CYCLORAMA_VAR"] == folder.path)]) { $1 }
        }
    }

    static let written = [
        "CYCLORAMA_FAULTS_BOOT_ID=\(boot)", "CYCLORAMA_POSTGRES_PORT=5445", "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT=",
        "CYCLORAMA_RABBITMQ_NODE=fault-tests-2@localhost", "CYCLORAMA_RABBITMQ_PORT=5685", "CYCLORAMA_REDIS_PORT=6395",
        "CYCLORAMA_VAR=/elsewhere",
    ]

    @Test func aFileOfThisBootGivesItsPortsAndItsOwnFolder() throws {
        let environment = try #require(try Self.leftover(Self.written))
        #expect(environment["CYCLORAMA_RABBITMQ_PORT"] == "5685")
        #expect(environment["CYCLORAMA_RABBITMQ_NODE"] == "fault-tests-2@localhost")
        #expect(environment["CYCLORAMA_REDIS_PORT"] == "6395")
        #expect(environment["CYCLORAMA_POSTGRES_PORT"] == "5445")
        #expect(environment["CYCLORAMA_RABBITMQ_MANAGEMENT_PORT"] == "")
        #expect(environment["folder is the file's own"] == "true", "never /elsewhere, never the shared .var")
    }

    @Test func nothingIsStoppedWithoutCertainty() throws {
        #expect(try Self.leftover([]) == nil, "an empty file")
        #expect(try Self.leftover(Self.written.filter { !$0.hasPrefix("CYCLORAMA_FAULTS_BOOT_ID") }) == nil, "no boot")
        #expect(try Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_FAULTS_BOOT_ID") ? "CYCLORAMA_FAULTS_BOOT_ID=before" : $0 }) == nil,
                "written before the machine last started: its pid files may name other processes")
        #expect(try Self.leftover(Self.written.filter { !$0.hasPrefix("CYCLORAMA_REDIS_PORT") }) == nil, "a port missing: the default is the shared one")
        #expect(try Self.leftover(Self.written.map { $0.hasPrefix("CYCLORAMA_RABBITMQ_NODE") ? "CYCLORAMA_RABBITMQ_NODE=x' y" : $0 }) == nil,
                "a value that is not plain")
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)")
        #expect(PrivateServers.leftoverEnvironment(missing.appendingPathComponent("servers.env"), folder: missing) == nil)
    }
}
