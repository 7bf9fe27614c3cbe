import Foundation
@testable import ApiGateway
@testable import ResultIngestor
import RunPod
@testable import RunPodDispatcher
import ServiceCore
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

    /// A host allowed by name (RunPod's result host) or by `*` is downloaded from only while it
    /// resolves to public addresses; `host:port` and the endpoint's origin are trusted as named.
    /// Decided with an injected resolver, before anything connects.
    @Test func hostsAllowedByNameMustResolveToPublicAddresses() async throws {
        let standard = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([:]))
        let result = try url("https://image.runpod.ai/abc/result.png")
        #expect(standard.match(result, from: .runpod) == .publicOnly)
        #expect(await standard.clearance(result, from: .runpod) { _ in ["104.18.2.3"] }.refusal == nil)
        let hijacked = await standard.clearance(result, from: .runpod) { _ in ["169.254.169.254"] }.refusal
        #expect(hijacked?.reason.contains("image.runpod.ai resolves to 169.254.169.254, a link-local (cloud metadata) address") == true, "\(hijacked?.reason ?? "nil")")
        // A name that does not resolve now is waited for (the download is retried); an inner address never is.
        let unresolved = await standard.clearance(result, from: .runpod) { _ in [] }.refusal
        #expect(unresolved?.reason.contains("does not resolve") == true && unresolved?.isTransient == true)
        #expect(hijacked?.isTransient == false)
        #expect(await standard.clearance(result, from: .local) { _ in ["104.18.2.3"] }.refusal?.reason.contains("results are only downloaded over") == true)

        let anywhere = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([
            "INGEST_ALLOWED_HOSTS": "*, 127.0.0.1:8090", "RUNPOD_ENDPOINT_URL": "http://127.0.0.1:7001/v2/flux",
        ]))
        func refused(_ text: String, _ backend: GenerationBackend = .local) async throws -> String? {
            await anywhere.clearance(try url(text), from: backend) { name in Issue.record("\(name) was resolved"); return [] }.refusal?.reason
        }
        #expect(try await refused("http://127.0.0.1:8090/r.png") == nil, "listed exactly")
        #expect(try await refused("http://127.0.0.1:7001/results/a.png", .runpod) == nil, "the endpoint's origin")
        #expect(try await refused("http://127.0.0.1:8091/r.png")?.contains("loopback") == true, "* is for public addresses")
        #expect(try await refused("http://[::1]:8090/r.png")?.contains("loopback") == true)
        #expect(try await refused("http://2130706433:8090/r.png")?.contains("loopback") == true, "a decimal IP")
        #expect(try await refused("http://169.254.169.254/latest/meta-data")?.contains("cloud metadata") == true)
        #expect(try await refused("http://[fe80::1]/r.png")?.contains("link-local") == true)
        #expect(try await refused("http://result-store/r.png")?.contains("local-only name") == true)
        let named = await anywhere.clearance(try url("https://results.example.com/r.png"), from: .local) { _ in ["10.1.2.3"] }.refusal
        #expect(named?.reason.contains("resolves to 10.1.2.3, a private address") == true, "\(named?.reason ?? "nil")")
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

    /// Results of RunPod jobs may come from the RunPod endpoint's own origin, exactly: scheme, host, port.
    @Test func theRunPodEndpointsOwnOriginIsTrustedForRunPodJobs() throws {
        let standard = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([:]))
        #expect(standard.allows(try url("https://api.runpod.ai/v2/x/results/a.png"), from: .runpod))
        #expect(!standard.allows(try url("http://api.runpod.ai/v2/x/results/a.png"), from: .runpod))
        let own = try IngestorConfiguration.fromEnvironment(EnvironmentVariables([
            "RUNPOD_ENDPOINT_URL": "http://127.0.0.1:7001/v2/flux", "INGEST_ALLOWED_HOSTS": "127.0.0.1:8090",
        ]))
        #expect(own.allows(try url("http://127.0.0.1:7001/results/a.png"), from: .runpod))
        #expect(!own.allows(try url("http://127.0.0.1:7001/results/a.png"), from: .local), "for RunPod jobs only")
        #expect(!own.allows(try url("http://127.0.0.1:7002/results/a.png"), from: .runpod), "another port")
        #expect(!own.allows(try url("https://127.0.0.1:7001/results/a.png"), from: .runpod), "another scheme")
        #expect(!own.allows(try url("https://api.runpod.ai/v2/x/results/a.png"), from: .runpod), "the default endpoint is replaced")
        #expect(own.allowedHostsText(for: .runpod).contains("http://127.0.0.1:7001"))
        #expect(throws: ConfigurationError.self) {
            try IngestorConfiguration.fromEnvironment(EnvironmentVariables(["RUNPOD_ENDPOINT_URL": "ftp://x/v2/y"]))
        }
    }
}

