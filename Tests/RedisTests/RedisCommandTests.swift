import Redis
import Testing
import TestSupport

@Suite("Redis commands against a real server")
struct RedisCommandTests {
    @Test func setOnlyIfAbsentRefusesAnExistingKeyAndExpiryRemovesIt() async throws {
        try await RedisTestSupport.withClient { redis in
            let key = RedisTestSupport.key("nx")
            // A long first expiry, so a slow machine cannot expire the key between these checks.
            #expect(try await redis.set(key, "first", expiration: .seconds(30), onlyIfAbsent: true))
            #expect(try await redis.set(key, "second", onlyIfAbsent: true) == false)
            #expect(try await redis.get(key) == "first")
            let pttl = try await redis.command(["PTTL", key])
            #expect((pttl.intValue ?? -1) > 0)
            // Then a short one, to see expiry remove it.
            #expect(try await redis.expire(key, after: .milliseconds(100)))
            try await eventually("the key expired", timeout: .seconds(30), every: .milliseconds(50)) { try await redis.get(key) == nil }
            // Once expired, NX may take the key again.
            #expect(try await redis.set(key, "third", onlyIfAbsent: true))
            #expect(try await redis.delete(key) == 1)
        }
    }

    @Test func plainSetOverwritesAndGetDeleteExpireIncrementWork() async throws {
        try await RedisTestSupport.withClient { redis in
            let key = RedisTestSupport.key("basic")
            let counter = RedisTestSupport.key("counter")
            #expect(try await redis.get(key) == nil)
            #expect(try await redis.set(key, "a"))
            #expect(try await redis.set(key, "b"))
            #expect(try await redis.get(key) == "b")
            #expect(try await redis.expire(RedisTestSupport.key("missing"), after: .seconds(10)) == false)
            #expect(try await redis.expire(key, after: .seconds(30)))
            let ttl = try #require(try await redis.command(["TTL", key]).intValue)
            #expect(ttl > 0 && ttl <= 30)
            #expect(try await redis.increment(counter) == 1)
            #expect(try await redis.increment(counter) == 2)
            #expect(try await redis.delete(key, counter, RedisTestSupport.key("missing")) == 2)
            #expect(try await redis.delete(key) == 0)
            #expect(try await redis.get(key) == nil)
        }
    }

    @Test func evalRunsACompareAndDeleteScriptWithKeysAndArguments() async throws {
        let compareAndDelete = """
            if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
            """
        try await RedisTestSupport.withClient { redis in
            let key = RedisTestSupport.key("lease")
            try await redis.set(key, "owner-a", expiration: .seconds(30))
            #expect(try await redis.eval(compareAndDelete, keys: [key], arguments: ["owner-b"]) == .integer(0))
            #expect(try await redis.get(key) == "owner-a")
            #expect(try await redis.eval(compareAndDelete, keys: [key], arguments: ["owner-a"]) == .integer(1))
            #expect(try await redis.get(key) == nil)

            let echoed = try await redis.eval("return {KEYS[1], ARGV[1], 42, redis.status_reply('DONE')}",
                                              keys: [key], arguments: ["value"])
            #expect(echoed == .array([.string(key), .string("value"), .integer(42), .status("DONE")]))
        }
    }

    @Test func publishAnswersWithASubscriberCount() async throws {
        try await RedisTestSupport.withClient { redis in
            let channel = RedisTestSupport.key("channel")
            let reply = try await redis.command(["PUBLISH", channel, "hello"])
            guard case .integer(let receivers) = reply else {
                Issue.record("PUBLISH answered \(reply), not an integer")
                return
            }
            #expect(receivers == 0)  // nobody subscribes to a fresh channel
            #expect(try await redis.publish("hello", to: channel) == 0)
        }
    }

    @Test func errorRepliesSurfaceAsServerErrors() async throws {
        try await RedisTestSupport.withClient { redis in
            let key = RedisTestSupport.key("text")
            try await redis.set(key, "not a number", expiration: .seconds(30))
            let error = await #expect(throws: RedisError.self) { try await redis.increment(key) }
            #expect(error?.code == .serverError)
            #expect(error?.command == "INCR")
            #expect(error?.message.contains("not an integer") == true)
            let unknown = await #expect(throws: RedisError.self) { try await redis.command(["NO-SUCH-COMMAND"]) }
            #expect(unknown?.code == .serverError)
            let script = await #expect(throws: RedisError.self) { try await redis.eval("return redis.error_reply('nope')") }
            #expect(script?.message.hasSuffix("nope") == true)
            // The connection survives error replies.
            #expect(try await redis.get(key) == "not a number")
            try await redis.delete(key)
        }
    }

    @Test func bulkValuesAreBinarySafe() async throws {
        try await RedisTestSupport.withClient { redis in
            let key = RedisTestSupport.key("binary")
            let bytes: [UInt8] = [0, 255, 10, 13, 0, 36, 42]
            _ = try await redis.command(bytes: [Array("SET".utf8), Array(key.utf8), bytes, Array("EX".utf8), Array("30".utf8)])
            #expect(try await redis.command(bytes: [Array("GET".utf8), Array(key.utf8)]) == .bulk(bytes))
            // An empty value is a value, not nil.
            try await redis.set(key, "")
            #expect(try await redis.get(key) == "")
            try await redis.delete(key)
        }
    }

    @Test func badArgumentsAreRefusedBeforeAnythingIsSent() async throws {
        try await RedisTestSupport.withClient { redis in
            let empty = await #expect(throws: RedisError.self) { try await redis.command([String]()) }
            #expect(empty?.code == .invalidArgument)
            let zero = await #expect(throws: RedisError.self) {
                try await redis.set(RedisTestSupport.key("zero"), "v", expiration: .zero)
            }
            #expect(zero?.code == .invalidArgument)
            let deleted = try await redis.delete(keys: [])
            #expect(deleted == 0)
        }
    }

    @Test func manyConcurrentCommandsThroughASmallPoolAllSucceed() async throws {
        try await RedisTestSupport.withClient(try RedisTestSupport.configuration(poolSize: 2)) { redis in
            let counter = RedisTestSupport.key("concurrent")
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<200 { group.addTask { try await redis.increment(counter) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.sorted() == Array(1...200))
            #expect(try await redis.get(counter) == "200")
            try await redis.delete(counter)
        }
    }

    @Test func theDatabaseNumberIsSelected() async throws {
        var other = try RedisTestSupport.configuration()
        other.database = (other.database + 1) % 16
        let key = RedisTestSupport.key("db")
        _ = try await RedisTestSupport.withClient(other) { try await $0.set(key, "elsewhere", expiration: .seconds(30)) }
        let seenFromDefault = try await RedisTestSupport.withClient { try await $0.get(key) }
        #expect(seenFromDefault == nil)
        try await RedisTestSupport.withClient(other) { redis in
            #expect(try await redis.get(key) == "elsewhere")
            try await redis.delete(key)
        }
    }
}
