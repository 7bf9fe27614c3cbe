import Logging
import ServiceCore
import ServiceSupport

/// settings-service: owns the settings table and answers the settings request over the broker.
@main
struct SettingsServiceMain {
    static func main() async {
        await ServiceRuntime.main("settings-service") {
            let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "settings-service", defaultPort: 8084)
            let registry = ServiceRuntime.bootstrap(configuration)
            let host = try buildSettingsService(configuration: configuration, registry: registry)
            try await host.run()
        }
    }
}
