/// Exponential backoff with jitter: the wait doubles from `initial` up to `maximum`, and each wait
/// is drawn between half of it and all of it, so many waiters do not come back at once. The one
/// backoff every loop uses (consumers waiting out an outage, the dispatcher's retries, slot waits,
/// the engine's source fetches).
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private var attempt = 0

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The next wait (and the one after is longer, up to ``maximum``).
    public mutating func next() -> Duration {
        let factor = Double(1 << min(attempt, 16))
        attempt += 1
        let ceiling = min(initial * factor, maximum)
        let millis = ceiling.timeInterval * 1000
        return .milliseconds(Int(Double.random(in: millis / 2...max(millis / 2, millis))))
    }

    /// Starts over at ``initial`` (after a success).
    public mutating func reset() { attempt = 0 }
}
