import Foundation
import ServiceCore
import Synchronization
import Testing

/// Which addresses count as public, and the allow lists' rule against server-side request forgery:
/// decided from the URL and an injected resolver, before anything connects (nothing here connects).
@Suite("Outbound addresses")
struct OutboundAddressTests {
    @Test(arguments: [
        ("127.0.0.1", false), ("10.1.2.3", false), ("172.20.0.4", false), ("192.168.1.10", false), ("169.254.169.254", false),
        ("100.64.0.1", false), ("0.0.0.0", false), ("224.0.0.1", false), ("255.255.255.255", false), ("::1", false),
        ("[::1]", false), ("::", false), ("fd00::5", false), ("fe80::1", false), ("::ffff:10.0.0.1", false),
        ("::ffff:169.254.169.254", false), ("8.8.8.8", true), ("198.51.100.7", true), ("2606:4700::1111", true),
        ("172.32.0.1", true), ("100.128.0.1", true),
        // The spellings the C library also reads as IPv4 when connecting.
        ("2130706433", false), ("0x7f.1", false), ("0177.0.0.1", false), ("127.1", false), ("3232235777", false),
        ("0xa9.0xfe.0xa9.0xfe", false), ("134744072", true),
        // IPv6 that leads to IPv4 is judged by where it leads; zones are dropped.
        ("64:ff9b::a9fe:a9fe", false), ("64:ff9b::808:808", true), ("::10.0.0.1", false), ("2002:a9fe:a9fe::1", false),
        ("2002:808:808::1", true), ("fec0::1", false), ("fe80::1%eth0", false), ("[fe80::1%25eth0]", false),
    ])
    func addresses(_ address: String, isPublic: Bool) {
        #expect(PublicAddress.isPublic(ip: address) == isPublic, "\(address)")
    }

    /// The port an allow-list entry is matched against: the URL's own, else its scheme's.
    @Test func aURLsConnectionPortIsItsOwnOrItsSchemes() throws {
        let cases = [("http://shop.example.com/x", 80), ("https://shop.example.com", 443), ("HTTPS://shop.example.com", 443),
                     ("http://127.0.0.1:8090/v2", 8090), ("https://[::1]:8443/", 8443)]
        for (text, port) in cases {
            #expect(try #require(URL(string: text)).connectionPort == port, "\(text)")
        }
    }

    @Test func namesArePublicOnlyWhenEveryAddressTheyResolveToIs() async {
        for name in ["shop.example.com", "1e100.net", "deadbeef.cafe", "123.abc"] {
            #expect(PublicAddress.isPublic(ip: name) == nil, "\(name) is a name, not an IP literal")
        }
        for local in ["localhost", "api-gateway", "media.local", "gateway.internal", "nas.lan", "x.home.arpa"] {
            #expect(await !PublicAddress.isPublic(host: local) { _ in Issue.record("\(local) was resolved"); return ["8.8.8.8"] })
        }
        #expect(await PublicAddress.isPublic(host: "shop.example.com") { _ in ["93.184.216.34", "2606:2800:220:1::1"] })
        #expect(await !PublicAddress.isPublic(host: "shop.example.com") { _ in ["93.184.216.34", "10.0.0.7"] }, "one private address")
        #expect(await !PublicAddress.isPublic(host: "nowhere.example.com") { _ in [] }, "a name that does not resolve")
    }

