/// Runs `body`, then `cleanup` however `body` ends (returning or throwing), and gives back what
/// `body` returned or rethrows what it threw: a `defer` whose work is asynchronous (stopping
/// processes, shutting a client down, settling a lease).
public func withAsyncCleanup<T>(
    _ body: () async throws -> T, cleanup: () async -> Void
) async rethrows -> T {
    let result: T
    do {
        result = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}
