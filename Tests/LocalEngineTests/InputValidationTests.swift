import RunPod
import Foundation
import ServiceCore
import Hummingbird
import Synchronization
import Testing
import TestSupport

@testable import LocalEngine

/// Bad inputs end FAILED with a clear error and the engine keeps serving; images are fetched only
/// from allowed hosts, within the size cap.
@Suite("local-engine inputs", .timeLimit(.minutes(2)))
struct InputValidationTests {
    /// Each case: the input, and what its error must say.
    static var badInputs: [(input: [String: Any], error: String)] { [
        (["image": "data:image/png;base64,"], "empty (0 bytes)"),
        (["image": Samples.dataURI(Array("just some text\n".utf8))], "not a recognised image"),
        (["image": Samples.dataURI(Array("hello".utf8), type: "text/plain")], "image/* media type"),
        (["image": "data:image/png;base64,@@@not base64@@@"], "not valid base64"),
        (["image": "file:///etc/passwd"], "file:// URLs are not fetched"),
        (["image": "http://example.com/product.jpg"], "host example.com:80 is not allowed"),
        (["image": "ftp://127.0.0.1/a.png"], "ftp:// URLs are not fetched"),
        (["image": 42], "input.image: must be an http(s) URL"),
        ([:], "input.image: required"),
        (["image": Samples.dataURI(Samples.tinyPNG), "shadow": "spooky"],
         "input.shadow: must be one of none, minimal, soft, dramatic; got \"spooky\""),
        (["image": Samples.dataURI(Samples.tinyPNG), "background": "blue"], "input.background: must be \"#RRGGBB\" or \"transparent\"; got \"blue\""),
        (["image": Samples.dataURI(Samples.tinyPNG), "background": "#12345G"], "input.background"),
        (["image": Samples.dataURI(Samples.tinyPNG), "upscale": 3], "input.upscale: must be one of 1, 2, 4; got 3"),
        (["image": Samples.dataURI(Samples.tinyPNG), "outputFormat": "gif"], "input.outputFormat: must be one of png, jpeg, webp; got \"gif\""),
        (["image": Samples.dataURI(Samples.tinyPNG), "removeWatermark": "yes"], "input.removeWatermark: must be true or false"),
        (["image": Samples.dataURI(Samples.tinyPNG), "shadows": "soft"], "input.shadows: unknown field"),
    ] }

    @Test func eachBadInputEndsFailedWithAClearErrorAndTheEngineKeepsServing() async throws {
        try await InProcessEngine.test(simulateMs: 10, concurrency: 2, queueLimit: 32) { engine in
            for (input, expected) in Self.badInputs {
                let reply = try await engine.submit(input, path: "/runsync")
                #expect(reply.status == 200, "\(input): \(reply.text)")
                let body = try reply.decode(JobStatusBody.self)
                #expect(body.status == .failed, "\(input) → \(body.status)")
                #expect(body.error?.contains(expected) == true, "\(input): error \(body.error ?? "nil") lacks \(expected)")
                #expect(body.output == nil)
            }
            // Still serving, and good input still works.
            let good = try await engine.submit(["image": Samples.dataURI(Samples.tinyPNG)], path: "/runsync").decode(JobStatusBody.self)
            #expect(good.status == .completed)
            #expect(try await engine.health().jobs.failed == Self.badInputs.count)
        }
    }

