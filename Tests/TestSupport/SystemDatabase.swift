import Database
import Foundation
import Logging
import PostgresNIO
import Shared

/// Direct access to a test system's database, for setting up what the API cannot (yet).
public enum SystemDatabase {
    public static func withClient<T: Sendable>(_ url: String, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        var logger = Logger(label: "test.system-database")
        logger.logLevel = .error
        let client = PostgresClient(configuration: try DatabaseConfiguration(url: url).postgres, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// How many jobs the ledger of the database at `url` holds.
    public static func jobCount(_ url: String) async throws -> Int {
        try await withClient(url) { client in
            var count = 0
            for try await n in try await client.query("SELECT count(*)::int FROM generation_jobs").decode(Int.self) { count = n }
            return count
        }
    }

    public static func updateSettings(_ url: String, _ values: [String: String]) async throws {
        try await withClient(url) { try await SettingsStore(client: $0).update(values) }
    }
}

extension CycloramaSystem {
    /// Writes settings straight into the system's database (for values the API would check against
    /// the real RunPod), broadcasts `settings.changed` as the settings-service does after a change,
    /// and returns once every service with a settings client has taken that broadcast (its
    /// `settings_changes_taken_total` in `/metrics` went up): from then on each one reads the new
    /// values. A service that is down when this starts, or stops meanwhile, is not waited for; one
    /// started again meanwhile (its count begins anew) reads the settings afresh anyway.
    public func updateSettings(_ values: [String: String]) async throws {
        try await SystemDatabase.updateSettings(database.url, values)
        let before = await settingsChangesTaken()
        // The gateway always has a settings client: no count at all means the metric is not read.
        guard !before.isEmpty else {
            throw FixtureError(message: "no service shows settings_changes_taken_total in /metrics: \(processNames)")
        }
        let probe = try await BrokerProbe(url: amqpURL)
        do {
            let change = SettingsChanged(changedKeys: values.keys.sorted(), settings: [:])
            try await probe.publish(
                MessageCoding.encode(change), exchange: Routing.Exchange.events, routingKey: Routing.Key.settingsChanged,
                type: SettingsChanged.messageType.rawValue)
        } catch {
            await probe.close()
            throw error
        }
        await probe.close()
        try await eventually("every service takes the settings change (before: \(before))", timeout: .seconds(60)) {
            let now = await settingsChangesTaken()
            return before.allSatisfy { service, count in
                // Counted, or started again since (a new process reads the settings afresh), or gone.
                guard let taken = now[service] else { return process(service)?.exitStatus != nil }
                return taken != count
            }
        }
    }

    /// Each running service's count of `settings.changed` broadcasts taken, for those that have a
    /// settings client (the others show no such metric).
    func settingsChangesTaken() async -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in processNames {
            guard let port = process(name)?.port,
                  let metrics = try? await HTTPProbe.get("http://127.0.0.1:\(port)/metrics"), metrics.status == 200,
                  let line = metrics.body.split(separator: "\n").first(where: { $0.hasPrefix("settings_changes_taken_total ") }),
                  let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            counts[name] = Int(value)
        }
        return counts
    }
}