    /// Where a cleared call connects: a name allowed by `*` is pinned to the address that was checked
    /// (asked once; an answer that changes afterwards, DNS rebinding, is never asked for), while an
    /// exact `host:port` entry and a public literal are connected to as named.
    @Test func aNameThatPassesIsPinnedToTheAddressThatWasChecked() async {
        let answers = Mutex<[[String]]>([["93.184.216.34", "2606:2800:220:1::1"], ["127.0.0.1"]])
        let asked = Mutex(0)
        let rebinding: @Sendable (String) async -> [String] = { _ in
            asked.withLock { $0 += 1 }
            return answers.withLock { $0.isEmpty ? [] : $0.removeFirst() }
        }
        let any = HostAllowList(["*", "127.0.0.1:8080"])
        let named = await any.clearance(host: "shop.example.com", port: 443, variable: "X", resolve: rebinding)
        #expect(named == .pinned(host: "shop.example.com", address: "93.184.216.34"))
        #expect(named.refusal == nil)
        #expect(asked.withLock { $0 } == 1, "resolved once, for the check; the connect uses the address checked")
        // Asked again (the next attempt), the changed answer is refused, not connected to.
        #expect(await any.clearance(host: "shop.example.com", port: 443, variable: "X", resolve: rebinding).refusal?.reason
            .contains("127.0.0.1, a loopback address") == true)
        #expect(await any.clearance(host: "127.0.0.1", port: 8080, variable: "X", resolve: rebinding) == .asNamed)
        #expect(await any.clearance(host: "8.8.8.8", port: 443, variable: "X", resolve: rebinding) == .asNamed)
        #expect(await any.clearance(host: "10.0.0.8", port: 80, variable: "X", resolve: rebinding).refusal?.reason.contains("private") == true)
        #expect(asked.withLock { $0 } == 2, "literals and exact entries are not resolved")
        #expect(await HostAllowList.addressClearance(host: "cdn.example.com", port: 443) { _ in ["104.18.2.3"] }
            == .pinned(host: "cdn.example.com", address: "104.18.2.3"))
    }

    /// A resolver that answers from a table and remembers what it was asked.
    final class Resolver: Sendable {
        let table: [String: [String]]
        let asked = Mutex<[String]>([])
        init(_ table: [String: [String]]) { self.table = table }
        var resolve: @Sendable (String) async -> [String] { { [self] name in asked.withLock { $0.append(name) }; return table[name] ?? [] } }
    }

    @Test func aWildcardOrANameIsAllowedOnlyAtAPublicAddress() async {
        let resolver = Resolver([
            "metadata.example.com": ["169.254.169.254"], "rebound.example.com": ["93.184.216.34", "127.0.0.1"],
            "shop.example.com": ["93.184.216.34"], "v6.example.com": ["fd12::1"],
        ])
        let any = HostAllowList(["*"])
        func refusal(_ host: String, _ port: Int = 80, in list: HostAllowList = any) async -> String? {
            await list.refusal(host: host, port: port, variable: "X_ALLOWED_HOSTS", resolve: resolver.resolve)?.reason
        }
        #expect(await refusal("metadata.example.com")?.contains("resolves to 169.254.169.254, a link-local (cloud metadata) address") == true)
        #expect(await refusal("rebound.example.com")?.contains("127.0.0.1, a loopback address") == true, "one inner address is enough")
        #expect(await refusal("v6.example.com")?.contains("unique-local") == true)
        #expect(await refusal("nowhere.example.com")?.contains("does not resolve") == true)
        let later = await any.refusal(host: "nowhere.example.com", port: 80, variable: "X", resolve: resolver.resolve)
        #expect(later?.isTransient == true, "a name that does not resolve now may later")
        let never = await any.refusal(host: "metadata.example.com", port: 80, variable: "X", resolve: resolver.resolve)
        #expect(never?.isTransient == false)
        let unreadable = Resolver(["odd.example.com": ["93.184.216.34", "not-an-address"]])
        #expect(await any.refusal(host: "odd.example.com", port: 80, variable: "X", resolve: unreadable.resolve)?.reason.contains("not an address") == true)
        #expect(await refusal("shop.example.com") == nil)
        // Literals and local-only names are judged without asking any resolver.
        resolver.asked.withLock { $0.removeAll() }
        #expect(await refusal("[::1]", 8080)?.contains("loopback") == true)
        #expect(await refusal("2130706433", 8080)?.contains("loopback") == true)
        #expect(await refusal("0xa9.0xfe.0xa9.0xfe")?.contains("cloud metadata") == true)
        #expect(await refusal("10.0.0.8")?.contains("private") == true)
        #expect(await refusal("localhost", 8080)?.contains("local-only name") == true)
        #expect(await refusal("8.8.8.8", 443) == nil)
        #expect(resolver.asked.withLock { $0 }.isEmpty)

        // host:port listed exactly is the operator naming that service: trusted as it is.
        let exact = HostAllowList(list: "127.0.0.1:8080, [::1]:9000, image.runpod.ai")
        #expect(await refusal("127.0.0.1", 8080, in: exact) == nil)
        #expect(await refusal("[::1]", 9000, in: exact) == nil)
        #expect(await refusal("127.0.0.1", 8081, in: exact)?.contains("is not allowed (X_ALLOWED_HOSTS: 127.0.0.1:8080, [::1]:9000, image.runpod.ai)") == true)
        // A bare name: any port, but only where the name resolves to public addresses.
        let named = Resolver(["image.runpod.ai": ["10.0.0.5"]])
        #expect(await exact.refusal(host: "image.runpod.ai", port: 443, variable: "X", resolve: named.resolve)?.reason.contains("10.0.0.5, a private address") == true)
        let honest = Resolver(["image.runpod.ai": ["104.18.2.3"]])
        #expect(await exact.refusal(host: "image.runpod.ai", port: 443, variable: "X", resolve: honest.resolve) == nil)

        // Without resolving (a URL taken at intake): the same rules, a name left to the connect.
        #expect(exact.refusalWithoutResolving(host: "127.0.0.1", port: 8080, variable: "X") == nil)
        #expect(exact.refusalWithoutResolving(host: "127.0.0.1", port: 8081, variable: "X")?.reason.contains("is not allowed") == true)
        #expect(any.refusalWithoutResolving(host: "10.0.0.8", port: 80, variable: "X")?.reason.contains("private address; only 10.0.0.8:80 listed exactly in X may be") == true)
        #expect(any.refusalWithoutResolving(host: "localhost", port: 80, variable: "X")?.reason.contains("local-only name") == true)
        #expect(any.refusalWithoutResolving(host: "metadata.example.com", port: 80, variable: "X") == nil, "a name is judged when it is resolved")
        #expect(HostAllowList([]).refusalWithoutResolving(host: "shop.example.com", port: 443, variable: "X")?.reason.contains("not allowed") == true)
    }
}