    @Test func imagesAreFetchedFromAllowedHostsWithinTheSizeCap() async throws {
        let image = Samples.tinyPNG
        let big = [UInt8](repeating: 7, count: (1 << 20) + 10)
        let origin = try await TestHTTPServer { path, _ in
            switch path {
            case "/product.png": (.ok, [.contentType: "image/png"], image)
            case "/big.png": (.ok, [.contentType: "image/png"], big)
            case "/moved.png": (.found, [.location: "http://example.com/product.png"], [])
            default: (.notFound, [:], [])
            }
        }
        defer { Task { await origin.stop() } }
        let closedPort = freePort()
        try await InProcessEngine.test(
            simulateMs: 10,
            environment: [
                "LOCAL_ENGINE_ALLOWED_HOSTS": "127.0.0.1:\(origin.port), 127.0.0.1:\(closedPort)",
                "LOCAL_ENGINE_MAX_IMAGE_MB": "1",
                // A source that does not answer is tried again for this long before the job fails.
                "LOCAL_ENGINE_FETCH_RETRY_SECONDS": "1",
            ]
        ) { engine in

            let fetched = try await engine.submit(["image": "\(origin.url)/product.png"], path: "/runsync").decode(JobStatusBody.self)
            #expect(fetched.status == .completed, "\(fetched.error ?? "")")
            #expect(try await engine.call(.GET, try #require(fetched.output?.imageURL)).body == image)

            let cases: [(String, String)] = [
                ("\(origin.url)/missing.png", "answered HTTP 404"),
                // A signed link's signature never reaches the job's error (which the status API shows).
                ("\(origin.url)/missing.png?expires=1&signature=feedc0ffee", "fetching \(origin.url)/missing.png?… answered HTTP 404"),
                ("\(origin.url)/big.png", "1 MB limit"),
                ("\(origin.url)/moved.png", "not followed"),
                ("http://127.0.0.1:\(closedPort)/product.png", "could not fetch"),
                ("http://localhost:\(origin.port)/product.png", "is not allowed"),
            ]
            for (url, expected) in cases {
                let body = try await engine.submit(["image": url], path: "/runsync").decode(JobStatusBody.self)
                #expect(body.status == .failed, "\(url)")
                #expect(body.error?.contains(expected) == true, "\(url): \(body.error ?? "nil")")
                #expect(body.error?.contains("feedc0ffee") == false, "\(url): \(body.error ?? "nil")")
            }
        }
    }

    /// A reference refused before any fetch names the address without its query: a signed link's
    /// signature never reaches the job's error.
    @Test func aRefusedReferenceIsNamedWithoutItsQuery() async throws {
        try await using(ImageSource.makeClient()) { client async throws in
            let source = ImageSource(client: client, allowedHosts: HostAllowList(["127.0.0.1"]), maxBytes: 1 << 20, timeout: .seconds(30))
            for (reference, expected) in [("http:///p.png?signature=feedface", ": http:///p.png?…"), ("//p.png?signature=feedface", ": //p.png?…")] {
                do throws(JobFailure) {
                    try source.validate(reference)
                    Issue.record("\(reference) was accepted")
                } catch {
                    #expect(error.code == .invalidInput && error.message.hasSuffix(expected) && !error.message.contains("feedface"), "\(error.message)")
                }
            }
        }
    }

