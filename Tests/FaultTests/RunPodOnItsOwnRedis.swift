import Foundation
import TestSupport

/// A system on the RunPod stand-in (`scenarios`), its services on a Redis of their own (named
/// `fault-tests-<name>`, the `place`-th set past the fault lanes), RunPod chosen in the settings
/// without webhooks: a test may kill or empty that Redis without touching anyone else's.
enum RunPodOnItsOwnRedis {
    static func run(
        _ name: String, place: Int, scenarios: [String: RunPodStandIn.Scenario],
        _ body: (CycloramaSystem, RunPodStandIn, PrivateServers) async throws -> Void
    ) async throws {
        try await PrivateServers.run(name: "fault-tests-\(name)", pastFaultLanes: place, only: [.redis]) { redis in
            var servers = TestServers.shared
            servers.redisURL = redis.servers.redisURL
            let standIn = try await RunPodStandIn(scenarios: scenarios)
            defer { Task { await standIn.stop() } }
            try await CycloramaSystem.run(without: ["local-engine"], overrides: standIn.overrides(), servers: servers) { system in
                // No webhooks: nothing but the dispatcher's records says where a job is.
                try await system.updateSettings([
                    "aiImageBackend": "runpod", "aiImageFidelityMode": "off", "runpodApiKey": "rpa_TESTKEY0123456789abcdefghijklmnop",
                ])
                try await body(system, standIn, redis)
            }
        }
    }
}
