import Foundation
import Logging
import Redis
import Synchronization

/// The global limit on jobs at the backend (`aiImageMaxConcurrent`), shared by every dispatcher
/// instance: a Redis sorted set of leases (member: job id, score: expiry in ms of Redis's own clock).
///
/// Taking a slot first drops expired leases, so the slots of a crashed instance come back once its
/// leases run out; a holder renews its lease while its job runs. Holding is re-entrant by job id: a
/// redelivered job re-attaching after a crash takes its old slot back instead of a second one.
///
/// A job waiting for a slot looks again when a job of this process releases one (at once) and
/// otherwise every second at most (slots released by other instances).
struct ConcurrencyLimiter: Sendable {
    let redis: RedisClient
    let key: String
    let lease: Duration
    let logger: Logger
    private let released = Doorbell<String>()

    init(redis: RedisClient, key: String, lease: Duration, logger: Logger) {
        self.redis = redis
        self.key = key
        self.lease = lease
        self.logger = logger
        released.register(key)
    }

    /// KEYS[1] leases; ARGV: job id, lease ms, limit. 1 when the job holds a slot afterwards.
    static let acquireScript = """
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
            redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
            redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
            return 1
        end
        return 0
        """

    /// KEYS[1] leases; ARGV: job id, lease ms. Extends the lease (re-adding it if it lapsed: the job is at the backend).
    static let renewScript = """
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        local lapsed = redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
        return lapsed
        """

    private var leaseMilliseconds: String { String(lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000) }

    /// Tries once to take (or keep) a slot for `jobId` under `limit`.
    func tryAcquire(_ jobId: String, limit: Int) async throws -> Bool {
        try await redis.eval(Self.acquireScript, keys: [key], arguments: [jobId, leaseMilliseconds, String(limit)]).intValue == 1
    }

    func renew(_ jobId: String) async throws {
        if try await redis.eval(Self.renewScript, keys: [key], arguments: [jobId, leaseMilliseconds]).intValue == 1 {
            logger.warning("a lease had lapsed and was taken again", metadata: ["jobId": "\(jobId)"])
        }
    }

    func release(_ jobId: String) async {
        do {
            _ = try await redis.eval("return redis.call('ZREM', KEYS[1], ARGV[1])", keys: [key], arguments: [jobId])
            released.ring(key, everyone: false)
        } catch {
            // The lease then simply expires.
            logger.warning("could not release a lease", metadata: ["jobId": "\(jobId)", "error": "\(error)"])
        }
    }

    /// Waits for a slot (woken by local releases, else polling with jitter; nil when `deadline` passes first),
    /// runs `body` while renewing the lease, and releases the slot afterwards — or earlier, when `body`
    /// calls ``HeldSlot/release()`` (the backend said the job ended: the next job need not wait for
    /// our bookkeeping). With `force`, the slot is taken whatever the limit (a job already running at the backend).
    func withSlot<T: Sendable>(
        _ jobId: String, limit: @Sendable () async -> Int, until deadline: ContinuousClock.Instant, force: Bool = false,
        _ body: @Sendable (HeldSlot) async throws -> T
    ) async throws -> T? {
        var wait = Duration.milliseconds(100)
        if force {
            try await renew(jobId)
        } else {
            while try await !tryAcquire(jobId, limit: await limit()) {
                if ContinuousClock.now >= deadline { return nil }
                _ = try await released.wait(for: key, upTo: wait * Double.random(in: 0.5...1.5))
                wait = min(wait * 2, .seconds(1))
            }
        }
        let renewal = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: lease / 3)
                do { try await renew(jobId) } catch { logger.warning("lease renewal failed", metadata: ["error": "\(error)"]) }
            }
        }
        let slot = HeldSlot(limiter: self, jobId: jobId, renewal: renewal)
        do {
            let result = try await body(slot)
            await slot.release()
            return result
        } catch {
            // Shutting down: a job handed back to the queue keeps its slot until the lease expires or
            // the next holder re-enters it. Failing: keep nothing the job does not need.
            await slot.stopRenewing()
            if !(error is CancellationError) { await slot.release() }
            throw error
        }
    }
}

/// A slot held by one job; ``release()`` gives it back (once; later calls do nothing).
final class HeldSlot: Sendable {
    private let limiter: ConcurrencyLimiter
    private let jobId: String
    private let renewal: Task<Void, any Error>
    private let released = Mutex(false)

    init(limiter: ConcurrencyLimiter, jobId: String, renewal: Task<Void, any Error>) {
        self.limiter = limiter
        self.jobId = jobId
        self.renewal = renewal
    }

    /// Stops renewing first (a renewal in flight must not put the lease back after the release), then releases.
    func release() async {
        await stopRenewing()
        guard released.withLock({ done in defer { done = true }; return !done }) else { return }
        await limiter.release(jobId)
    }

    func stopRenewing() async {
        renewal.cancel()
        _ = await renewal.result
    }
}
