import Foundation
import Testing
import TestSupport

/// What anyone on the network can try against the gateway is refused cheaply: guessing API tokens
/// and calling the unauthenticated webhook route are rate-limited per client address.
@Suite("Gateway abuse limits", .timeLimit(.minutes(2)))
struct GatewayAbuseTests {
    static func expect429(_ answer: HTTPAnswer, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(answer.status == 429, "\(answer.text)", sourceLocation: sourceLocation)
        let error = try #require(try answer.json()["error"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(error["code"] as? String == code, sourceLocation: sourceLocation)
        let retryAfter = try #require(answer.headers.first { $0.0.lowercased() == "retry-after" }.flatMap { Int($0.1) }, sourceLocation: sourceLocation)
        #expect(retryAfter >= 1 && retryAfter <= 60, sourceLocation: sourceLocation)
        #expect(rateLimit(answer)?.remaining == 0, "a refused call has nothing left: \(answer.headers)", sourceLocation: sourceLocation)
    }

    /// `RateLimit-Limit`, `-Remaining`, `-Reset` of an answer, nil when any is missing.
    static func rateLimit(_ answer: HTTPAnswer) -> (limit: Int, remaining: Int, reset: Int)? {
        func value(_ name: String) -> Int? { answer.headers.first { $0.0.lowercased() == name }.flatMap { Int($0.1) } }
        guard let limit = value("ratelimit-limit"), let remaining = value("ratelimit-remaining"), let reset = value("ratelimit-reset") else {
            return nil
        }
        return (limit, remaining, reset)
    }

    @Test func repeatedWrongTokensFromOneAddressGet429UntilTheBucketRefills() async throws {
        let gateway = try await GatewayFixture.start(environment: [
            // A token every 15 s: five calls on a loaded machine can take seconds, and a token back
            // in the middle would let the fourth guess through (seen in full runs at 2 s, then 5 s).
            "API_AUTH_FAILURE_BURST": "3", "API_AUTH_FAILURE_REFILL_SECONDS": "15",
        ])
        defer { Task { await gateway.stop() } }
        // Each 401 says how many more this address may have (RateLimit-*: 3 at once, 15 s a token).
        var remaining: [Int] = []
        let firstGuess = ContinuousClock.now
        for guess in ["guess-1", "", "guess-2"] {
            let answer = try await gateway.call(.GET, "/api/media", token: guess)
            #expect(answer.status == 401)
            let limit = try #require(Self.rateLimit(answer), "\(answer.headers)")
            #expect(limit.limit == 3 && limit.reset >= 1 && limit.reset <= 45, "\(limit)")
            remaining.append(limit.remaining)
        }
        #expect(remaining == [2, 1, 0])
        // The fourth guess is not even looked at; while limited, this address is refused whatever it sends.
        try Self.expect429(try await gateway.call(.GET, "/api/media", token: "guess-3"), "too_many_auth_failures")
        try Self.expect429(try await gateway.call(.GET, "/api/media"), "too_many_auth_failures")
        // Successes cost nothing: once a token is back (and not before), the admin gets in, and again.
        try await eventually("a token is back", timeout: .seconds(90), every: .milliseconds(500)) {
            try await gateway.call(.GET, "/api/media").status == 200
        }
        #expect(ContinuousClock.now - firstGuess >= .seconds(14), "a token comes back after its refill time, not at once")
        #expect(try await gateway.call(.GET, "/api/media").status == 200)
    }

    @Test func theWebhookRouteIsRateLimitedBeforeAnythingIsLookedUp() async throws {
        let gateway = try await GatewayFixture.start(environment: ["WEBHOOK_RATE_PER_SECOND": "1"])
        defer { Task { await gateway.stop() } }
        let path = "/api/ai-image/webhook/\(UUID().uuidString.lowercased())/\(String(repeating: "a", count: 43))"
        // A burst of two: both are looked up and refused as forged (unknown job). The second call
        // finds the token the first one took back again when a loaded machine took a second
        // between them, never more.
        let burst = ContinuousClock.now
        for taken in [1, 2] {
            let answer = try await gateway.call(.POST, path, body: Array("{}".utf8), token: "")
            #expect(answer.status == 403)
            let refilled = Int((ContinuousClock.now - burst).components.seconds)
            let expected = (2 - taken)...min(2 - taken + refilled, 1)
            #expect(Self.rateLimit(answer).map { $0.limit == 2 && expected.contains($0.remaining) } == true, "\(answer.headers)")
        }
        // Then a volley at once: refused before any lookup (429), but for what the tokens that came
        // back meanwhile let through to the lookup (403) — one a second, however slowly a loaded
        // machine answers each call.
        let volley = try await withThrowingTaskGroup(of: HTTPAnswer.self) { group in
            for _ in 0..<12 { group.addTask { try await gateway.call(.POST, path, body: Array("{}".utf8), token: "") } }
            return try await group.reduce(into: [HTTPAnswer]()) { $0.append($1) }
        }
        let seconds = Int((ContinuousClock.now - burst).components.seconds)
        let lookedUp = volley.filter { $0.status == 403 }.count
        #expect(volley.allSatisfy { $0.status == 403 || $0.status == 429 }, "\(volley.map(\.status))")
        #expect(lookedUp <= seconds + 1, "\(lookedUp) more lookups in \(seconds) s: at most one a second")
        try Self.expect429(try #require(volley.first { $0.status == 429 }, "\(volley.map(\.status))"), "rate_limited")
        // The API itself is not affected.
        #expect(try await gateway.call(.GET, "/api/media").status == 200)
    }
}
