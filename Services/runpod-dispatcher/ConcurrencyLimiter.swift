import Foundation
import Logging
import Redis
import ServiceCore
import ServiceSupport
import Synchronization
import Timing

/// The global limit on jobs at the backend (`aiImageMaxConcurrent`), shared by every dispatcher
/// instance: a Redis sorted set of leases (member: job id, score: expiry in ms of Redis's own clock).
///
/// A lease has two lives (docs/reliability.md, I4):
///
/// - **held while waiting to submit**: short (``lease``) and renewed by its holder, so the slot of
///   an instance that crashed before submitting comes back soon. A lease that lapsed (its holder
///   stalled) is never quietly taken again: the holder must win a free slot like anyone else.
/// - **committed** (``HeldSlot/commit()``) just before `/run`: from then on the job may be running at
///   the backend whatever happens to its follower, so the lease lasts until the backend must have
///   dropped the job (``hold``: its `policy.ttl` and a margin). It ends earlier only when the
///   backend says the job ended (``HeldSlot/release()``). A follower that re-attaches after a crash
///   takes its committed lease over (``withSlot`` with `atBackend`).
///
/// A job waiting for a slot looks again when a job of this process releases one (at once) and
/// otherwise every second at most (slots released by other instances).
struct ConcurrencyLimiter: Sendable {
    let redis: RedisClient
    let key: String
    let lease: Duration
    /// How long a committed lease lasts: the backend's `policy.ttl` for the job plus a margin.
    let hold: Duration
    let logger: Logger
    private let released = Doorbell<String>()

    init(redis: RedisClient, key: String, lease: Duration, hold: Duration, logger: Logger) {
        self.redis = redis
        self.key = key
        self.lease = lease
        self.hold = hold
        self.logger = logger
        released.register(key)
    }

    static let clock = """
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
        """

    /// KEYS[1] leases; ARGV: job id, how long (ms), limit, key lifetime ms, and `force` to ignore
    /// the limit. Takes or keeps the job's slot until at least now + how long: its own lease if still
    /// held (never shortened), else a free slot. 1 when the job holds a slot afterwards.
    static let takeScript = clock + """
        if ARGV[5] == 'force' or redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
            local current = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or 0)
            redis.call('ZADD', KEYS[1], math.max(current, ms + tonumber(ARGV[2])), ARGV[1])
            redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
            return 1
        end
        return 0
        """

    /// KEYS[1] leases; ARGV: job id, lease ms. Extends a lease that is still held (never shortens a
    /// committed one); 0 when it had lapsed: it is not taken again here.
    static let renewScript = clock + """
        local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not current then return 0 end
        redis.call('ZADD', KEYS[1], math.max(tonumber(current), ms + tonumber(ARGV[2])), ARGV[1])
        return 1
        """

    private var keyLifetime: String { String((hold * 2).wholeMilliseconds) }

    /// Tries once to take (or keep) a slot for `jobId` under `limit`.
    func tryAcquire(_ jobId: String, limit: Int) async throws -> Bool {
        try await redis.eval(Self.takeScript, keys: [key], arguments: [jobId, String(lease.wholeMilliseconds), String(limit), keyLifetime, ""]).intValue == 1
    }

    /// Extends a held lease; false when it had lapsed.
    func renew(_ jobId: String) async throws -> Bool {
        try await redis.eval(Self.renewScript, keys: [key], arguments: [jobId, String(lease.wholeMilliseconds)]).intValue == 1
    }

