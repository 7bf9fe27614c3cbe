import Foundation
import PostgresNIO
import Testing
import TestSupport

extension SystemSuites {
    /// The whole system on a three-node RabbitMQ cluster (scripts/cluster.sh; `make test-cluster`
    /// starts it and runs only these): the quorum queues have a replica on every node and their
    /// leaders spread over the nodes, every service is given all three addresses, and a node stopped
    /// in the middle of a batch loses and doubles nothing — every job completes once, each media gets
    /// one new version, the engine runs each job once. `make test` leaves these out (they stop broker
    /// nodes).
    // One at a time: both stop nodes of the one cluster.
    @Suite("Clustered broker", .serialized, .timeLimit(.minutes(20)))
    struct ClusterTests {
        static func cluster() throws -> TestServers {
            try #require(TestServers.cluster, "no cluster: `make test-cluster` starts one (scripts/cluster.sh start)")
        }

        static func node(_ action: String, _ number: Int) async -> Int32 {
            await ServerScript.run([action, String(number)], environment: [:], script: "cluster.sh")
        }

        /// Uploads `count` photos and starts one batch of them; returns the batch id and the media ids.
        static func startBatch(_ system: CycloramaSystem, count: Int) async throws -> (String, [String]) {
            let put = try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageMaxConcurrent": 10}"#)
            #expect(put.status == 200, "\(put.text)")
            let photo = try Samples.bytes("dev06", "input.jpg")
            var ids: [String] = []
            for _ in 0..<count { ids.append(try await system.upload(photo)) }
            let list = ids.map { "\"\($0)\"" }.joined(separator: ",")
            let created = try await system.call(.POST, "/api/ai-image/batch", json: #"{"mediaIds": [\#(list)]}"#)
            #expect(created.status == 202, "\(created.text)")
            return (try #require(try created.json()["batchId"] as? String), ids)
        }

        /// The node (1-3) and port a service's broker connection is on now: its log names it.
        static func connectedNode(of service: String, in system: CycloramaSystem) throws -> (Int, Int) {
            let log = try #require(system.process(service)?.log())
            let connected = log.split(separator: "\n").filter { $0.contains("AMQP connected") }
            let port = try #require(connected.last.flatMap { $0.firstMatch(of: /host=127\.0\.0\.1:(\d+)/) }.map { Int($0.1)! })
            try #require((5701...5703).contains(port), "\(service) is connected to \(port)")
            return (port - 5700, port)
        }

        /// The service goes on on another node. Not checked once the batch is done: the rest of the
        /// system may finish it before this service's failover delay (3 s after the loss, for the
        /// queues' leader elections) has passed.
        static func waitUntilConnected(_ service: String, elsewhere port: Int, in system: CycloramaSystem) async throws {
            try await eventually("\(service) goes on on another node than \(port)", timeout: .seconds(60)) {
                try connectedNode(of: service, in: system).1 != port
            }
        }

        static func counts(_ system: CycloramaSystem, _ batchId: String) async throws -> (status: String, completed: Int, all: [String: Int]) {
            let answer = try await system.call(.GET, "/api/ai-image/batch/\(batchId)").json()
            let counts = answer["counts"] as? [String: Int] ?? [:]
            return (answer["status"] as? String ?? "", counts["COMPLETED"] ?? 0, counts)
        }

        /// Every job of the batch completed once: one new version per media, one engine run per job.
        static func checkEveryJobRanOnce(_ system: CycloramaSystem, _ batchId: String, media: [String]) async throws {
            try await eventually("the batch finishes", timeout: .seconds(600), every: .seconds(1)) {
                try await counts(system, batchId).status == "COMPLETED"
            }
            let final = try await counts(system, batchId)
            #expect(final.completed == media.count, "every job completed: \(final.all)\n\(system.logs())")
            let versions = try await SystemDatabase.withClient(system.database.url) { client in
                var perMedia: [Int: Int] = [:]
                for try await (count, media) in try await client.query("""
                    SELECT n::int, count(*)::int FROM (SELECT count(*) AS n FROM media_versions GROUP BY media_id) per GROUP BY n
                    """).decode((Int, Int).self) {
                    perMedia[count] = media
                }
                return perMedia
            }
            #expect(versions == [2: media.count], "each media: its upload and one studio shot (versions per media → media: \(versions))")
            let metrics = try await HTTPProbe.send(.GET, system.engineURL + "/metrics")
            let runs = metrics.text.split(separator: "\n")
                .filter { $0.hasPrefix("local_engine_jobs_total") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                .reduce(0, +)
            #expect(Int(runs) == media.count, "the engine ran each job once: \(runs) runs for \(media.count) jobs")
        }

        @Test func aNodeStoppedInTheMiddleOfA200JobBatchLosesAndDoublesNothing() async throws {
            try await CycloramaSystem.run(
                overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]], servers: try Self.cluster()
            ) { system in
                // The queues' leaders are spread over the nodes (queue_leader_locator = balanced).
                #expect(await ServerScript.run(["leaders", system.vhost], environment: [:], script: "cluster.sh") == 0,
                        "quorum-queue leaders on at least two nodes (\(ServerScript.logPath))")
                let (batchId, media) = try await Self.startBatch(system, count: 200)
                try await eventually("a fifth of the batch is done", timeout: .seconds(300)) {
                    try await Self.counts(system, batchId).completed >= 40
                }
                // The node the result-ingestor applies results through (clients spread over the nodes).
                let (number, port) = try Self.connectedNode(of: "result-ingestor", in: system)
                #expect(await Self.node("stop-node", number) == 0, "node \(number) stops (\(ServerScript.logPath))")
                let atStop = try await Self.counts(system, batchId).completed
                #expect(atStop < 200, "the node stopped while the batch ran (\(atStop) done)")
                try await Self.checkEveryJobRanOnce(system, batchId, media: media)
                try await Self.waitUntilConnected("result-ingestor", elsewhere: port, in: system)
                #expect(await Self.node("start-node", number) == 0, "node \(number) starts again and rejoins")
            }
        }

        @Test func theNodeTheDispatchersAreConnectedToStops() async throws {
            try await CycloramaSystem.run(
                overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "100"]], servers: try Self.cluster()
            ) { system in
                try system.launchInstance(of: "runpod-dispatcher", as: "runpod-dispatcher-2")
                try await system.waitUntilHealthy("runpod-dispatcher-2")
                let (batchId, media) = try await Self.startBatch(system, count: 100)
                try await eventually("the batch is under way", timeout: .seconds(300)) {
                    try await Self.counts(system, batchId).completed >= 10
                }
                let (number, port) = try Self.connectedNode(of: "runpod-dispatcher", in: system)
                #expect(await Self.node("stop-node", number) == 0, "node \(number) stops")
                try await Self.checkEveryJobRanOnce(system, batchId, media: media)
                try await Self.waitUntilConnected("runpod-dispatcher", elsewhere: port, in: system)
                #expect(await Self.node("start-node", number) == 0, "node \(number) starts again and rejoins")
            }
        }
    }
}
