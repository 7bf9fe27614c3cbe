import ServiceCore
import Synchronization
import Testing

@Suite("withAsyncCleanup")
struct AsyncCleanupTests {
    struct Failed: Error {}

    @Test func theCleanupRunsOnceAfterTheBodyReturnsAndItsValueComesBack() async throws {
        let log = Mutex<[String]>([])
        let value = try await withAsyncCleanup({
            log.withLock { $0.append("body") }
            return 7
        }, cleanup: { log.withLock { $0.append("cleanup") } })
        #expect(value == 7)
        #expect(log.withLock { $0 } == ["body", "cleanup"])
    }

    @Test func theCleanupRunsOnceAfterTheBodyThrowsAndTheErrorComesBack() async throws {
        let log = Mutex<[String]>([])
        await #expect(throws: Failed.self) {
            try await withAsyncCleanup({
                log.withLock { $0.append("body") }
                throw Failed()
            }, cleanup: { log.withLock { $0.append("cleanup") } })
        }
        #expect(log.withLock { $0 } == ["body", "cleanup"])
    }
}
