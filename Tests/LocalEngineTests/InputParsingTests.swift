import RunPod
import ServiceCore
import ServiceCore
import Shared
import Foundation
import Testing

@testable import LocalEngine

/// The pure parts: `input` validation, allowed hosts, image headers, the key comparison.
@Suite("local-engine input parsing")
struct InputParsingTests {
    @Test func defaultsFollowTheIssue() throws {
        let input = try StudioShotInput(parsing: .object(["image": .string("data:image/png;base64,AA==")]))
        #expect(input.background == .color(red: 255, green: 255, blue: 255))
        #expect(input.shadow == .soft && input.removeWatermark && input.upscale == 1)
        #expect(input.outputFormat == .png && !input.returnBase64)
    }

    @Test func everyFieldIsRead() throws {
        let input = try StudioShotInput(parsing: .object([
            "image": .string("http://127.0.0.1:8080/a.png"), "background": .string("#0a0B0c"), "shadow": .string("none"),
            "removeWatermark": .bool(false), "upscale": .int(4), "outputFormat": .string("jpg"), "returnBase64": .bool(true),
        ]))
        #expect(input.background == .color(red: 10, green: 11, blue: 12))
        #expect(input.shadow == StudioShotInput.Shadow.none && !input.removeWatermark && input.upscale == 4)
        #expect(input.outputFormat == .jpeg && input.returnBase64)
        #expect(try StudioShotInput(parsing: .object(["image": .string("x"), "background": .string("Transparent")])).background == .transparent)
    }

    @Test func errorsNameTheFieldTheChoicesAndTheValue() {
        func error(_ fields: [String: JSONValue]) -> String? {
            do { _ = try StudioShotInput(parsing: .object(fields)); return nil } catch { return error.message }
        }
        let image = JSONValue.string("data:image/png;base64,AA==")
        #expect(error(["image": image, "shadow": .string("spooky")]) == "input.shadow: must be one of none, minimal, soft, dramatic; got \"spooky\"")
        #expect(error(["image": image, "upscale": .double(2.5)]) == "input.upscale: must be one of 1, 2, 4; got 2.5")
        #expect(error(["image": image, "background": .string("#FFF")])?.hasPrefix("input.background:") == true)
        #expect(error(["image": image, "background": .string("#+12345")])?.hasPrefix("input.background:") == true)
        #expect(error(["image": .string("")])?.hasPrefix("input.image:") == true)
        #expect(error([:]) == "input.image: required (an http(s) URL or a data:image/...;base64 URI)")
        #expect(error(["image": image, "framing": ["fill": 0.3]]) == "input.framing.fill: must be a number from 0.5 to 0.95; got 0.3")
        #expect(error(["image": image, "framing": "amazon"]) == "input.framing: must be an object; got a string")
        #expect(error(["image": image, "framing": ["crop": true]])?.hasPrefix("input.framing.crop: is not a framing field") == true)
        do { _ = try StudioShotInput(parsing: .string("x")); Issue.record("accepted a string") } catch {
            #expect(error.message == "input: must be an object; got a string")
        }
    }

    @Test func allowedHostsMatchHostAndPort() {
        let hosts = HostAllowList(["127.0.0.1:8080", " LocalHost ", "", "[::1]:9000"])
        #expect(hosts.match(host: "127.0.0.1", port: 8080) == .exact)
        #expect(hosts.match(host: "127.0.0.1", port: 8081) == nil)
        #expect(hosts.match(host: "localhost", port: 1234) == .publicOnly, "a bare host: any port, at a public address only")
        #expect(hosts.match(host: "[::1]", port: 9000) == .exact, "URL hosts keep IPv6 brackets")
        #expect(hosts.match(host: "example.com", port: 80) == nil)
        #expect(HostAllowList(["*"]).match(host: "example.com", port: 443) == .publicOnly)
        #expect(HostAllowList(list: "").match(host: "127.0.0.1", port: 8080) == nil)
    }

    @Test func imageHeadersGiveFormatAndSize() throws {
        #expect(try ImageHeader(sniffing: Samples.tinyPNG) == ImageHeader(format: "png", width: 2, height: 2))
        let photo = try Samples.productJPEG
        #expect(try ImageHeader(sniffing: photo).format == (photo.starts(with: [0xFF, 0xD8]) ? "jpeg" : "png"))
        #expect(throws: JobFailure.self) { try ImageHeader(sniffing: []) }
        #expect(throws: JobFailure.self) { try ImageHeader(sniffing: Array("GIF89a".utf8)) }
        #expect(throws: JobFailure.self) { try ImageHeader(sniffing: [0xFF, 0xD8, 0xFF, 0xE0, 0x00]) }
    }

    @Test func theKeyComparisonNeedsAnExactMatch() {
        #expect(Digest.constantTimeEquals("secret".utf8, "secret".utf8))
        #expect(!Digest.constantTimeEquals("secret".utf8, "secreT".utf8))
        #expect(!Digest.constantTimeEquals("secret".utf8, "secret2".utf8))
        #expect(!Digest.constantTimeEquals([UInt8](), "x".utf8))
    }
}
