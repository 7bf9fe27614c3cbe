import AsyncHTTPClient
import Foundation
@testable import RunPodDispatcher
import Testing

/// When a RunPod job's photo goes inline: decided from the address alone (or an injected resolver),
/// before anything connects.
@Suite("Image delivery to RunPod")
struct ImageDeliveryTests {
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