/// The size a RunPod result is given before its upscale: the photo's, within the pixel limit.
@Suite("RunPod result geometry")
struct ResultGeometryTests {
    @Test func thePhotosSizeUnlessTheUpscaledResultWouldPassTheLimit() throws {
        let photo = try #require(ResultHandler.geometry(ofPhoto: (1600, 1200), factor: 1, maxPixels: 100_000_000))
        #expect(photo == (1600, 1200))
        let doubled = try #require(ResultHandler.geometry(ofPhoto: (1600, 1200), factor: 2, maxPixels: 100_000_000))
        #expect(doubled == (1600, 1200), "the upscale comes after, from the photo's size")
        let capped = try #require(ResultHandler.geometry(ofPhoto: (8000, 6000), factor: 4, maxPixels: 100_000_000))
        #expect(capped.width * capped.height * 16 <= 100_000_000, "\(capped)")
        #expect(abs(Double(capped.width) / Double(capped.height) - 4.0 / 3.0) < 0.01, "the aspect is kept: \(capped)")
        #expect(ResultHandler.geometry(ofPhoto: (0, 10), factor: 1, maxPixels: 100) == nil)
    }
}

/// `RUNPOD_ENDPOINT_URL` is given to the gateway, the dispatcher and the ingestor alike: all three read
/// it one way, and refuse the same bad values with the same words.
@Suite("RunPod endpoint configuration")
struct EndpointConfigurationTests {
    static let secrets = [
        "MEDIA_URL_SECRET": String(repeating: "s", count: 40),
        "CYCLORAMA_MASTER_KEY": Data((0..<32).map { UInt8($0) }).base64EncodedString(),
        "SETTINGS_AUTHORITY_KEY": String(repeating: "a", count: 40),
    ]

    @Test func everyServiceReadsTheEndpointTheSameWay() throws {
        let given = Self.secrets.merging(["RUNPOD_ENDPOINT_URL": "http://127.0.0.1:7001/v2/flux/"]) { $1 }
        #expect(try GatewayConfiguration.fromEnvironment(EnvironmentVariables(given)).runpodEndpointURL == "http://127.0.0.1:7001/v2/flux")
        #expect(try DispatcherConfiguration.fromEnvironment(EnvironmentVariables(given)).runpodEndpointURL == "http://127.0.0.1:7001/v2/flux")
        #expect(try IngestorConfiguration.fromEnvironment(EnvironmentVariables(given)).allowedHostsText(for: .runpod).contains("http://127.0.0.1:7001"))
    }

    @Test(arguments: ["ftp://x/v2/y", "not a url", "https:///v2/y"])
    func everyServiceRefusesABadEndpointNamingTheVariable(bad: String) throws {
        let given = EnvironmentVariables(Self.secrets.merging(["RUNPOD_ENDPOINT_URL": bad]) { $1 })
        var reasons: [String] = []
        for read in [
            { _ = try GatewayConfiguration.fromEnvironment(given) },
            { _ = try DispatcherConfiguration.fromEnvironment(given) },
            { _ = try IngestorConfiguration.fromEnvironment(given) },
        ] as [() throws -> Void] {
            do {
                try read()
                Issue.record("\(bad) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.variable == "RUNPOD_ENDPOINT_URL")
                reasons.append(error.reason)
            }
        }
        #expect(Set(reasons).count == 1, "one wording: \(reasons)")
        #expect(reasons.first?.contains(RunPodEndpoint.expected) == true)
        let local = EnvironmentVariables(["LOCAL_ENGINE_URL": bad])
        #expect(throws: ConfigurationError.self) { try DispatcherConfiguration.fromEnvironment(local) }
    }
}
