import Foundation
import Hummingbird
import Prometheus

/// `/healthz` and `/metrics`, served by every executable.
public struct OperationsRoutes<Context: RequestContext>: Sendable {
    public var serviceName: String
    public var checks: [HealthCheck]
    public var details: [HealthDetail]
    public var registry: PrometheusCollectorRegistry

    public init(serviceName: String, checks: [HealthCheck], details: [HealthDetail] = [], registry: PrometheusCollectorRegistry) {
        self.serviceName = serviceName
        self.checks = checks
        self.details = details
        self.registry = registry
    }

    public func register(on router: Router<Context>) {
        router.get("/healthz") { _, _ -> Response in
            let report = await HealthReport.evaluate(service: serviceName, checks: checks, details: details)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = try encoder.encode(report)
            return Response(
                status: report.isHealthy ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
    }
}
