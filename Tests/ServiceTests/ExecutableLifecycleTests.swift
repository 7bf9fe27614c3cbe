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
