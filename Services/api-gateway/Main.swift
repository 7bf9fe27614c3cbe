import Logging
import ServiceCore
import ServiceSupport

/// api-gateway: the HTTP API, auth, uploads and the admin UI. This build serves /healthz and
/// /metrics, seeds the admin token, and consumes the job events it will record.
@main
struct ApiGatewayMain {
    static func main() async {
        await ServiceRuntime.main("api-gateway") {
            let configuration = try ServiceConfiguration.fromEnvironment(serviceName: "api-gateway", defaultPort: 8080)
            let gateway = try GatewayConfiguration.fromEnvironment()
            let registry = ServiceRuntime.bootstrap(configuration)
            let host = try buildGateway(configuration: configuration, gateway: gateway, registry: registry)
            try await host.run()
        }
    }
}
