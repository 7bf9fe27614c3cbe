import Foundation
import Redis
import Testing
import TestSupport

/// Restarts redis-server: `make test` runs suites named `*RestartTests` alone, after the rest.
@Suite("RedisRestartTests", .serialized)
struct RedisRestartTests {
    @Test func theSameClientWorksAgainAfterRedisRestarts() async throws {
        try await RedisTestSupport.withClient(try RedisTestSupport.configuration(poolSize: 3)) { redis in
            let counter = RedisTestSupport.key("restart")
            // Fill the pool with idle connections that the restart will kill.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 { group.addTask { _ = try await redis.increment(counter) } }
                try await group.waitForAll()
            }
            try await servers("restart", "redis")
            // INCR is never retried, so this passes only because dead idle connections are noticed
            // before anything is sent on them.
            for _ in 0..<3 {
                let value = try await redis.increment(counter)
                #expect(value >= 1)
            }
            #expect(await redis.ping())
            try await redis.delete(counter)
        }
    }

    @Test func commandsFailPromptlyWhileRedisIsDownAndWorkOnceItIsBack() async throws {
        var configuration = try RedisTestSupport.configuration(poolSize: 2)
        configuration.connectTimeout = .seconds(1)
        try await RedisTestSupport.withClient(configuration) { redis in
            #expect(await redis.ping())
            try await servers("stop", "redis")
            do {
                let started = ContinuousClock.now
                let error = await #expect(throws: RedisError.self) { try await redis.get("anything") }
                #expect(error?.code == .connectionFailed)
                #expect(ContinuousClock.now - started < .seconds(3))
                #expect(await redis.ping() == false)
            }
            try await servers("start", "redis")
            #expect(await redis.ping())
            let key = RedisTestSupport.key("back")
            #expect(try await redis.set(key, "yes", expiration: .seconds(30), onlyIfAbsent: true))
            #expect(try await redis.get(key) == "yes")
        }
    }

    /// Runs `bash scripts/servers.sh ...` from the repository root and requires it to succeed.
    private func servers(_ arguments: String...) async throws {
        let status = await ServerScript.run(arguments)
        try #require(status == 0, "scripts/servers.sh \(arguments.joined(separator: " ")) exited with \(status) (see .var/test/redis-restart.log)")
    }
}

/// Runs scripts/servers.sh on a dedicated thread (waitpid blocks) with its output in a log file: a
/// daemon it starts must hold no pipe of ours, or waiting for the script's end would never finish.
enum ServerScript {
    static func run(_ arguments: [String]) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: runBlocking(arguments)) }.start()
        }
    }

    private static func runBlocking(_ arguments: [String]) -> Int32 {
        let root = TestEnvironment.repositoryRoot.path
        let log = root + "/.var/test/redis-restart.log"
        try? FileManager.default.createDirectory(atPath: root + "/.var/test", withIntermediateDirectories: true)
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let command = "cd '\(root)' && exec bash scripts/servers.sh \(quoted) >>'\(log)' 2>&1 </dev/null"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
