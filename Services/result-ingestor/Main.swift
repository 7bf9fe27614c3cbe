import ServiceCore
import ServiceSupport

/// result-ingestor: downloads finished results, checks and stores them, and makes them the media's
/// current version.
@main
struct ResultIngestorMain {
    static func main() async {
        await ServiceRuntime.main("result-ingestor") {
            let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "result-ingestor", defaultPort: 8083)
            let registry = ServiceRuntime.bootstrap(configuration)
            let host = try buildIngestor(configuration: configuration, ingestor: try .fromEnvironment(), registry: registry)
            try await host.run()
        }
    }
}
