import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import ServiceCore
import ServiceSupport
import Synchronization
import TestSupport

@testable import ApiGateway
@testable import SettingsService

/// What a gateway under test is given: its own database, media folder and admin token.
struct GatewayPlace: Sendable {
    let database: TemporaryDatabase
    let token: String
    let mediaRoot: URL
    /// The gateway's variables for this place (beside those every service a test runs is given).
    let environment: [String: String]

    static func make(environment extra: [String: String]) async throws -> GatewayPlace {
        let database = try await TemporaryDatabase.create()
        let token = (0..<4).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "") }.joined()
        let scratch: URL, tokenFile: URL
        do {
            scratch = try TestEnvironment.scratchDirectory()
            tokenFile = scratch.appendingPathComponent("admin-token")
            try token.write(to: tokenFile, atomically: true, encoding: .utf8)
        } catch {
            await database.drop()
            throw error
        }
        let mediaRoot = scratch.appendingPathComponent("media")
        let environment = [
            "DATABASE_URL": database.url,
            "CYCLORAMA_ADMIN_TOKEN_FILE": tokenFile.path,
            "MEDIA_ROOT": mediaRoot.path,
            "NOTIFY_ALLOWED_HOSTS": "",
        ].merging(extra) { $1 }
        return GatewayPlace(database: database, token: token, mediaRoot: mediaRoot, environment: environment)
    }

    func remove() async {
        await database.drop()
        try? FileManager.default.removeItem(at: mediaRoot.deletingLastPathComponent())
    }
}

/// A gateway under test in a place of its own.
protocol PlacedGateway: GatewayCalls {
    var place: GatewayPlace { get }
}

extension PlacedGateway {
    var database: TemporaryDatabase { place.database }
    var token: String { place.token }
    var mediaRoot: URL { place.mediaRoot }

    /// How many jobs the ledger holds.
    func jobCount() async throws -> Int {
        try await SystemDatabase.jobCount(database.url)
    }
}

/// A real api-gateway process: for what needs the network between the caller and the gateway
/// (limits per client address) or the process's own metrics.
struct GatewayFixture: PlacedGateway {
    let process: ServiceProcess
    let place: GatewayPlace

    /// - Parameter environment: more variables for the gateway (e.g. its own broker virtual host).
    static func start(environment extra: [String: String] = [:]) async throws -> GatewayFixture {
        let place = try await GatewayPlace.make(environment: extra)
        let process = try ServiceProcess("api-gateway", port: freePort(), environment: place.environment)
        let fixture = GatewayFixture(process: process, place: place)
        guard await process.waitUntilHealthy(timeout: .seconds(60)) == 200 else {
            await fixture.stop()
            throw FixtureError(message: "api-gateway never became healthy; log:\n\(process.log())")
        }
        return fixture
    }

    var baseURL: String { "http://127.0.0.1:\(process.port)" }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: [UInt8]?) async throws -> HTTPAnswer {
        try await HTTPProbe.send(method, baseURL + path, headers: headers, body: body)
    }

    func stop() async {
        _ = await process.stop()
        await place.remove()
    }
}

/// The api-gateway built as its executable builds it (`buildGateway`), run in the test's process
/// with HummingbirdTesting's `app.test(.router)`: its routes, middleware, workers and clients on the
/// shared servers, without a port or a child process.
struct InProcessGateway: PlacedGateway {
    let client: any TestClientProtocol
    let place: GatewayPlace

    /// Runs `body` against a gateway of its own place (`environment`: more variables for it), then
    /// stops the gateway and removes its place. With `settingsService`, a settings-service runs
    /// beside it in the test's process, both on a broker virtual host of their own (as a system's
    /// are), sharing the place's database.
    static func test(
        environment extra: [String: String] = [:], settingsService: Bool = false,
        _ body: @Sendable (InProcessGateway) async throws -> Void
    ) async throws {
        let broker = settingsService ? try await SettingsServiceTests.ownVirtualHost() : nil
        let place: GatewayPlace
        do {
            place = try await GatewayPlace.make(environment: (broker.map { ["AMQP_URL": $0.url] } ?? [:]).merging(extra) { $1 })
        } catch {
            await broker?.delete()
            throw error
        }
        // Their logs are the test's; warnings are expected (bad input), errors are worth reading.
        func environment(_ name: String) -> EnvironmentVariables {
            EnvironmentVariables(
                TestEnvironment.serviceEnvironment(name).merging(["LOG_LEVEL": "error"]) { $1 }.merging(place.environment) { $1 })
        }
        // Every host built is closed, whatever fails: a client left running when it is freed stops
        // the whole test process.
        var hosts: [ServiceHost] = []
        do {
            if settingsService {
                var settingsEnvironment = environment("settings-service")
                // The gateway's own settings authority key (a test may give it a wrong one) is not the service's.
                settingsEnvironment.values["SETTINGS_AUTHORITY_KEY"] = TestEnvironment.settingsAuthorityKey
                hosts.append(
                    try buildSettingsService(
                        configuration: .fromEnvironment(serviceName: "settings-service", defaultPort: 0, environment: settingsEnvironment),
                        environment: settingsEnvironment))
            }
            hosts.append(
                try buildGateway(
                    configuration: .fromEnvironment(serviceName: "api-gateway", defaultPort: 0, environment: environment("api-gateway")),
                    gateway: .fromEnvironment(environment("api-gateway"))))
        } catch {
            for host in hosts { await host.close() }
            await place.remove()
            await broker?.delete()
            throw error
        }
        do {
            try await Self.serve(hosts[...]) { client in try await body(InProcessGateway(client: client, place: place)) }
        } catch {
            await place.remove()
            await broker?.delete()
            throw error
        }
        await place.remove()
        await broker?.delete()
    }

    /// Runs `hosts` in process, one inside the other, each once its `/healthz` says it is ready (as a
    /// system's processes are waited for), for as long as `body` runs (with the client of the last);
    /// then stops each and closes its clients, including those it never got to start.
    private static func serve(
        _ hosts: ArraySlice<ServiceHost>, _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        guard let host = hosts.first else { return }
        let handedOn = Mutex(false)
        do {
            try await host.makeSelfContainedApplication().test(.router) { client in
                try await waitUntilHealthy(client)
                handedOn.withLock { $0 = true }
                if hosts.count == 1 { try await body(client) } else { try await serve(hosts.dropFirst(), body) }
            }
        } catch {
            if !handedOn.withLock({ $0 }) {
                for inner in hosts.dropFirst() { await inner.close() }
            }
            await host.close()
            throw error
        }
        await host.close()
    }

    /// Waits (at most a minute) until the service's `/healthz` answers 200: its broker, database
    /// and Redis connections are up.
    private static func waitUntilHealthy(_ client: any TestClientProtocol) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < deadline {
            let answer = try await client.executeRequest(uri: "/healthz", method: .get, headers: [:], body: nil)
            if answer.status == .ok { return }
            last = "\(answer.status.code) \(String(buffer: answer.body))"
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError(message: "the service in process never became healthy: \(last)")
    }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: [UInt8]?) async throws -> HTTPAnswer {
        try await client.send(method, path, headers: headers, body: body)
    }
}
