import Foundation
import FuzzSuite
import Testing
import TestSupport

extension SystemSuites {
    /// A short fuzz run in every `make test` (`make fuzz` is the long one): mutated and random
    /// bodies for every route that takes one, mutated messages for every queue. Never a 5xx, never
    /// an error without its shape, every unreadable message dead-lettered with a reason, every
    /// service still up. The seed changes with the day, so CI explores; a failure prints it.
    @Suite("Fuzzing", .tags(.longestSystemTest), .timeLimit(.minutes(15)))
    struct FuzzTests {
        @Test func hostileBodiesAndMessagesAreRefusedCleanly() async throws {
            let seed = UInt64(Date().timeIntervalSince1970) / 86_400
            try await FuzzSystem.run { system, media, image in
                let http = try await HTTPFuzz(system: system, mediaIds: media, image: image).run(inputs: 600, seed: seed)
                print(http)
                #expect(http.failureCount == 0, "\(http)\n\(system.logs())")
                let queues = try await QueueFuzz(system: system).run(inputs: 200, seed: seed &+ 1)
                print(queues)
                #expect(queues.failureCount == 0, "\(queues)\n\(system.logs())")
            }
        }
    }
}
