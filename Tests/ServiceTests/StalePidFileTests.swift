import Foundation
import Testing
import TestSupport

/// A pid file outlives its process (a crash, a reboot), and its number may since name another
/// process. `scripts/servers.sh` and `scripts/services.sh` must then take the server or service
/// for stopped and leave that process alone — never send it a signal. Each decoy here is `sleep`
/// started under the real program's name (so its name alone would pass) but started elsewhere, with
/// other arguments; the scripts run on a folder of their own, and nothing of theirs is running there.
@Suite struct StalePidFileTests {
    /// `sleep` started as `program` (a link of that name), sleeping in `directory`.
    final class Decoy {
        let process = Process()
        init(named program: String, in directory: URL) throws {
            let bin = directory.appendingPathComponent("bin-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let copy = bin.appendingPathComponent(program)
            // A link, not a copy: the kernel names the process after the path it was started by, and
            // a copy just written can fail to start ("text file busy") while another test's process
            // is being forked with the copy's descriptor still open.
            try FileManager.default.createSymbolicLink(atPath: copy.path, withDestinationPath: "/bin/sleep")
            process.executableURL = copy
            process.arguments = ["3600"]  // killed when the test is done (deinit)
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

    static func script(_ arguments: [String], folder: URL, spelt: String? = nil, ownPorts: Bool = true) async -> (status: Int32, output: String) {
        // A folder of their own and ports nothing of ours uses: only the pid files there name anything.
        let ports = [
            "CYCLORAMA_RABBITMQ_PORT": "5979", "CYCLORAMA_RABBITMQ_NODE": "stale-pid@localhost",
            "CYCLORAMA_RABBITMQ_MANAGEMENT_PORT": "", "CYCLORAMA_REDIS_PORT": "6979", "CYCLORAMA_POSTGRES_PORT": "5978",
        ]
        let environment = ["CYCLORAMA_VAR": spelt ?? folder.path].merging(ownPorts ? ports : [:]) { $1 }
        let run = await ServerScript.capture(arguments[0], Array(arguments.dropFirst()), environment: environment)
        return (run.status, run.everything)
    }

    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stale-pid-\(UUID().uuidString)")
        for sub in ["run", "postgres/data", "redis", "rabbitmq/home", "log"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        return folder.resolvingSymlinksInPath()
    }

    @Test func theServersScriptLeavesAProcessItsPidFilesNameAlone() async throws {
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

        let status = await Self.script(["servers.sh", "status"], folder: folder)
        for server in ["rabbitmq", "redis", "postgres"] {
            #expect(status.output.split(separator: "\n").contains {
                $0.hasPrefix(server) && $0.contains("stopped")
            }, "\(server) is not taken for running: \(status.output)")
        }
        let stop = await Self.script(["servers.sh", "stop"], folder: folder)
        #expect(stop.status == 0, "\(stop.output)")
        #expect(stop.output.contains("rabbitmq not running") && stop.output.contains("redis not running"), "\(stop.output)")
        #expect(beam.alive && redis.alive && postgres.alive, "no decoy was sent a signal: \(stop.output)")
        let kill = await Self.script(["servers.sh", "kill"], folder: folder)
        #expect(kill.status == 0, "\(kill.output)")
        #expect(beam.alive && redis.alive && postgres.alive, "not even by kill: \(kill.output)")
    }

    /// The other side: the shared servers `make test` started are still ours when their folder is
    /// spelt otherwise (through a symbolic link, with a trailing slash), as pg_ctl tidies -D's path.
    @Test func theSharedServersAreOursWhateverTheSpellingOfTheirFolder() async throws {
        try #require(TestServers.shared.secrets != nil, "the shared servers of .var (make test starts them)")
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("var-link-\(UUID().uuidString)")
        try FileManager.default.createSymbolicLink(
            at: link, withDestinationURL: TestEnvironment.repositoryRoot.appendingPathComponent(".var"))
        defer { try? FileManager.default.removeItem(at: link) }
        for spelling in [link.path + "/", link.path + "/./"] {
            let status = await Self.script(["servers.sh", "status"], folder: link, spelt: spelling, ownPorts: false)
            for server in ["rabbitmq", "redis", "postgres"] {
                #expect(status.output.split(separator: "\n").contains { $0.hasPrefix(server) && $0.contains("running") },
                        "\(server) through \(spelling): \(status.output)")
            }
        }
    }

    @Test func theServicesScriptLeavesAProcessItsPidFilesNameAlone() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The gateway's name, but not its executable's path: a `sleep` that happens to have the pid.
        let plain = try Decoy(named: "sleep", in: folder)
        let named = try Decoy(named: "api-gateway-old", in: folder)
        try "\(plain.pid)\n".write(to: folder.appendingPathComponent("run/api-gateway.pid"), atomically: true, encoding: .utf8)
        try "\(named.pid)\n".write(to: folder.appendingPathComponent("run/local-engine.pid"), atomically: true, encoding: .utf8)
        let down = await Self.script(["services.sh", "down", "api-gateway", "local-engine"], folder: folder)
        #expect(down.status == 0, "\(down.output)")
        #expect(!down.output.contains("stopping"), "nothing of ours was running: \(down.output)")
        #expect(plain.alive && named.alive, "no decoy was sent a signal: \(down.output)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("run/api-gateway.pid").path), "the stale file is gone")
    }
}
