import ServiceCore

/// local-engine: studio shots on the CPU behind RunPod's serverless protocol (docs/local-engine.md).
@main
struct LocalEngineMain {
    static func main() async {
        await ServiceRuntime.main("local-engine") {
            let configuration = try EngineConfiguration.fromEnvironment()
            let registry = ServiceRuntime.bootstrap(configuration.service)
            try await LocalEngine(configuration: configuration, registry: registry).run()
        }
    }
}
