import Logging
import ServiceCore
import ServiceSupport

/// prompt-service: turns generation requests into dispatch requests carrying the prompt and the
/// backend's input.
@main
struct PromptServiceMain {
    static func main() async {
        await ServiceRuntime.main("prompt-service") {
            let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "prompt-service", defaultPort: 8081)
            let prompts = try PromptServiceConfiguration.fromEnvironment()
            let registry = ServiceRuntime.bootstrap(configuration)
            let host = try buildPromptService(configuration: configuration, prompts: prompts, registry: registry)
            try await host.run()
        }
    }
}
