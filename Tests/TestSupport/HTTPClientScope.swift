import AsyncHTTPClient

/// Runs `body` with `client` and shuts the client down however `body` ends. A client dropped
/// without `shutdown()` traps in a debug build ("Client not shut down before the deinit"), and
/// the trap takes the whole test process with it: one failing expectation must stay one failure.
public func using<T>(_ client: HTTPClient, _ body: (HTTPClient) async throws -> T) async throws -> T {
    let result: T
    do { result = try await body(client) } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
    return result
}
