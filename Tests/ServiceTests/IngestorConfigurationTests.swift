import Foundation
@testable import ResultIngestor
import ServiceSupport
import Shared
import Testing

/// Where results may be downloaded from: only what is checked here is ever connected to.
@Suite("Result hosts")
struct IngestorConfigurationTests {
    private func url(_ text: String) throws -> URL { try #require(URL(string: text)) }

    @Test func runPodsResultHostIsAllowedForRunPodJobsOverHTTPSOnly() throws {
        let configuration = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([:]))
        let result = try url("https://image.runpod.ai/abc/result.png")
        #expect(configuration.allows(result, from: .runpod))
        #expect(!configuration.allows(result, from: .local), "a local job's result never comes from RunPod")
        #expect(!configuration.allows(try url("http://image.runpod.ai/abc/result.png"), from: .runpod), "https only")
        #expect(!configuration.allows(try url("https://image.runpod.ai.example.com/r.png"), from: .runpod))
        #expect(!configuration.allows(try url("https://203.0.113.9/r.png"), from: .runpod))
        #expect(!configuration.allows(try url("file:///etc/passwd"), from: .runpod))
        // The local engine's default address, for either backend.
        #expect(configuration.allows(try url("http://127.0.0.1:8090/v2/x/results/a.png"), from: .local))
        #expect(configuration.allows(try url("http://127.0.0.1:8090/v2/x/results/a.png"), from: .runpod))
        #expect(!configuration.allows(try url("http://127.0.0.1:8091/v2/x/results/a.png"), from: .local))
    }

    @Test func theListsAreConfigurableAndCanBeEmptied() throws {
        let none = try IngestorConfiguration.fromEnvironment(EnvironmentVariables(["INGEST_RUNPOD_RESULT_HOSTS": "none"]))
        #expect(!none.allows(try url("https://image.runpod.ai/r.png"), from: .runpod))
        #expect(!none.allowedHostsText(for: .runpod).contains("INGEST_RUNPOD_RESULT_HOSTS"))
        let other = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([
            "INGEST_RUNPOD_RESULT_HOSTS": " Results.Example.com:8443 ", "INGEST_ALLOWED_HOSTS": "127.0.0.1:9000",
        ]))
        #expect(other.allows(try url("https://results.example.com:8443/r.png"), from: .runpod))
        #expect(!other.allows(try url("https://results.example.com/r.png"), from: .runpod), "the port was named")
        #expect(!other.allows(try url("http://127.0.0.1:8090/r.png"), from: .local), "the default is replaced")
        #expect(other.allowedHostsText(for: .runpod).contains("results.example.com:8443"))
    }
}
