import Foundation
import ServiceCore
import ServiceSupport
import Testing

@Suite struct ServiceConfigurationTests {
    @Test func defaultsFitTheLocalSetUp() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(
            serviceName: "prompt-service", defaultPort: 8081, environment: EnvironmentVariables([:]))
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8081)
        #expect(configuration.amqpURL == "amqp://guest:guest@127.0.0.1:5672/")
        #expect(configuration.redisURL == "redis://127.0.0.1:6379/0")
        #expect(configuration.databaseURL == "postgres://postgres@127.0.0.1:5433/cyclorama")
        #expect(configuration.logLevel == .info)
        #expect(configuration.shutdownGrace == .seconds(8))
    }

    @Test func environmentOverridesDefaults() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(
            serviceName: "api-gateway", defaultPort: 8080,
            environment: EnvironmentVariables([
                "HTTP_HOST": "0.0.0.0", "HTTP_PORT": "9000", "LOG_LEVEL": "DEBUG",
                "AMQP_URL": "amqp://u:p@broker:5672/v", "SHUTDOWN_GRACE_SECONDS": "2.5", "REDIS_URL": "",
            ]))
        #expect(configuration.httpHost == "0.0.0.0")
        #expect(configuration.httpPort == 9000)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.amqpURL == "amqp://u:p@broker:5672/v")
        #expect(configuration.shutdownGrace == .milliseconds(2500))
        #expect(configuration.redisURL == ServiceConfiguration.defaultRedisURL, "an empty variable means unset")
    }

    /// `make up` hands each service its URLs (they hold passwords) in files; a URL in the
    /// environment wins; a named file that cannot be read is an error naming the variable, never
    /// the default.
    @Test func urlsComeFromFilesAndAMissingFileIsAnError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let amqp = folder.appendingPathComponent("amqp.url"), database = folder.appendingPathComponent("db.url")
        try "amqp://prompt-service:secret@127.0.0.1:5672/\n".write(to: amqp, atomically: true, encoding: .utf8)
        try "postgres://cyclorama:pw@127.0.0.1:5433/cyclorama".write(to: database, atomically: true, encoding: .utf8)
        let configuration = try ServiceConfiguration.fromEnvironment(
            serviceName: "prompt-service", defaultPort: 8081,
            environment: EnvironmentVariables([
                "AMQP_URL_FILE": amqp.path, "DATABASE_URL_FILE": database.path,
                "REDIS_URL": "redis://:pw@127.0.0.1:6379/0", "REDIS_URL_FILE": folder.appendingPathComponent("absent").path,
            ]))
        #expect(configuration.amqpURL == "amqp://prompt-service:secret@127.0.0.1:5672/")
        #expect(configuration.databaseURL == "postgres://cyclorama:pw@127.0.0.1:5433/cyclorama")
        #expect(configuration.redisURL == "redis://:pw@127.0.0.1:6379/0", "the variable wins over its file")
        #expect {
            _ = try ServiceConfiguration.fromEnvironment(
                serviceName: "x", defaultPort: 1, environment: EnvironmentVariables(["AMQP_URL_FILE": folder.appendingPathComponent("absent").path]))
        } throws: { error in
            let error = error as? ConfigurationError
            return error?.variable == "AMQP_URL_FILE" && error?.description.contains("absent") == true
        }
    }

    @Test(arguments: [
        ("HTTP_PORT", "eighty", "HTTP_PORT"), ("HTTP_PORT", "70000", "HTTP_PORT"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"), ("SHUTDOWN_GRACE_SECONDS", "-1", "SHUTDOWN_GRACE_SECONDS"),
    ])
    func malformedValuesAreRefusedNamingTheVariable(name: String, value: String, variable: String) {
        #expect {
            _ = try ServiceConfiguration.fromEnvironment(
                serviceName: "x", defaultPort: 1, environment: EnvironmentVariables([name: value]))
        } throws: { error in
            (error as? ConfigurationError)?.variable == variable && "\(error)".contains(value)
        }
    }

    @Test func healthReportIsOkOnlyWhenEveryCheckPasses() async {
        let up = HealthCheck(name: "broker") { true }
        let down = HealthCheck(name: "postgres") { false }
        let healthy = await HealthReport.evaluate(service: "s", checks: [up])
        #expect(healthy.isHealthy && healthy.checks == ["broker": "up"])
        let unhealthy = await HealthReport.evaluate(service: "s", checks: [up, down])
        #expect(!unhealthy.isHealthy)
        #expect(unhealthy.checks == ["broker": "up", "postgres": "down"])
    }
}
