import Foundation
import Logging
import Redis
import ServiceCore
import ServiceSupport
import Shared
import Synchronization
import Timing

/// A backend job that ended here (cancelled, timed out) but whose cancel did not get through: it
/// may still run at the backend, so it keeps its concurrency slot until the backend confirms.
struct Orphan: Codable, Sendable, Hashable {
    var jobId: UUID
    var backend: GenerationBackend
    var backendJobId: String
}

/// The orphans of every dispatcher instance: a Redis sorted set (member: the orphan as JSON, score:
/// when its slot's hold ends, after which the backend must have dropped it anyway).
struct OrphanRegistry: Sendable {
    let redis: RedisClient
    let key: String
    /// How long an orphan is worth cancelling: the slot's hold.
    let lifetime: Duration

    func add(_ orphan: Orphan) async throws {
        let member = String(decoding: try JSONEncoder().encode(orphan), as: UTF8.self)
        _ = try await redis.eval("""
            local now = redis.call('TIME')
            local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
            redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
            redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
            return 1
            """, keys: [key], arguments: [member, String(lifetime.wholeMilliseconds)])
    }

    /// Every orphan whose hold has not ended; the others are dropped.
    func current() async throws -> [Orphan] {
        let members = try await redis.eval("""
            local now = redis.call('TIME')
            local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
            return redis.call('ZRANGE', KEYS[1], 0, -1)
            """, keys: [key], arguments: [])
        return (members.arrayValue ?? []).compactMap { value in
            value.stringValue.flatMap { try? JSONDecoder().decode(Orphan.self, from: Data($0.utf8)) }
        }
    }

    func remove(_ orphan: Orphan) async throws {
        let member = String(decoding: try JSONEncoder().encode(orphan), as: UTF8.self)
        _ = try await redis.command(["ZREM", key, member])
    }
}

/// Cancels orphans again until the backend confirms they ended; then their slots are released.
/// Every instance runs it with ``PeriodicWork`` (every `DISPATCH_ORPHAN_SWEEP_SECONDS`).
struct OrphanSweeper: Sendable {
    let registry: OrphanRegistry
    let limiter: ConcurrencyLimiter
    let client: @Sendable (GenerationBackend) async throws -> RunPodClient?
    let logger: Logger

    func sweep() async throws {
        for orphan in try await registry.current() {
            guard let client = try await client(orphan.backend) else { continue }
            let ended: Bool
            do {
                _ = try await client.cancel(orphan.backendJobId)
                ended = true
            } catch .http(status: 404, _) {
                ended = true
            } catch {
                logger.info("orphan still not cancelled", metadata: ["jobId": "\(orphan.jobId)", "backendJobId": "\(orphan.backendJobId)", "error": "\(error)"])
                ended = false
            }
            guard ended else { continue }
            try await registry.remove(orphan)
            await limiter.release(orphan.jobId.uuidString)
            logger.notice("orphan cancelled at the backend; its slot is free", metadata: ["jobId": "\(orphan.jobId)", "backendJobId": "\(orphan.backendJobId)"])
        }
    }
}

/// The backend job ids that webhook calls named (BackendWebhookReceived), by job, for a follower
/// looking for a submission whose answer was lost. Only jobs followed here are kept.
final class WebhookReveals: Sendable {
    private let named = Mutex<[UUID: String]>([:])

    func note(_ jobId: UUID, _ backendJobId: String) {
        named.withLock { $0[jobId] = backendJobId }
    }

    func take(_ jobId: UUID) -> String? {
        named.withLock { $0.removeValue(forKey: jobId) }
    }

    func forget(_ jobId: UUID) {
        named.withLock { $0[jobId] = nil }
    }
}
