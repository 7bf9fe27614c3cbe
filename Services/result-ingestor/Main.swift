import Logging
import ServiceSupport
import Shared

/// result-ingestor: downloads finished results, stores them and replaces the media. This build
/// consumes its queue and dead-letters what it cannot handle yet.
@main
struct ResultIngestorMain {
    static func main() async throws {
        let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "result-ingestor", defaultPort: 8083)
        let registry = ServiceRuntime.bootstrap(configuration)
        var host = try ServiceHost(configuration: configuration, registry: registry)
        _ = try host.addDatabase()
        host.addWorker(
            MessageConsumer.deadLettering(
                GenerationCompleted.self, connection: host.broker, queue: Routing.Queue.generationCompleted, logger: host.logger,
                reason: "result-ingestor cannot apply results yet; replay this message once it can"))
        try await host.run()
    }
}
