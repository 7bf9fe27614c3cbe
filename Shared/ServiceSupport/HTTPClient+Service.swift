import AsyncHTTPClient
import NIOCore
import ServiceCore
import Timing

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

extension HTTPClient {
    /// GET `url` with `headers` within `timeout`: the answer's status and body (at most `limit`
    /// bytes; a longer body throws). Throws when no answer came.
    public func get(
        _ url: String, headers: [(String, String)], timeout: Duration = .seconds(10), limit: Int = 64 * 1024
    ) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await execute(request, timeout: TimeAmount(timeout))
        let body = try await response.body.collect(upTo: limit)
        return (Int(response.status.code), Array(buffer: body))
    }
}
