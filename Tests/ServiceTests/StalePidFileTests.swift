import Foundation
import Testing
import TestSupport

/// A pid file outlives its process (a crash, a reboot), and its number may since name another
/// process. `scripts/servers.sh` and `scripts/services.sh` must then take the server or service
/// for stopped and leave that process alone — never send it a signal. Each decoy here is a copy of
/// `sleep` named as the real program (so its name alone would pass) but started elsewhere, with
/// other arguments; the scripts run on a folder of their own, and nothing of theirs is running there.
@Suite struct StalePidFileTests {
    /// A copy of `sleep` called `program`, sleeping in `directory`.
    final class Decoy {
        let process = Process()
        init(named program: String, in directory: URL) throws {
            let bin = directory.appendingPathComponent("bin-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let copy = bin.appendingPathComponent(program)
            try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: copy.path)
            process.executableURL = copy
            process.arguments = ["120"]
            process.currentDirectoryURL = directory
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        var pid: Int32 { process.processIdentifier }
        /// Running, not a zombie (a killed process answers kill(pid, 0) until it is reaped).
        var alive: Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(after: close)...].split(separator: " ").first ?? ""
            return state != "Z" && state != "X"
        }
        deinit { if process.isRunning { kill(pid, SIGKILL) } }
    }

    static func script(_ arguments: [String], folder: URL, spelt: String? = nil, ownPorts: Bool = true) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments.enumerated().map { index, argument in
            index == 0 ? TestEnvironment.repositoryRoot.appendingPathComponent("scripts/\(argument)").path : argument
        }
        // A folder of their own and ports nothing of ours uses: only the pid files there name anything.
        let ports = [
            "CYCLORAMA_RABBITMQ_PORT": "5979", "CYCLORAMA_RABBITMQ_NODE": "stale-pid@localhost",
            "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT": "", "CYCLORAMA_REDIS_PORT": "6979", "CYCLORAMA_POSTGRES_PORT": "5978",
        ]
        process.environment = ProcessInfo.processInfo.environment
            .merging(["CYCLORAMA_VAR": spelt ?? folder.path]) { $1 }.merging(ownPorts ? ports : [:]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stale-pid-\(UUID().uuidString)")
        for sub in ["run", "postgres/data", "redis", "rabbitmq/home", "log"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        return folder.resolvingSymlinksInPath()
    }

    @Test func theServersScriptLeavesAProcessItsPidFilesNameAlone() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Each named as the server, but not ours: another home, another data folder, another working folder.
        let beam = try Decoy(named: "beam.smp", in: folder)
        let redis = try Decoy(named: "redis-server", in: folder)
        let postgres = try Decoy(named: "postgres", in: folder)
        try "\(beam.pid)\n".write(to: folder.appendingPathComponent("run/rabbitmq.pid"), atomically: true, encoding: .utf8)
        try "\(redis.pid)\n".write(to: folder.appendingPathComponent("run/redis.pid"), atomically: true, encoding: .utf8)
        try "\(postgres.pid)\n/elsewhere\n".write(
            to: folder.appendingPathComponent("postgres/data/postmaster.pid"), atomically: true, encoding: .utf8)

        let status = try Self.script(["servers.sh", "status"], folder: folder)
        for server in ["rabbitmq", "redis", "postgres"] {
            #expect(status.output.split(separator: "\n").contains {
                $0.hasPrefix(server) && $0.contains("stopped")
            }, "\(server) is not taken for running: \(status.output)")
        }
        let stop = try Self.script(["servers.sh", "stop"], folder: folder)
        #expect(stop.status == 0, "\(stop.output)")
        #expect(stop.output.contains("rabbitmq not running") && stop.output.contains("redis not running"), "\(stop.output)")
        #expect(beam.alive && redis.alive && postgres.alive, "no decoy was sent a signal: \(stop.output)")
        let kill = try Self.script(["servers.sh", "kill"], folder: folder)
        #expect(kill.status == 0, "\(kill.output)")
        #expect(beam.alive && redis.alive && postgres.alive, "not even by kill: \(kill.output)")
    }

    /// The other side: the shared servers `make test` started are still ours when their folder is
    /// spelt otherwise (through a symbolic link, with a trailing slash), as pg_ctl tidies -D's path.
    @Test func theSharedServersAreOursWhateverTheSpellingOfTheirFolder() throws {
        try #require(TestServers.shared.secrets != nil, "the shared servers of .var (make test starts them)")
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("var-link-\(UUID().uuidString)")
        try FileManager.default.createSymbolicLink(
            at: link, withDestinationURL: TestEnvironment.repositoryRoot.appendingPathComponent(".var"))
        defer { try? FileManager.default.removeItem(at: link) }
        for spelling in [link.path + "/", link.path + "/./"] {
            let status = try Self.script(["servers.sh", "status"], folder: link, spelt: spelling, ownPorts: false)
            for server in ["rabbitmq", "redis", "postgres"] {
                #expect(status.output.split(separator: "\n").contains { $0.hasPrefix(server) && $0.contains("running") },
                        "\(server) through \(spelling): \(status.output)")
            }
        }
    }

    @Test func theServicesScriptLeavesAProcessItsPidFilesNameAlone() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The gateway's name, but not its executable's path: a `sleep` that happens to have the pid.
        let plain = try Decoy(named: "sleep", in: folder)
        let named = try Decoy(named: "api-gateway-old", in: folder)
        try "\(plain.pid)\n".write(to: folder.appendingPathComponent("run/api-gateway.pid"), atomically: true, encoding: .utf8)
        try "\(named.pid)\n".write(to: folder.appendingPathComponent("run/local-engine.pid"), atomically: true, encoding: .utf8)
        let down = try Self.script(["services.sh", "down", "api-gateway", "local-engine"], folder: folder)
        #expect(down.status == 0, "\(down.output)")
        #expect(!down.output.contains("stopping"), "nothing of ours was running: \(down.output)")
        #expect(plain.alive && named.alive, "no decoy was sent a signal: \(down.output)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/api-gateway.pid").path), "the stale file is gone")
    }
}
