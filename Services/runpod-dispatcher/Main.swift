import ServiceCore
import ServiceSupport

/// runpod-dispatcher: submits dispatch requests to their backend (the local engine or RunPod) and
/// follows them to a terminal event, within the global concurrency limit.
@main
struct RunPodDispatcherMain {
    static func main() async {
        await ServiceRuntime.main("runpod-dispatcher") {
            let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "runpod-dispatcher", defaultPort: 8082)
            let registry = ServiceRuntime.bootstrap(configuration)
            let host = try buildDispatcher(configuration: configuration, dispatcher: try .fromEnvironment(), registry: registry)
            try await host.run()
        }
    }
}
