import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// Process-wide set-up and the service group every executable runs in.
public enum ServiceRuntime {
    /// Bootstraps swift-log (stderr, the configured level) and swift-metrics (Prometheus) for this process.
    ///
    /// Call it once, first thing in `main`; tests build services without it.
    public static func bootstrap(_ configuration: ServiceConfiguration) -> PrometheusCollectorRegistry {
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// Runs `services` in dependency order (clients first, consumers next, HTTP last) until SIGTERM or
    /// SIGINT. Shutdown runs in reverse: the HTTP server stops, consumers stop taking work and finish what
    /// they hold within `configuration.shutdownGrace`, then the connections close. Anything still running
    /// after the grace period is cancelled; unacknowledged messages return to their queue.
    public static func run(
        _ services: [any Service],
        configuration: ServiceConfiguration,
        logger: Logger
    ) async throws {
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        groupConfiguration.maximumCancellationDuration = .seconds(1)
        let group = ServiceGroup(configuration: groupConfiguration)
        logger.info("starting", metadata: ["service": "\(configuration.serviceName)", "http": "\(configuration.httpHost):\(configuration.httpPort)"])
        try await group.run()
        logger.info("stopped", metadata: ["service": "\(configuration.serviceName)"])
    }
}
