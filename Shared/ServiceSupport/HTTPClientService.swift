import AsyncHTTPClient
import NIOCore

extension ServiceHost {
    /// An HTTP client for calling other servers (backends, result hosts), shut down after everything
    /// else stopped. It never follows redirects (one could leave the allowed hosts) and connects within 5 s.
    public mutating func addHTTPClient(readTimeout: TimeAmount? = nil) -> HTTPClient {
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: readTimeout)))
        addShutdownHook { try? await client.shutdown() }
        return client
    }
}
