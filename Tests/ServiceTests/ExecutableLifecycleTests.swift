import Foundation
import Testing
import TestSupport

/// Every executable starts, reports healthy once its connections are up, and exits 0 within 10 s of SIGTERM.
@Suite("Executables start and stop cleanly", .timeLimit(.minutes(2)))
struct ExecutableLifecycleTests {
    static let executables = ["api-gateway", "prompt-service", "runpod-dispatcher", "result-ingestor", "settings-service"]

    @Test(arguments: executables)
    func startsHealthyAndStopsOnSIGTERM(executable: String) async throws {
        let service = try ServiceProcess(executable, port: freePort())
        let health = await service.waitUntilHealthy(timeout: .seconds(45))
        #expect(health == 200, "\(executable) never became healthy; log:\n\(service.log())")

        let (metricsStatus, metrics) = try await HTTPProbe.get("http://127.0.0.1:\(service.port)/metrics")
        #expect(metricsStatus == 200)
        // Prometheus text with the broker connection's counters (every service has one).
        #expect(metrics.contains("# TYPE messaging_published_total counter"), "\(executable) /metrics:\n\(metrics.prefix(500))")

        let exit = await service.stop(signal: SIGTERM, timeout: .seconds(10))
        #expect(exit != nil, "\(executable) did not exit within 10 s of SIGTERM; log:\n\(service.log())")
        #expect(exit?.status == 0, "\(executable) exited with \(exit?.status ?? -1); log:\n\(service.log())")
    }

    /// A malformed setting stops an executable at once: one line naming the variable, exit status
    /// 78 (EX_CONFIG), no crash report (Swift's "Error raised at top level" trap and its backtrace).
    @Test(arguments: executables + ["local-engine"])
    func aMalformedSettingStopsItWithOneLineNamingTheVariable(executable: String) async throws {
        let service = try ServiceProcess(executable, port: freePort(), environment: ["LOG_LEVEL": "loud"])
        try await eventually("\(executable) exits", timeout: .seconds(30)) { service.exitStatus != nil }
        let log = service.log(ownOnly: true)
        #expect(service.exitStatus == 78, "\(executable) exited with \(service.exitStatus ?? -1); log:\n\(log)")
        #expect(log.contains("\(executable): configuration LOG_LEVEL: unknown level \"loud\"\n"), "\(log)")
        #expect(!log.contains("Fatal error") && !log.contains("crashed") && !log.contains("Backtrac"), "\(log)")
    }

    /// A malformed server address is a setting too (exit status 78, the variable named), and the
    /// line never repeats the address, whose password it would show.
    @Test(arguments: [
        ("AMQP_URL", "guest:s3cret-word@127.0.0.1:5672/v", "missing scheme"),
        ("AMQP_URL", "amqp://guest:s3cret-word@127.0.0.1:99999/v", "invalid port"),
        ("DATABASE_URL", "mysql://app:s3cret-word@127.0.0.1/cyclorama", "the scheme must be postgres://"),
        ("REDIS_URL", "redis://:s3cret-word@127.0.0.1:99999", "invalid Redis URL"),
    ])
    func aMalformedServerAddressStopsItWithoutShowingThePassword(variable: String, value: String, reason: String) async throws {
        let service = try ServiceProcess("api-gateway", port: freePort(), environment: [variable: value])
        try await eventually("api-gateway exits", timeout: .seconds(30)) { service.exitStatus != nil }
        let log = service.log(ownOnly: true)
        #expect(service.exitStatus == 78, "exited with \(service.exitStatus ?? -1); log:\n\(log)")
        #expect(log.hasPrefix("api-gateway: configuration \(variable): ") && log.contains(reason), "\(log)")
        #expect(!log.contains("s3cret-word"), "\(log)")
    }

    /// A start that fails for another reason (the engine's results folder cannot be made) is said in
    /// one line too, with exit status 1.
    @Test func aFailedStartIsSaidInOneLine() async throws {
        let service = try ServiceProcess(
            "local-engine", port: freePort(),
            environment: ["LOCAL_ENGINE_RESULTS_DIR": "/dev/null/results", "LOCAL_ENGINE_API_KEY": UUID().uuidString])
        try await eventually("local-engine exits", timeout: .seconds(30)) { service.exitStatus != nil }
        let log = service.log(ownOnly: true)
        #expect(service.exitStatus == 1, "exited with \(service.exitStatus ?? -1); log:\n\(log)")
        #expect(log.hasPrefix("local-engine: ") && log.contains("/dev/null/results"), "\(log)")
        #expect(!log.contains("Fatal error") && !log.contains("crashed") && !log.contains("Backtrac"), "\(log)")
    }

    @Test func sigintAlsoStopsGracefully() async throws {
        let service = try ServiceProcess("prompt-service", port: freePort())
        #expect(await service.waitUntilHealthy(timeout: .seconds(45)) == 200, "log:\n\(service.log())")
        let exit = await service.stop(signal: SIGINT, timeout: .seconds(10))
        #expect(exit?.status == 0, "log:\n\(service.log())")
    }

    @Test func healthzIsUnavailableWithoutTheDatabase() async throws {
        // Nothing listens on port 1: the broker connects, PostgreSQL never does, so /healthz must say 503.
        let service = try ServiceProcess(
            "settings-service", port: freePort(), environment: ["DATABASE_URL": "postgres://postgres@127.0.0.1:1/cyclorama"])
        // The port answers once the service is up (a loaded machine may take seconds to start it);
        // it never can reach PostgreSQL, so from its first answer /healthz must say 503.
        let url = "http://127.0.0.1:\(service.port)/healthz"
        try await eventually("it answers", timeout: .seconds(45), every: .milliseconds(200)) { await HTTPProbe.status(of: url) != nil }
        let (status, body) = try await HTTPProbe.get(url)
        #expect(status == 503, "expected 503, got \(status): \(body)")
        #expect(body.contains("\"postgres\":\"down\""), "\(body)")
        _ = await service.stop()
    }
}
