import AsyncHTTPClient
import Foundation
import OutboundHTTP
import ServiceCore
import Testing
import TestSupport

/// `HTTPClient.connecting(as:)` on loopback only: a pinned name is connected to at the address the
/// clearance names, without asking any resolver (the name here, under `.invalid`, resolves nowhere
/// and is never looked up), and the request still carries the name.
@Suite("Pinned outbound connections")
struct PinnedConnectionTests {
    @Test func aPinnedNameIsConnectedToAtTheCheckedAddressAndKeepsItsName() async throws {
        let receiver = try await TestHTTPServer { _, _ in (.ok, [:], Array("pinned".utf8)) }
        defer { Task { await receiver.stop() } }
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))
        defer { Task { try? await http.shutdown() } }

        let url = "http://shop.invalid:\(receiver.port)/hook"
        let (status, body) = try await http.connecting(as: .pinned(host: "shop.invalid", address: "127.0.0.1")) { client in
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1024)))
        }
        #expect(status == 200 && body == "pinned")
        let got = try #require(await receiver.received(path: "/hook").first)
        #expect(got.authority == "shop.invalid:\(receiver.port)", "the request names the host; only the connect is pinned")

        // As named, the shared client is the one used (here: a literal on loopback).
        let asNamed = try await http.connecting(as: .asNamed) { client in
            try await client.execute(HTTPClientRequest(url: "\(receiver.url)/named"), timeout: .seconds(10)).status.code
        }
        #expect(asNamed == 200)

        // A refused clearance connects nowhere.
        let refused = OutboundClearance.refused(OutboundRefusal(reason: "10.0.0.8 is a private address", isTransient: false))
        await #expect(throws: OutboundRefusalError.self) {
            try await http.connecting(as: refused) { client in
                try await client.execute(HTTPClientRequest(url: "\(receiver.url)/refused"), timeout: .seconds(10)).status.code
            }
        }
        #expect(await receiver.received(path: "/refused").isEmpty)
    }
}