    /// Commits the job's slot for ``hold`` (see the type's documentation); false when its lease had
    /// lapsed and no slot is free.
    func commit(_ jobId: String, limit: Int, force: Bool = false) async throws -> Bool {
        try await redis.eval(
            Self.takeScript, keys: [key],
            arguments: [jobId, String(hold.wholeMilliseconds), String(limit), keyLifetime, force ? "force" : ""]).intValue == 1
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

    /// The job ids holding a slot now (for metrics and tests).
    func holders() async throws -> [String] {
        let now = try await redis.eval(
            "local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)", keys: [], arguments: [])
        guard let ms = now.intValue else { return [] }
        return try await redis.command(["ZRANGEBYSCORE", key, "(\(ms)", "+inf"]).arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Waits for a slot (woken by local releases, else polling with jitter; nil when `deadline` passes
    /// first) and runs `body` with it, renewing the lease while it is not committed.
    ///
    /// With `atBackend` (a job that re-attaches: it may be running at the backend already) the lease is
    /// committed at once whatever the limit. Afterwards (or when `body` throws) an uncommitted slot is
    /// released; a committed one only when `body` called ``HeldSlot/release()`` (the backend said the
    /// job ended) — otherwise it stays until its hold ends or a follower re-attaches, because the job
    /// may still run at the backend.
    func withSlot<T: Sendable>(
        _ jobId: String, limit: @escaping @Sendable () async throws -> Int, until deadline: ContinuousClock.Instant, atBackend: Bool = false,
        _ body: @Sendable (HeldSlot) async throws -> T
    ) async throws -> T? {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        if atBackend {
            _ = try await commit(jobId, limit: try await limit(), force: true)
        } else {
            while try await !tryAcquire(jobId, limit: try await limit()) {
                if ContinuousClock.now >= deadline { return nil }
                _ = try await released.wait(for: key, upTo: backoff.next())
            }
        }
        let slot = HeldSlot(limiter: self, jobId: jobId, limit: limit, committed: atBackend)
        let renewal = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: lease / 3)
                if slot.isCommitted { return }
                do {
                    if try await !renew(jobId) {
                        logger.warning("a lease lapsed before the job was submitted; it must win a slot again", metadata: ["jobId": "\(jobId)"])
                        return
                    }
                } catch {
                    logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { renewal.cancel() }
        return try await withAsyncCleanup({ try await body(slot) }, cleanup: { await slot.settle() })
    }
}

/// A slot held by one job. Before `/run` it must be ``commit()``ted; ``release()`` gives it back
/// once the backend says the job ended (once; later calls do nothing).
final class HeldSlot: Sendable {
    private let limiter: ConcurrencyLimiter
    private let jobId: String
    private let limit: @Sendable () async throws -> Int
    private struct State {
        var committed: Bool
        var released = false
    }
    private let state: Mutex<State>

    init(limiter: ConcurrencyLimiter, jobId: String, limit: @escaping @Sendable () async throws -> Int, committed: Bool) {
        self.limiter = limiter
        self.jobId = jobId
        self.limit = limit
        self.state = Mutex(State(committed: committed))
    }

    var isCommitted: Bool { state.withLock { $0.committed } }

    /// Makes the slot last while the job may be at the backend. False when the lease had lapsed and
    /// no slot is free now: the job must not be submitted (wait and try again).
    func commit() async throws -> Bool {
        guard try await limiter.commit(jobId, limit: try await limit()) else { return false }
        state.withLock { s in
            s.committed = true
            s.released = false
        }
        return true
    }

    /// The backend said the job ended: the slot is free for the next job now. A job submitted again
    /// afterwards (its backend job was lost) must ``commit()`` a slot again first.
    func release() async {
        let first = state.withLock { s in
            defer {
                s.released = true
                s.committed = false
            }
            return !s.released
        }
        if first { await limiter.release(jobId) }
    }

    /// Called when the follower is done with the slot: an uncommitted slot is released. A committed
    /// one is left alone: the follower released it when the backend said the job ended; otherwise the
    /// job may still run there (its cancel did not get through, its submission could not be
    /// confirmed, or the follower stopped and another re-attaches), and the lease lasts until its hold ends.
    fileprivate func settle() async {
        let (committed, released) = state.withLock { ($0.committed, $0.released) }
        if !committed && !released { await release() }
    }
}
