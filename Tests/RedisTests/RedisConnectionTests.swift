import Redis
import Testing

@Suite("Redis connections: failures, timeouts, configuration")
struct RedisConnectionTests {
    @Test func aServerThatIsNotThereFailsFastAndPingSaysFalse() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.port = 1  // nothing listens there
        try await RedisTestSupport.withClient(configuration) { redis in
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) { try await redis.get("anything") }
            #expect(error?.code == .connectionFailed)
            #expect(ContinuousClock.now - started < .seconds(10), "fails instead of hanging")
            #expect(await redis.ping() == false)
        }
    }

    @Test func aSlowReplyTimesOutAndTheClientRecovers() async throws {
        var configuration = try RedisTestSupport.configuration(poolSize: 1)
        // 2 s: the fresh connection's PING below answers within it however loaded the machine.
        configuration.commandTimeout = .seconds(2)
        try await RedisTestSupport.withClient(configuration) { redis in
            // BLPOP on an empty list blocks server-side for 30 s: far longer than the command timeout.
            let error = await #expect(throws: RedisError.self) {
                try await redis.command(["BLPOP", RedisTestSupport.key("empty"), "30"])
            }
            #expect(error?.code == .timeout)
            // The timed-out connection was dropped; a fresh one answers at once.
            #expect(await redis.ping())
        }
    }

    @Test func aWrongPasswordIsAServerErrorNotAHang() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.password = "wrong"
        try await RedisTestSupport.withClient(configuration) { redis in
            let error = await #expect(throws: RedisError.self) { try await redis.get("anything") }
            #expect(error?.code == .serverError)
            #expect(error?.command == "AUTH")
        }
    }

    @Test func aShutDownClientRefusesCommands() async throws {
        let redis = RedisClient(configuration: try RedisTestSupport.configuration())
        #expect(await redis.ping())
        await redis.shutdown()
        let error = await #expect(throws: RedisError.self) { try await redis.get("anything") }
        #expect(error?.code == .shutdown)
        #expect(await redis.ping() == false)
    }

    @Test func urlsAreParsed() throws {
        let full = try RedisConfiguration(url: "redis://:s%40cret@cache.internal:6380/3")
        #expect(full.host == "cache.internal")
        #expect(full.port == 6380)
        #expect(full.password == "s@cret")
        #expect(full.username == nil)
        #expect(full.database == 3)
        let acl = try RedisConfiguration(url: "redis://worker:pw@127.0.0.1")
        #expect(acl.username == "worker" && acl.password == "pw" && acl.port == 6379 && acl.database == 0)
    }

    @Test(arguments: ["http://127.0.0.1:6379/0", "redis:///0", "redis://127.0.0.1:6379/x", "rediss://h/0", "not a url"])
    func badURLsAreRefusedWithAReason(url: String) throws {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix("invalid Redis URL") == true)
    }
}
