extension Duration {
    /// Whole milliseconds, truncated toward zero: for a timer, a header, a Redis expiry or a
    /// protocol field that counts milliseconds.
    public var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds with their fraction (what Foundation's `TimeInterval` counts): for SQL intervals,
    /// rates and dates.
    public var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
