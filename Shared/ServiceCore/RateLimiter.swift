import HTTPTypes
import Synchronization
import Timing

/// Token buckets, one per client: a client may make `burst` calls at once, then `perSecond` a
/// second. Memory is bounded: past `maxClients` buckets, the ones that have refilled (clients
/// that went quiet) are forgotten first, then the least used, down to 90 % — so a flood of fresh
/// addresses can neither grow it nor free the busiest client from its limit.
///
/// One instance per process: with N gateways a client gets N times the rate, which is fine for a
/// limit meant to make abuse cheap to refuse, not to meter use.
public final class RateLimiter: Sendable {
    public let burst: Double
    public let perSecond: Double
    public let maxClients: Int
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }
    private let buckets = Mutex<[String: Bucket]>([:])

    public init(burst: Int, perSecond: Double, maxClients: Int = 10_000) {
        precondition(burst >= 1 && perSecond > 0 && maxClients >= 1)
        self.burst = Double(burst)
        self.perSecond = perSecond
        self.maxClients = maxClients
    }

    /// How many clients it remembers now (at most `maxClients`).
    public var trackedClients: Int { buckets.withLock { $0.count } }

    /// Takes a token for `client`: nil when the call may go ahead, else how long until a token is
    /// back (nothing is taken then).
    public func take(_ client: String, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            var bucket = refilled(buckets[client], now: now)
            defer {
                buckets[client] = bucket
                if buckets.count > maxClients { prune(&buckets, now: now) }
            }
            guard bucket.tokens >= 1 else { return wait(for: bucket) }
            bucket.tokens -= 1
            return nil
        }
    }

    /// How long until `client` has a token, without taking one; nil when it has one now.
    public func wait(_ client: String, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            let bucket = refilled(buckets[client], now: now)
            return bucket.tokens >= 1 ? nil : wait(for: bucket)
        }
    }

    /// The `RateLimit-*` headers for `client` (the IETF draft's `RateLimit-Limit`,
    /// `RateLimit-Remaining`, `RateLimit-Reset`): the burst, the whole calls left now, and the
    /// seconds until the bucket is full again.
    public func headers(_ client: String, now: ContinuousClock.Instant = .now) -> HTTPFields {
        let bucket = buckets.withLock { refilled($0[client], now: now) }
        let reset = Int(((burst - bucket.tokens) / perSecond).rounded(.up))
        return [
            HTTPField.Name("RateLimit-Limit")!: String(Int(burst)),
            HTTPField.Name("RateLimit-Remaining")!: String(Int(bucket.tokens.rounded(.down))),
            HTTPField.Name("RateLimit-Reset")!: String(max(0, reset)),
        ]
    }

    private func refilled(_ bucket: Bucket?, now: ContinuousClock.Instant) -> Bucket {
        guard let bucket else { return Bucket(tokens: burst, updated: now) }
        let elapsed = now - bucket.updated
        let seconds = elapsed.timeInterval
        return Bucket(tokens: min(burst, bucket.tokens + max(0, seconds) * perSecond), updated: now)
    }

    private func wait(for bucket: Bucket) -> Duration {
        .milliseconds(Int(((1 - bucket.tokens) / perSecond * 1000).rounded(.up)))
    }

    private func prune(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant) {
        buckets = buckets.filter { refilled($0.value, now: now).tokens < burst }
        let keep = max(1, maxClients * 9 / 10)
        guard buckets.count > keep else { return }
        let busiest = buckets.map { ($0.key, refilled($0.value, now: now)) }.sorted { $0.1.tokens < $1.1.tokens }.prefix(keep)
        buckets = Dictionary(uniqueKeysWithValues: busiest.map { ($0.0, $0.1) })
    }
}
