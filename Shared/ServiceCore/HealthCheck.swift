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

/// Something worth knowing about a running service that does not make it unhealthy (e.g. the
/// dispatcher's verdict on the RunPod configuration): `/healthz` shows it under `detail`.
public struct HealthDetail: Sendable {
    public var name: String
    /// The current text; nil leaves the entry out.
    public var text: @Sendable () -> String?

    public init(name: String, text: @escaping @Sendable () -> String?) {
        self.name = name
        self.text = text
    }
}

/// The outcome of running every check once.
public struct HealthReport: Sendable, Codable, Equatable {
    public var status: String
    public var service: String
    public var checks: [String: String]
    /// Notes that do not decide the status (``HealthDetail``); absent when there are none.
    public var detail: [String: String]?

    public var isHealthy: Bool { status == "ok" }

    public static func evaluate(service: String, checks: [HealthCheck], details: [HealthDetail] = []) async -> HealthReport {
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
        var detail: [String: String] = [:]
        for entry in details { detail[entry.name] = entry.text() }
        return HealthReport(
            status: healthy ? "ok" : "unavailable", service: service, checks: results, detail: detail.isEmpty ? nil : detail)
    }
}
