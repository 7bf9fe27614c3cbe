import HTTPTypes
import NIOCore
@testable import ServiceCore
import Testing

@Suite("Rate limiter")
struct RateLimiterTests {
    @Test func aClientGetsItsBurstThenOneTokenPerIntervalAndOthersAreNotTouched() {
        let limiter = RateLimiter(burst: 3, perSecond: 2)
        let start = ContinuousClock.now
        for _ in 0..<3 { #expect(limiter.take("a", now: start) == nil) }
        // Empty: refused, told to wait half a second (one token at 2 per second), nothing taken.
        #expect(limiter.take("a", now: start) == .milliseconds(500))
        #expect(limiter.wait("a", now: start) == .milliseconds(500))
        #expect(limiter.take("b", now: start) == nil, "another client has its own bucket")
        // A quarter of a second later half a token is back: a quarter of a second still to wait.
        #expect(limiter.take("a", now: start + .milliseconds(250)) == .milliseconds(250))
        #expect(limiter.take("a", now: start + .milliseconds(500)) == nil)
        #expect(limiter.take("a", now: start + .milliseconds(500)) != nil)
        // A long pause refills to the burst, never beyond it.
        let later = start + .seconds(60)
        for _ in 0..<3 { #expect(limiter.take("a", now: later) == nil) }
        #expect(limiter.take("a", now: later) != nil)
    }

    @Test func headersSayTheBurstWhatIsLeftAndWhenItIsFull() {
        let limiter = RateLimiter(burst: 4, perSecond: 2)
        let now = ContinuousClock.now
        func header(_ name: String, _ at: ContinuousClock.Instant) -> String? { limiter.headers("a", now: at)[HTTPField.Name(name)!] }
        #expect(header("RateLimit-Limit", now) == "4" && header("RateLimit-Remaining", now) == "4" && header("RateLimit-Reset", now) == "0")
        for _ in 0..<3 { _ = limiter.take("a", now: now) }
        #expect(header("RateLimit-Remaining", now) == "1")
        #expect(header("RateLimit-Reset", now) == "2", "3 tokens at 2 a second: full in 1.5 s, said as 2")
        #expect(header("RateLimit-Remaining", now + .milliseconds(600)) == "2")
    }

    @Test func waitTakesNothing() {
        let limiter = RateLimiter(burst: 1, perSecond: 1)
        let now = ContinuousClock.now
        for _ in 0..<5 { #expect(limiter.wait("a", now: now) == nil) }
        #expect(limiter.take("a", now: now) == nil)
        #expect(limiter.wait("a", now: now) == .seconds(1))
    }

    @Test func anIPv6ClientIsCountedByItsSlash64AndAMappedIPv4ByItsAddress() throws {
        let one = try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 1)
        let sibling = try SocketAddress(ipAddress: "2001:db8:1:2:ffff:1:2:3", port: 2)
        let other = try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)
        #expect(ServiceRequestContext.clientKey(one) == "2001:db8:1:2::/64")
        #expect(ServiceRequestContext.clientKey(sibling) == ServiceRequestContext.clientKey(one))
        #expect(ServiceRequestContext.clientKey(other) != ServiceRequestContext.clientKey(one))
        #expect(ServiceRequestContext.clientKey(try SocketAddress(ipAddress: "::ffff:192.0.2.7", port: 1)) == "192.0.2.7")
        #expect(ServiceRequestContext.clientKey(try SocketAddress(ipAddress: "192.0.2.7", port: 1)) == "192.0.2.7")
        #expect(ServiceRequestContext.clientKey(nil) == "unknown")
    }

    /// A flood of fresh addresses does not grow it without bound: quiet clients are forgotten first.
    @Test func memoryIsBoundedAndBusyClientsAreRememberedFirst() {
        let limiter = RateLimiter(burst: 2, perSecond: 0.001, maxClients: 100)
        let now = ContinuousClock.now
        #expect(limiter.take("busy", now: now) == nil)
        #expect(limiter.take("busy", now: now) == nil)
        #expect(limiter.take("busy", now: now) != nil)
        for index in 0..<1_000 { _ = limiter.wait("quiet-\(index)", now: now) }  // waits create no buckets
        for index in 0..<99 { _ = limiter.take("fresh-\(index)", now: now) }
        // Past 100 buckets it prunes to 90, keeping the most used: "busy" (empty) among them.
        for index in 0..<1_000 { _ = limiter.take("flood-\(index)", now: now) }
        #expect(limiter.take("busy", now: now) != nil, "the busy client is still limited")
        #expect(limiter.trackedClients <= 100)
    }
}
