import AsyncHTTPClient
import Foundation
import RunPod
import ServiceCore
import ServiceSupport
import Synchronization
import Testing
import TestSupport

/// RunPod's `/health` asked with a key, as the gateway (at a switch to RunPod, "Test connection")
/// and the dispatcher (its watch) ask it: each answer RunPod gives has its verdict.
@Suite("RunPod connection check")
struct RunPodProbeTests {
    @Test func eachAnswerHasItsVerdict() {
        let endpoint = "https://api.runpod.ai/v2/x"
        let ready = RunPodProbe.judge(
            status: 200, body: Array(#"{"jobs": {"inQueue": 2, "completed": 5}, "workers": {"idle": 1, "running": 0}}"#.utf8), endpoint: endpoint)
        #expect(ready == .ready(RunPodHealth(jobs: ["inQueue": 2, "completed": 5], workers: ["idle": 1, "running": 0])))
        #expect(ready.summary == "ready: 1 worker(s) idle, 0 running, 2 job(s) queued")
        func code(_ status: Int, _ body: String = "") -> String? {
            if case .unusable(let code, _) = RunPodProbe.judge(status: status, body: Array(body.utf8), endpoint: endpoint) { return code }
            return nil
        }
        #expect(code(401) == "runpod_key_refused")
        #expect(code(403) == "runpod_key_refused")
        #expect(code(404) == "runpod_endpoint_not_found")
        #expect(code(500, "oops") == "runpod_unavailable")
        #expect(code(302) == "runpod_unavailable")
        #expect(code(200, "<html>a login page</html>") == "runpod_unexpected_answer", "a 200 that is not RunPod's health report")
        #expect(code(200, "{}") == "runpod_unexpected_answer")
    }

    @Test func noKeyIsNeverSentAndAnUnreachableEndpointIsSaid() async {
        let calls = Calls()
        let probe = RunPodProbe(endpoint: "http://127.0.0.1:9/v2/x") { url, _ in
            calls.add(url)
            throw FixtureError(message: "connection refused")
        }
        for missing in [nil, "", "  "] {
            guard case .unusable(let code, _) = await probe.check(key: missing) else {
                Issue.record("a missing key must be unusable")
                continue
            }
            #expect(code == "runpod_key_missing")
        }
        #expect(calls.urls.isEmpty, "nothing is asked without a key")
        guard case .unusable(let code, let message) = await probe.check(key: "rpa_x") else {
            Issue.record("an unreachable endpoint must be unusable")
            return
        }
        #expect(code == "runpod_unreachable")
        #expect(message.contains("http://127.0.0.1:9/v2/x") && !message.contains("rpa_x"), "\(message)")
        #expect(calls.urls == ["http://127.0.0.1:9/v2/x/health"])
    }

    /// Over real HTTP against the stand-in: the key goes as a Bearer token; a wrong key and a wrong
    /// endpoint id are told apart.
    @Test func overHTTPTheKeyAndTheEndpointAreChecked() async throws {
        let standIn = try await RunPodStandIn(scenarios: [:], acceptedKeys: ["rpa_good"])
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))
        func probe(_ endpoint: String) -> RunPodProbe {
            RunPodProbe(endpoint: endpoint) { url, headers in try await http.get(url, headers: headers) }
        }
        #expect(await probe(standIn.endpointURL).check(key: "rpa_good").isReady)
        #expect(await probe(standIn.endpointURL).check(key: "rpa_bad") == .unusable(
            code: "runpod_key_refused",
            message: "RunPod refused the API key (HTTP 401): check runpodApiKey (RunPod console → Settings → API Keys)"))
        guard case .unusable(let code, _) = await probe(standIn.baseURL + "/v2/no-such-endpoint").check(key: "rpa_good") else {
            Issue.record("an endpoint that does not exist must be unusable")
            return
        }
        #expect(code == "runpod_endpoint_not_found")
        try await http.shutdown()
        await standIn.stop()
    }
}

private final class Calls: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ url: String) { state.withLock { $0.append(url) } }
    var urls: [String] { state.withLock { $0 } }
}
