import Foundation
import NIOHTTP1
import Shared
import TestSupport

/// Sends mutated and random bodies to every gateway route that takes one. The rules: never a 5xx,
/// every 4xx is `{"error": {"code", "message"}}`, every job an input started ends, and the gateway
/// still answers afterwards.
public struct HTTPFuzz: Sendable {
    struct Route: Sendable {
        var method: HTTPMethod
        var path: String
        var seeds: [[UInt8]]
        var contentTypes: [String?]
    }

    let system: CycloramaSystem
    let routes: [Route]

    /// Routes of `system` (which has at least two media: `mediaIds`), with valid seed bodies.
    public init(system: CycloramaSystem, mediaIds: [String], image: [UInt8]) {
        self.system = system
        let media = mediaIds[0]
        let json = ["application/json", "application/json; charset=utf-8", "text/plain", nil, "application/x-www-form-urlencoded"]
        func seeds(_ texts: String...) -> [[UInt8]] { texts.map { Array($0.utf8) } }
        routes = [
            Route(method: .POST, path: "/api/media", seeds: [image], contentTypes: ["application/octet-stream", "image/png", "multipart/form-data; boundary=x", nil]),
            Route(method: .POST, path: "/api/ai-image/generate/\(media)", seeds: seeds(
                "{}", #"{"background":"white","shadow":"soft"}"#, ##"{"background":"#F0F9FF","shadow":"dramatic","upscale":2,"removeWatermark":true}"##,
                #"{"background":"transparent","shadow":"minimal","customPrompt":"a wooden table"}"#), contentTypes: json),
            Route(method: .POST, path: "/api/ai-image/batch", seeds: seeds(
                #"{"mediaIds":["\#(mediaIds[0])","\#(mediaIds[1])"],"options":{"background":"white","shadow":"soft"}}"#), contentTypes: json),
            Route(method: .POST, path: "/api/ai-image/variations/\(media)", seeds: seeds("{}", #"{"customPrompts":["a","on marble"]}"#), contentTypes: json),
            Route(method: .POST, path: "/api/ai-image/variations/\(media)/choose", seeds: seeds(#"{"jobId":"\#(UUID().uuidString)"}"#), contentTypes: json),
            Route(method: .PUT, path: "/api/ai-image/settings", seeds: seeds(
                ##"{"aiImageDefaultShadow":"soft","aiImageInferenceSteps":28,"aiImageDefaultBackground":"#FFFFFF"}"##,
                #"{"aiImageMaxConcurrent":3,"aiImageGuidance":3.5,"aiImageEnableUpscaling":true}"#), contentTypes: json),
            Route(method: .POST, path: "/api/ai-image/settings/test-connection", seeds: seeds("{}", #"{"runpodApiKey":"rpa_FUZZFUZZFUZZFUZZ"}"#), contentTypes: json),
            Route(method: .POST, path: "/api/ai-image/webhook/\(UUID().uuidString.lowercased())/\(String(repeating: "t", count: 43))",
                  seeds: seeds(#"{"id":"x","status":"COMPLETED"}"#), contentTypes: json),
        ]
    }

    /// One input and what became of it.
    struct Outcome: Sendable {
        var kind: String
        var outcome: String
        var failure: String?
        var jobIds: [String] = []
    }

    /// Sends `inputs` inputs drawn from `seed`, at most `lanes` at a time (the inputs, and so a
    /// run, are the same for a seed whatever the lanes).
    public func run(inputs: Int, seed: UInt64, lanes: Int = 1, progress: (@Sendable (FuzzReport) -> Void)? = nil) async throws -> FuzzReport {
        var report = FuzzReport(name: "HTTP (seed \(seed), \(max(1, lanes)) at a time)")
        var random = SeededGenerator(seed: seed)
        var started: [String] = []
        let mutator = Mutator()
        func absorb(_ outcome: Outcome) {
            report.record(kind: outcome.kind, outcome: outcome.outcome)
            if let failure = outcome.failure { report.fail(failure) }
            started += outcome.jobIds
            if report.tried % 1000 == 0 { progress?(report) }
        }
        await withTaskGroup(of: Outcome.self) { group in
            for index in 0..<inputs {
                let route = routes[Int.random(in: 0..<routes.count, using: &random)]
                let seedBody = route.seeds[Int.random(in: 0..<route.seeds.count, using: &random)]
                let (kind, body) = mutator.mutate(seedBody, using: &random)
                var headers: [(String, String)] = []
                if let type = route.contentTypes[Int.random(in: 0..<route.contentTypes.count, using: &random)] { headers.append(("Content-Type", type)) }
                if index >= max(1, lanes), let outcome = await group.next() { absorb(outcome) }
                group.addTask { await send(route, kind: kind, body: body, headers: headers) }
            }
            for await outcome in group { absorb(outcome) }
        }
        // Every job a fuzzed request started ends (the engine simulates: each takes milliseconds).
        let deadline = ContinuousClock.now + .seconds(120) + .milliseconds(200 * started.count)
        for job in started {
            let left = deadline - ContinuousClock.now
            do {
                _ = try await system.waitForTerminal(job, timeout: left > .zero ? left : .seconds(1))
            } catch {
                report.fail("job \(job), started by a fuzzed request, did not end: \(String(describing: error).prefix(300))")
            }
        }
        report.outcomes["jobs started and ended", default: 0] += started.count
        // Still serving.
        let health = try await system.call(.GET, "/api/media?pageSize=1")
        if health.status != 200 { report.fail("the gateway no longer serves: GET /api/media → \(health.status)") }
        return report
    }

    /// Sends one input and judges the answer by the rules.
    func send(_ route: Route, kind: String, body: [UInt8], headers: [(String, String)]) async -> Outcome {
        let answer: HTTPAnswer
        do {
            answer = try await system.call(route.method, route.path, body: body, headers: headers)
        } catch {
            return Outcome(kind: kind, outcome: "no answer", failure: "\(route.method) \(route.path) [\(kind), \(body.count) bytes]: no answer: \(error)")
        }
        var outcome = Outcome(kind: kind, outcome: String(answer.status))
        if answer.status == 202 { outcome.jobIds = Self.jobIds(in: answer) }
        if answer.status >= 500 {
            outcome.failure = "\(route.method) \(route.path) [\(kind), \(body.count) bytes \(String(decoding: body.prefix(120), as: UTF8.self))]: \(answer.status) \(answer.text.prefix(200))"
        } else if answer.status >= 400 {
            let error = (try? answer.json())?["error"] as? [String: Any]
            if (error?["code"] as? String)?.isEmpty != false || (error?["message"] as? String)?.isEmpty != false {
                outcome.failure = "\(route.method) \(route.path) [\(kind)]: \(answer.status) without the error shape: \(answer.text.prefix(200))"
            }
        }
        return outcome
    }

    /// The jobs a 202 started: a generation's `jobId`, a batch's `jobs`, a variation set's `variations`.
    static func jobIds(in answer: HTTPAnswer) -> [String] {
        guard let json = try? answer.json() else { return [] }
        var ids = [json["jobId"] as? String].compactMap { $0 }
        for key in ["jobs", "variations"] {
            ids += ((json[key] as? [[String: Any]]) ?? []).compactMap { $0["jobId"] as? String }
        }
        return ids
    }
}
