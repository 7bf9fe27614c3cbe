import Foundation
import Logging
import Redis
import ServiceCore
import TestSupport

/// Clients against the real Redis of `REDIS_URL`, and key names no other test uses.
enum RedisTestSupport {
    static func configuration(poolSize: Int = 4) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: TestEnvironment.redisURL)
        configuration.poolSize = poolSize
        return configuration
    }

    /// Runs `body` with a fresh client and always shuts it down.
    static func withClient<T>(
        _ configuration: RedisConfiguration? = nil,
        _ body: (RedisClient) async throws -> T
    ) async throws -> T {
        let client = RedisClient(configuration: try configuration ?? self.configuration(),
                                 logger: Logger(label: "test.redis"))
        return try await withAsyncCleanup({ try await body(client) }, cleanup: { await client.shutdown() })
    }

    static func key(_ name: String) -> String { "test:\(TestEnvironment.uniqueName(name))" }
}
