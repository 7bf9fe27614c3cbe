import AsyncHTTPClient
import NIOCore
import ServiceCore

extension HTTPClient {
    /// Runs `body` with a client that connects where `clearance` says: this client when the host
    /// may be connected to as named, or, when it is pinned, a client of its own whose one route to
    /// the host is the address that was checked (AsyncHTTPClient's `dnsOverride`: the request keeps
    /// its URL, `Host` header and TLS server name, and the certificate is checked for the name),
    /// shut down when `body` returns. Resolving the name again to connect could lead to an address
    /// that was never checked (DNS rebinding); this never resolves it again.
    ///
    /// The pinned client never follows redirects and connects within 5 s; `readTimeout` as the
    /// caller's own client has it. A refused clearance throws ``OutboundRefusalError`` without
    /// connecting: callers handle the refusal before.
    public func connecting<T>(
        as clearance: OutboundClearance, readTimeout: TimeAmount? = nil, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        switch clearance {
        case .refused(let refusal):
            throw OutboundRefusalError(refusal: refusal)
        case .asNamed:
            return try await body(self)
        case .pinned(let host, let address):
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: readTimeout))
            // Keyed by the name as the URL spells it and in lower case (URL hosts keep their case).
            configuration.dnsOverride = Dictionary([(host, address), (host.lowercased(), address)], uniquingKeysWith: { first, _ in first })
            let pinned = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
            let result: Result<T, any Error>
            do { result = .success(try await body(pinned)) } catch { result = .failure(error) }
            try? await pinned.shutdown()
            return try result.get()
        }
    }
}

/// A refused ``OutboundClearance`` given to ``HTTPClient/connecting(as:readTimeout:_:)``.
public struct OutboundRefusalError: Error, CustomStringConvertible {
    public var refusal: OutboundRefusal
    public var description: String { "refused before connecting: \(refusal.reason)" }
}
