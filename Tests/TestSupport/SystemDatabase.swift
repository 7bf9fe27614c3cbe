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
    /// the real RunPod) and then broadcasts `settings.changed`, as the settings-service does after a
    /// change: a service that read the settings before (a periodic check at start) would otherwise
    /// go on with the old values for its cache's lifetime. Each service sees the change once it has
    /// taken that broadcast, not when this returns: a test that at once asks the gateway for
    /// something a setting it has already read decides should change it through the API instead
    /// (`PUT /api/ai-image/settings`: the gateway keeps the answer).
    public func updateSettings(_ values: [String: String]) async throws {
        try await SystemDatabase.updateSettings(database.url, values)
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
    }
}
