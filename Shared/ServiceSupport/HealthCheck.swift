/// One dependency a service needs to do its job (the broker, Redis, PostgreSQL).
///
/// `/healthz` answers 200 only while every check passes.
public struct HealthCheck: Sendable {
    public var name: String
    public var isHealthy: @Sendable () async -> Bool

    public init(name: String, isHealthy: @escaping @Sendable () async -> Bool) {
        self.name = name
        self.isHealthy = isHealthy
    }
}

/// The outcome of running every check once.
public struct HealthReport: Sendable, Codable, Equatable {
    public var status: String
    public var service: String
    public var checks: [String: String]

    public var isHealthy: Bool { status == "ok" }

    public static func evaluate(service: String, checks: [HealthCheck]) async -> HealthReport {
        var results: [String: String] = [:]
        await withTaskGroup(of: (String, Bool).self) { group in
            for check in checks {
                group.addTask { (check.name, await check.isHealthy()) }
            }
            for await (name, healthy) in group {
                results[name] = healthy ? "up" : "down"
            }
        }
        let healthy = results.values.allSatisfy { $0 == "up" }
        return HealthReport(status: healthy ? "ok" : "unavailable", service: service, checks: results)
    }
}
