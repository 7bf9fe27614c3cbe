import Testing
import TestSupport

/// `CYCLORAMA_TEST_PORTS`: the test processes that run beside each other in `make test` must take
/// ports from parts of the ephemeral range that do not overlap and together cover it.
@Suite struct PortShareTests {
    @Test func theSharesOfARangeCoverItWithoutOverlap() throws {
        let ports = 32768...60999
        for count in 1...5 {
            let shares = try (0..<count).map { try #require(try PortShare("\($0)/\(count)", of: ports)).range }
            #expect(shares.first?.lowerBound == ports.lowerBound && shares.last?.upperBound == ports.upperBound)
            for (before, after) in zip(shares, shares.dropFirst()) {
                #expect(before.upperBound + 1 == after.lowerBound, "\(count) parts: \(before) then \(after)")
            }
            // Equal parts, the last taking what the division leaves.
            #expect(Set(shares.dropLast().map(\.count)).count <= 1)
        }
        let halves = try #require(try PortShare("0/2", of: ports))
        #expect(halves.owns(32768) && halves.owns(46883) && !halves.owns(46884) && !halves.owns(60999))
    }

    @Test func noneIsEveryPortAndAMalformedOneIsRefused() throws {
        #expect(try PortShare(nil, of: 1000...1999) == nil)
        #expect(try PortShare("", of: 1000...1999) == nil)
        for text in ["1", "2/2", "-1/2", "0/0", "a/b", "0/2/3", "/2", "0/", " 0/2", "0/5000"] {
            #expect(throws: PortShare.Malformed.self, "\(text)") { try PortShare(text, of: 1000...1999) }
        }
    }
}
