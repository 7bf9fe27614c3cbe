import Foundation

/// Runs `bash scripts/servers.sh <arguments>` (or another of scripts/) from the repository root, for
/// tests that stop, start or restart a server (suites named `*RestartTests`, which `make test` runs
/// alone), the fault suite's private servers, and the tests of the scripts themselves.
///
/// It runs on a dedicated thread (waitpid blocks) with its output in `.var/test/servers-script.log`: a
/// daemon the script starts must hold no pipe of ours, or waiting for the script would never end
/// (Foundation's `Process` was seen to hang exactly so).
public enum ServerScript {
    /// The script's exit status (-1 when it could not be started or was killed by a signal).
    public static func run(_ arguments: String...) async -> Int32 {
        await run(arguments, environment: [:])
    }

    /// Runs the script with extra environment variables (e.g. a private set of servers' ports, ``PrivateServers``).
    public static func run(_ arguments: [String], environment: [String: String], script: String = "servers.sh") async -> Int32 {
        try? FileManager.default.createDirectory(
            atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return await spawn(script, arguments, environment: environment, redirect: ">>'\(logPath)' 2>&1")
    }

    /// What a script printed (standard output and error apart) and its exit status.
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
        public var errors: String
        /// Both, output first.
        public var everything: String { output + errors }
    }

    /// Runs `bash scripts/<script> <arguments>` as ``run(_:environment:script:)`` does (its own
    /// thread, no pipe a daemon could hold) and returns what it printed, for tests of the scripts.
    public static func capture(_ script: String, _ arguments: [String], environment: [String: String] = [:]) async -> Outcome {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("stdout"), errors = folder.appendingPathComponent("stderr")
        let status = await spawn(script, arguments, environment: environment, redirect: ">'\(output.path)' 2>'\(errors.path)'")
        let read = { (file: URL) in (try? String(contentsOf: file, encoding: .utf8)) ?? "" }
        return Outcome(status: status, output: read(output), errors: read(errors))
    }

    /// The boot this machine is in (`/proc/sys/kernel/random/boot_id`), as scripts/leftover-servers.sh reads it.
    public static var bootID: String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Where the script's output goes.
    public static var logPath: String { TestEnvironment.repositoryRoot.path + "/.var/test/servers-script.log" }

    private static func spawn(_ script: String, _ arguments: [String], environment: [String: String], redirect: String) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(script, arguments, environment: environment, redirect: redirect)) }.start()
        }
    }

    private static func runBlocking(_ script: String, _ arguments: [String], environment: [String: String], redirect: String) -> Int32 {
        let root = TestEnvironment.repositoryRoot.path
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        // Names and values come from the tests themselves (ports, folders), never from input.
        let variables = environment.sorted { $0.key < $1.key }.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let command = "cd '\(root)' && exec env \(variables) bash scripts/\(script) \(quoted) \(redirect) </dev/null"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
