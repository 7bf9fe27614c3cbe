import Hummingbird
import NIOCore

/// The request context of Cyclorama's HTTP services: Hummingbird's basic context plus the client's
/// address, for per-client limits (``RateLimiter``). The address is the TCP peer's: behind a proxy
/// it is the proxy's (forwarded headers are not trusted, since anyone can send them).
public struct ServiceRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address as text (`127.0.0.1`, `::1`), or `unknown`.
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// Who a per-client limit counts: the IPv4 address, or an IPv6 address's /64 network (one host
    /// is usually given a whole /64, so counting single IPv6 addresses would be no limit at all);
    /// an IPv4-mapped IPv6 address counts as its IPv4 address.
    public var clientKey: String { Self.clientKey(remoteAddress) }

    static func clientKey(_ address: SocketAddress?) -> String {
        guard case .v6(let v6)? = address else { return address?.ipAddress ?? "unknown" }
        let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":") + "::/64"
    }
}
