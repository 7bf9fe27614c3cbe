import Foundation

/// Runs `bash scripts/servers.sh <arguments>` from the repository root, for tests that stop, start or
/// restart a server (suites named `*RestartTests`, which `make test` runs alone).
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
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(arguments, environment: environment, script: script)) }.start()
        }
    }

    /// Where the script's output goes.
    public static var logPath: String { TestEnvironment.repositoryRoot.path + "/.var/test/servers-script.log" }

    private static func runBlocking(_ arguments: [String], environment: [String: String], script: String) -> Int32 {
        let root = TestEnvironment.repositoryRoot.path
        try? FileManager.default.createDirectory(
            atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        // Names and values come from the tests themselves (ports, folders), never from input.
        let variables = environment.sorted { $0.key < $1.key }.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let command = "cd '\(root)' && exec env \(variables) bash scripts/\(script) \(quoted) >>'\(logPath)' 2>&1 </dev/null"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
