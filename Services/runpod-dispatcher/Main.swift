import Logging
import ServiceSupport
import Shared

/// runpod-dispatcher: submits dispatch requests to the backend (RunPod or the local engine) and
/// follows them. This build consumes its queue and dead-letters what it cannot handle yet.
@main
struct RunPodDispatcherMain {
    static func main() async throws {
        let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "runpod-dispatcher", defaultPort: 8082)
        let registry = ServiceRuntime.bootstrap(configuration)
        var host = try ServiceHost(configuration: configuration, registry: registry)
        _ = try host.addRedis()
        host.addWorker(
            MessageConsumer.deadLettering(
                DispatchGeneration.self, connection: host.broker, queue: Routing.Queue.dispatchRequests, logger: host.logger,
                reason: "runpod-dispatcher cannot submit to a backend yet; replay this message once it can"))
        try await host.run()
    }
}
