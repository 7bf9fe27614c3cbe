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
            try await redis.expire(counter, after: .seconds(60))  // gone even if this test fails
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
        // 3 s: connect and AUTH to a Redis just started fit in it on a loaded machine.
        configuration.connectTimeout = .seconds(3)
        try await RedisTestSupport.withClient(configuration) { redis in
            #expect(await redis.ping())
            try await servers("stop", "redis")
            do {
                let started = ContinuousClock.now
                let error = await #expect(throws: RedisError.self) { try await redis.get("anything") }
                #expect(error?.code == .connectionFailed)
                #expect(ContinuousClock.now - started < .seconds(10), "fails instead of hanging")
                #expect(await redis.ping() == false)
            }
            try await servers("start", "redis")
            #expect(await redis.ping())
            let key = RedisTestSupport.key("back")
            #expect(try await redis.set(key, "yes", expiration: .seconds(30), onlyIfAbsent: true))
            #expect(try await redis.get(key) == "yes")
            try await redis.delete(key)
        }
    }

    /// Runs `bash scripts/servers.sh ...` from the repository root and requires it to succeed.
    private func servers(_ arguments: String...) async throws {
        let status = await ServerScript.run(arguments[0], arguments[1])
        try #require(status == 0, "scripts/servers.sh \(arguments.joined(separator: " ")) exited with \(status) (see \(ServerScript.logPath))")
    }
}
