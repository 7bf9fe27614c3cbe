import Foundation
import TestSupport

/// The system a fuzz run attacks: every service, the engine simulating its work (valid jobs finish
/// in milliseconds), rate limits out of the way (they are tested on their own), two media.
public enum FuzzSystem {
    public static func run<T: Sendable>(_ body: @Sendable (CycloramaSystem, [String], [UInt8]) async throws -> T) async throws -> T {
        try await CycloramaSystem.run(overrides: [
            "local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "20"],
            "api-gateway": ["API_AUTH_FAILURE_BURST": "100000", "WEBHOOK_RATE_PER_SECOND": "100000"],
        ]) { system in
            let image = try Samples.bytes("dev03", "input.jpg")
            let media = [try await system.upload(image), try await system.upload(try Samples.bytes("dev08", "input.jpg"))]
            return try await body(system, media, image)
        }
    }
}
