import ServiceSupport
import Testing

/// `SettingsCache`: when a service's settings client answers a read from what it knows, and when it
/// asks the settings-service (docs/architecture.md, "Settings over the broker").
struct SettingsCacheTests {
    let start = ContinuousClock.now
    let values = ["aiImageDefaultShadow": "soft"]
    let changed = ["aiImageDefaultShadow": "dramatic"]

    @Test func valuesAnswerReadsForTheirLifetimeOnly() {
        var cache = SettingsCache(lifetime: .seconds(30))
        #expect(cache.fresh(at: start) == nil, "nothing known yet")
        cache.store(values, askedAt: cache.generation, now: start)
        #expect(cache.fresh(at: start + .seconds(29)) == values)
        #expect(cache.fresh(at: start + .seconds(30)) == nil, "too old: the next read asks")
    }

    @Test func aBroadcastChangeMakesTheNextReadAsk() {
        var cache = SettingsCache(lifetime: .seconds(30))
        cache.store(values, askedAt: cache.generation, now: start)
        cache.markStale(now: start + .seconds(1))
        #expect(cache.fresh(at: start + .seconds(1)) == nil)
        // The settings-service away: the values known so far serve, asked for again 10 s later.
        #expect(cache.keepKnown(at: start + .seconds(2)) == values)
        #expect(cache.fresh(at: start + .seconds(11)) == values)
        #expect(cache.fresh(at: start + .seconds(12)) == nil)
    }

    /// A reply to a read asked for before a change was broadcast may hold the values from before the
    /// change: it is not kept as fresh, so the next read asks again.
    @Test func aReplyAskedForBeforeAChangeIsNotKeptAsFresh() {
        var cache = SettingsCache(lifetime: .seconds(30))
        let asked = cache.generation
        cache.markStale(now: start)  // the broadcast arrives while the read's request is out
        cache.store(values, askedAt: asked, now: start + .milliseconds(10))
        #expect(cache.fresh(at: start + .milliseconds(20)) == nil, "the next read asks again")
        let again = cache.generation
        cache.store(changed, askedAt: again, now: start + .seconds(1))
        #expect(cache.fresh(at: start + .seconds(2)) == changed)
    }

    @Test func nothingKnownIsNoFallback() {
        var cache = SettingsCache(lifetime: .seconds(30))
        #expect(cache.keepKnown(at: start) == nil)
        cache.markStale(now: start)
        #expect(cache.fresh(at: start) == nil)
    }

    @Test func theServicesOwnChangeIsFresh() {
        var cache = SettingsCache(lifetime: .seconds(30))
        cache.store(values, askedAt: cache.generation, now: start)
        cache.markStale(now: start + .seconds(1))
        cache.storeOwnChange(changed, now: start + .seconds(2))
        #expect(cache.fresh(at: start + .seconds(3)) == changed)
    }
}