    /// With `*` (or a bare name) on the list, a source is fetched only at a public address: the
    /// name is resolved (here by an injected resolver) and loopback, private, link-local and
    /// metadata addresses are refused before anything connects; `host:port` listed exactly is
    /// trusted as named. Only loopback literals are ever fetched here, so even a regression could
    /// not send anything elsewhere; names are judged without a fetch.
    @Test func aWildcardFetchesOnlyFromPublicAddressesAndRefusesBeforeConnecting() async throws {
        let origin = try await TestHTTPServer { _, _ in (.ok, [.contentType: "image/png"], Samples.tinyPNG) }
        defer { Task { await origin.stop() } }
        try await using(ImageSource.makeClient()) { client async throws in
            var source = ImageSource(client: client, allowedHosts: HostAllowList(["*"]), maxBytes: 1 << 20, timeout: .seconds(30))
            let table = ["metadata.invalid": ["169.254.169.254"], "rebind.invalid": ["127.0.0.1"], "lan.invalid": ["192.168.1.20"]]
            source.resolve = { name in table[name] ?? [] }
            for (url, expected) in [
                ("http://127.0.0.1:\(origin.port)/p.png", "127.0.0.1 is a loopback address"),
                ("http://[::1]:\(origin.port)/p.png", "::1 is a loopback address"),
                ("http://2130706433:\(origin.port)/p.png", "2130706433 is a loopback address"),
                ("http://0x7f.1:\(origin.port)/p.png", "loopback"),
                ("http://[::ffff:127.0.0.1]:\(origin.port)/p.png", "loopback"),
                ("http://localhost:\(origin.port)/p.png", "local-only name"),
            ] {
                do throws(JobFailure) {
                    _ = try await source.fetch(url)
                    Issue.record("\(url) was fetched")
                } catch {
                    #expect(error.code == .invalidInput && error.message.contains(expected), "\(url): \(error.message)")
                    #expect(error.message.contains("LOCAL_ENGINE_ALLOWED_HOSTS"), "says how to allow it: \(error.message)")
                }
            }
            #expect(await origin.received().isEmpty, "nothing connected")
            // Names go through the engine's resolver, and are judged by every address they have.
            for (host, expected, transient) in [
                ("metadata.invalid", "resolves to 169.254.169.254, a link-local (cloud metadata) address", false),
                ("rebind.invalid", "resolves to 127.0.0.1, a loopback address", false),
                ("lan.invalid", "resolves to 192.168.1.20, a private address", false),
                ("nowhere.invalid", "does not resolve", true),
            ] {
                let refusal = await source.refusal(host: host, port: 80)
                #expect(refusal?.reason.contains(expected) == true && refusal?.isTransient == transient, "\(host): \(String(describing: refusal))")
            }
            source.allowedHosts = HostAllowList(["*", "127.0.0.1:\(origin.port)"])
            #expect(try await source.fetch("http://127.0.0.1:\(origin.port)/p.png") == Samples.tinyPNG, "listed exactly")
        }
    }

    /// A webhook host allowed by `*` is refused at submission when it is not public.
    @Test func aWildcardWebhookListStillRefusesLoopbackAndMetadata() async throws {
        try await InProcessEngine.test(simulateMs: 10, environment: ["LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS": "*"]) { engine in
            // Only loopback spellings here, so that even a regression would send nothing elsewhere; the
            // other address classes are judged by the same function (OutboundAddressTests).
            for (webhook, expected) in [
                ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"), ("http://[::1]:9/hook", "::1 is a loopback address"),
                ("http://2130706433:9/hook", "2130706433 is a loopback address"), ("http://localhost:9/hook", "local-only name"),
            ] {
                let reply = try await engine.submit(["image": Samples.dataURI(Samples.tinyPNG)], webhook: webhook)
                #expect(reply.status == 400, "\(webhook): \(reply.text)")
                #expect(reply.text.contains(expected) && reply.text.contains("LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS"), "\(webhook): \(reply.text)")
            }
        }
    }

    @Test func aSourceThatIsAwayForAWhileDelaysTheJobInsteadOfFailingIt() async throws {
        // The gateway restarting, or its database away: 503 twice, then the image.
        let image = Samples.tinyPNG
        let answered = Mutex(0)
        let origin = try await TestHTTPServer { path, _ in
            let count = answered.withLock { $0 += 1; return $0 }
            return count <= 2 ? (.serviceUnavailable, [:], []) : (.ok, [.contentType: "image/png"], image)
        }
        defer { Task { await origin.stop() } }
        try await InProcessEngine.test(
            simulateMs: 10, environment: ["LOCAL_ENGINE_ALLOWED_HOSTS": "127.0.0.1:\(origin.port)", "LOCAL_ENGINE_FETCH_RETRY_SECONDS": "30"]
        ) { engine in
            let body = try await engine.submit(["image": "\(origin.url)/product.png"], path: "/runsync").decode(JobStatusBody.self)
            #expect(body.status == .completed, "\(body.error ?? "")")
            #expect(answered.withLock { $0 } == 3, "two refusals, then the image")
        }
    }
}
