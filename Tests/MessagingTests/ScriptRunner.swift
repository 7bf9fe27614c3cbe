import Foundation

/// Runs a bash script to completion without blocking Swift's cooperative pool.
enum ScriptRunner {
    static func run(_ arguments: [String], in directory: URL) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(arguments, in: directory)) }.start()
        }
    }

    private static func runBlocking(_ arguments: [String], in directory: URL) -> Int32 {
        let log = directory.appendingPathComponent(".var/test/restart-rabbitmq.log").path
        try? FileManager.default.createDirectory(
            atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let command = "cd '\(directory.path)' && exec bash \(quoted) >'\(log)' 2>&1 </dev/null"
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
