import AsyncHTTPClient
import Foundation
@testable import RunPodDispatcher
import Testing

/// When a RunPod job's photo goes inline: decided from the address alone (or an injected resolver),
/// before anything connects.
@Suite("Image delivery to RunPod")
struct ImageDeliveryTests {
    @Test(arguments: [
        ("127.0.0.1", false), ("10.1.2.3", false), ("172.20.0.4", false), ("192.168.1.10", false), ("169.254.169.254", false),
        ("100.64.0.1", false), ("0.0.0.0", false), ("224.0.0.1", false), ("::1", false), ("[::1]", false), ("fd00::5", false),
        ("fe80::1", false), ("::ffff:10.0.0.1", false), ("8.8.8.8", true), ("198.51.100.7", true), ("2606:4700::1111", true),
        ("172.32.0.1", true), ("100.128.0.1", true),
    ])
    func addresses(_ address: String, isPublic: Bool) {
        #expect(PublicAddress.isPublic(ip: address) == isPublic, "\(address)")
    }

    @Test func namesArePublicOnlyWhenEveryAddressTheyResolveToIs() async {
        #expect(PublicAddress.isPublic(ip: "shop.example.com") == nil, "a name is not an IP literal")
        for local in ["localhost", "api-gateway", "media.local", "gateway.internal", "nas.lan", "x.home.arpa"] {
            #expect(await !PublicAddress.isPublic(host: local) { _ in Issue.record("\(local) was resolved"); return ["8.8.8.8"] })
        }
        #expect(await PublicAddress.isPublic(host: "shop.example.com") { _ in ["93.184.216.34", "2606:2800:220:1::1"] })
        #expect(await !PublicAddress.isPublic(host: "shop.example.com") { _ in ["93.184.216.34", "10.0.0.7"] }, "one private address")
        #expect(await !PublicAddress.isPublic(host: "nowhere.example.com") { _ in [] }, "a name that does not resolve")
    }

    @Test func onlyTheGatewaysLinksGoInlineAndAutoFollowsTheBaseURL() async throws {
        let http = HTTPClient.shared
        var loopback = ImageInliner(http: http, mediaBaseURL: "http://127.0.0.1:8080")
        loopback.resolve = { host in Issue.record("\(host) was resolved"); return [] }
        let link = "http://127.0.0.1:8080/media/abc/file?v=1.jpg&signature=x"
        #expect(await loopback.sendsInline(link, delivery: .auto))
        #expect(await loopback.sendsInline(link, delivery: .inline))
        #expect(await !loopback.sendsInline(link, delivery: .url))
        #expect(await !loopback.sendsInline("http://127.0.0.1:9999/elsewhere.jpg", delivery: .inline), "not one of the gateway's links")
        #expect(await !loopback.sendsInline("data:image/png;base64,AAAA", delivery: .inline))

        var published = ImageInliner(http: http, mediaBaseURL: "https://shop.example.com")
        published.resolve = { _ in ["93.184.216.34"] }
        let publicLink = "https://shop.example.com/media/abc/file?v=1.jpg&signature=x"
        #expect(await !published.sendsInline(publicLink, delivery: .auto), "a public base: RunPod fetches the link")
        #expect(await published.sendsInline(publicLink, delivery: .inline))
    }

    @Test func theSettingAndTheModelsSide() {
        #expect(ImageDelivery(setting: nil) == .auto && ImageDelivery(setting: " Inline ") == .inline && ImageDelivery(setting: "x") == .auto)
        #expect(ImageInliner.longSide(of: "1536*1536") == 1536 && ImageInliner.longSide(of: "1024*768") == 1024)
        #expect(ImageInliner.longSide(of: nil) == 2048 && ImageInliner.longSide(of: "big") == 2048)
        #expect(ImageInliner.imageLimit / 3 * 4 + 200_000 <= ImageInliner.requestLimit, "base64 of the largest photo fits RunPod's limit")
    }
}
