import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// Process-wide set-up and the service group every executable runs in.
public enum ServiceRuntime {
    /// Runs an executable's `main`: its start-up (settings, connections) and its service group. An
    /// error it ends with is said in one line on standard error, `<name>: <what>`, and the process
    /// exits non-zero — 78 (`EX_CONFIG` of sysexits.h) for a malformed or missing setting, 1 for
    /// anything else — instead of Swift's "Error raised at top level" trap, which reports a bad
    /// setting as a crash with a backtrace (and takes seconds to write it).
    public static func main(_ name: String, _ body: @Sendable () async throws -> Void) async {
        do {
            try await body()
        } catch let error as ConfigurationError {
            end(name, "\(error)", status: configurationExitStatus)
        } catch {
            end(name, String(describing: error), status: 1)
        }
    }

    /// The exit status ``main(_:_:)`` gives a process whose settings were refused.
    public static let configurationExitStatus: Int32 = 78

    private static func end(_ name: String, _ what: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("\(name): \(what)\n".utf8))
        exit(status)
    }

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
        let group = self.group(
            services, configuration: configuration, logger: logger, signals: [.sigterm, .sigint], cancellationLimit: .seconds(1))
        logger.info("starting", metadata: ["service": "\(configuration.serviceName)", "http": "\(configuration.httpHost):\(configuration.httpPort)"])
        try await group.run()
        logger.info("stopped", metadata: ["service": "\(configuration.serviceName)"])
    }

    /// The service group ``run(_:configuration:logger:)`` runs: `services` stopped in reverse order
    /// on one of `signals` (none: when the group it is part of stops), each given
    /// `configuration.shutdownGrace` to finish before it is cancelled. With a `cancellationLimit`, a
    /// service still running that long after its cancellation ends the process (ServiceLifecycle's
    /// `fatalError`): right for a service's own process, which must exit; never for a service run
    /// inside another process (a test's), which must go on.
    public static func group(
        _ services: [any Service], configuration: ServiceConfiguration, logger: Logger, signals: [UnixSignal] = [],
        cancellationLimit: Duration? = nil
    ) -> ServiceGroup {
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        groupConfiguration.maximumCancellationDuration = cancellationLimit
        return ServiceGroup(configuration: groupConfiguration)
    }
}
