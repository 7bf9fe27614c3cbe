import Foundation
import Hummingbird
import Imaging
import Logging
import NIOCore
import ServiceLifecycle
import Shared
import Synchronization
import TestSupport

/// A stand-in for RunPod's serverless API, which tests cannot reach: a real HTTP server speaking its
/// protocol (`/v2/{endpoint}/run`, `/status/{id}`, `/cancel/{id}`, job objects, HTTP codes, Bearer
/// auth) that records what it is sent and answers from a scenario.
///
/// A job picks its scenario by a `case:<name>` marker in its prompt (the test puts it in
/// `customInstructions`). Results are served at `/results/<job id>.png`. A job submitted with a
/// `webhook` gets the job object POSTed there when it ends (``Reply/runFor(_:)`` after its time,
/// ``Reply/holdUntilReleased`` on release), as RunPod does.
final class RunPodStandIn: Sendable {
    enum Reply: Sendable {
        case inQueue
        case inProgress(String?)
        /// COMPLETED with this output; `nil` output means COMPLETED without one. `"$RESULT"` in
        /// `image_url` becomes this server's result URL for the job, `"$FILES/<name>"` one of its fixed
        /// files (`not-an-image.png`, `large.jpg`).
        case completed(JSONValue?)
        case failed(String)
        /// An HTTP error instead of a job object.
        case http(Int)
        /// IN_PROGRESS until ``release(_:)`` is called for the scenario.
        case holdUntilReleased
        /// IN_PROGRESS until this long after the job was accepted, then COMPLETED with a result.
        case runFor(Duration)
    }

    struct Scenario: Sendable {
        /// HTTP statuses answered to the first `/run` calls before one is accepted.
        var runRejections: [Int] = []
        /// The `/status` replies of the n-th accepted job (the last one of a list repeats; the last
        /// list is used for later jobs).
        var jobs: [[Reply]]
        /// A delay before the first download of a result.
        var firstDownloadDelay: Duration?
        /// How often a job's webhook is called when it ends (RunPod: once; slow receivers have seen
        /// duplicates); 0 = never (a lost webhook).
        var webhookCalls = 1
    }

    struct RunCall: Sendable {
        var authorization: String?
        var body: JSONValue
    }


    let port: Int
    let endpoint = "black-forest-labs-flux-1-kontext-dev"
    let resultSize = (width: 64, height: 48)
    private let core: Core
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var endpointURL: String { "\(baseURL)/v2/\(endpoint)" }
    var hostAndPort: String { "127.0.0.1:\(port)" }

    /// Every job's result: 64x48 RGBA, a red product on the left two thirds, transparent right of x = 42.
    static let resultPixels = [UInt8]((0..<48).flatMap { _ in (0..<64).flatMap { x -> [UInt8] in [200, 40, 40, x < 42 ? 255 : 0] } })

    init(scenarios: [String: Scenario]) async throws {
        let port = freePort()
        self.port = port
        let core = Core(
            scenarios: scenarios, baseURL: "http://127.0.0.1:\(port)",
            result: try ImageCodec.encode(Self.resultPixels, width: 64, height: 48, bands: 4, format: .png))
        self.core = core
        var logger = Logger(label: "runpod-stand-in")
        logger.logLevel = .critical
        let router = Router()
        router.post("/v2/:endpoint/run") { request, _ in try await core.run(request) }
        router.get("/v2/:endpoint/status/:id") { _, context in core.status(context.parameters.get("id") ?? "") }
        router.post("/v2/:endpoint/cancel/:id") { _, context in core.cancel(context.parameters.get("id") ?? "") }
        router.get("/results/:file") { _, context in try await core.download(context.parameters.get("file") ?? "") }
        // Fixed files for results that must be refused: text posing as a PNG, and a photo of ~100 KB.
        router.get("/files/not-an-image.png") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(string: "this is not an image")))
        }
        let photo = try Samples.bytes("dev01", "input.jpg")
        router.get("/files/large.jpg") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/jpeg"], body: .init(byteBuffer: ByteBuffer(bytes: photo)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(services: [app], logger: logger)
        self.group = group
        task = Task { try await group.run() }
        for _ in 0..<100 {
            if await HTTPProbe.status(of: "http://127.0.0.1:\(port)/ready") != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: What the tests read

    func runs(_ scenario: String) -> [RunCall] { core.state.withLock { $0.runs[scenario] ?? [] } }
    func downloads(_ scenario: String) -> Int {
        core.state.withLock { s in s.downloads.filter { s.jobs[$0.key]?.scenario == scenario }.values.reduce(0, +) }
    }
    func cancels() -> [String] { core.state.withLock { $0.cancels } }
    /// The most jobs ever at this backend at once: accepted by `/run` and not yet reported finished.
    func peakActive() -> Int { core.state.withLock { $0.peak } }
    func release(_ scenario: String) {
        let hooked = core.state.withLock { s in
            s.released.insert(scenario)
            return s.jobs.filter { $0.value.scenario == scenario }.keys.compactMap { id in s.webhooks[id].map { (id, $0) } }
        }
        for (id, url) in hooked { core.callWebhook(url, job: id, scenario: scenario) }
    }
    /// `/status` calls for the scenario's jobs.
    func statusCalls(_ scenario: String) -> Int {
        core.state.withLock { s in s.statusCalls.filter { s.jobs[$0.key]?.scenario == scenario }.values.reduce(0, +) }
    }
    /// The HTTP statuses the scenario's webhook calls got, in order (0: no answer).
    func webhookAnswers(_ scenario: String) -> [Int] { core.state.withLock { $0.webhookAnswers[scenario] ?? [] } }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}

/// The stand-in's state and protocol handlers.
private final class Core: Sendable {
    struct State {
        var runs: [String: [RunPodStandIn.RunCall]] = [:]
        var jobs: [String: (scenario: String, replies: [RunPodStandIn.Reply], polls: Int)] = [:]
        var acceptedAt: [String: ContinuousClock.Instant] = [:]
        var active: Set<String> = []
        var peak = 0
        var accepted: [String: Int] = [:]
        var cancels: [String] = []
        var downloads: [String: Int] = [:]
        var released: Set<String> = []
        var statusCalls: [String: Int] = [:]
        var webhooks: [String: String] = [:]
        var webhookAnswers: [String: [Int]] = [:]
    }

    typealias Reply = RunPodStandIn.Reply
    let scenarios: [String: RunPodStandIn.Scenario]
    let baseURL: String
    let result: [UInt8]
    let state = Mutex(State())

    init(scenarios: [String: RunPodStandIn.Scenario], baseURL: String, result: [UInt8]) {
        self.scenarios = scenarios
        self.baseURL = baseURL
        self.result = result
    }

    func run(_ request: Request) async throws -> Response {
        var request = request
        let bytes = try await request.collectBody(upTo: 10 << 20)
        guard let body = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes)) else {
            return Self.json(400, ["error": "invalid JSON body"])
        }
        let prompt = body["input"]?["prompt"]?.stringValue ?? ""
        let name = prompt.range(of: #"case:[a-z0-9-]+"#, options: .regularExpression).map { String(prompt[$0].dropFirst(5)) } ?? "default"
        guard let scenario = scenarios[name] else { return Self.json(400, ["error": .string("no scenario \(name)")]) }
        let call = RunPodStandIn.RunCall(authorization: request.headers[.authorization], body: body)
        let (rejection, id, replies): (Int?, String, [Reply]) = state.withLock { s in
            s.runs[name, default: []].append(call)
            let attempts = s.runs[name]!.count
            if attempts <= scenario.runRejections.count { return (scenario.runRejections[attempts - 1], "", []) }
            let index = s.accepted[name, default: 0]
            s.accepted[name] = index + 1
            let id = "\(name)-\(index)"
            let replies = scenario.jobs[min(index, scenario.jobs.count - 1)]
            s.jobs[id] = (name, replies, 0)
            s.acceptedAt[id] = .now
            s.active.insert(id)
            s.peak = max(s.peak, s.active.count)
            if let webhook = body["webhook"]?.stringValue { s.webhooks[id] = webhook }
            return (nil, id, replies)
        }
        if let rejection { return Self.json(rejection, ["error": .string("rejected by the scenario (\(rejection))")]) }
        if let webhook = body["webhook"]?.stringValue, case .runFor(let duration) = replies.first {
            Task {
                try await Task.sleep(for: duration)
                self.callWebhook(webhook, job: id, scenario: name)
            }
        }
        return Self.json(200, ["id": .string(id), "status": "IN_QUEUE"])
    }

    func status(_ id: String) -> Response {
        let next: (Reply, String)? = state.withLock { s in
            guard var job = s.jobs[id] else { return nil }
            s.statusCalls[id, default: 0] += 1
            var reply = job.replies[min(job.polls, job.replies.count - 1)]
            if case .holdUntilReleased = reply, !s.released.contains(job.scenario) {
                return (.inProgress("held"), job.scenario)
            }
            if case .runFor(let duration) = reply {
                if ContinuousClock.now - (s.acceptedAt[id] ?? .now) < duration { return (.inProgress("running"), job.scenario) }
                reply = .completed(["image_url": "$RESULT"])
            }
            job.polls += 1
            s.jobs[id] = job
            switch reply {
            case .completed, .failed, .holdUntilReleased: s.active.remove(id)
            default: break
            }
            return (reply, job.scenario)
        }
        guard let (reply, _) = next else { return Self.json(404, ["error": .string("job \(id) not found")]) }
        guard let job = render(reply, id) else {
            if case .http(let code) = reply { return Self.json(code, ["error": .string("status \(code) from the scenario")]) }
            return Self.json(500, ["error": "nothing to render"])
        }
        return Self.json(200, job)
    }

    /// POSTs the finished job to its webhook (``RunPodStandIn/Scenario/webhookCalls`` times, as
    /// RunPod does, with its `webhook` field), recording each answer.
    func callWebhook(_ url: String, job id: String, scenario: String) {
        let times = scenarios[scenario]?.webhookCalls ?? 1
        guard times > 0, case .object(var body) = render(.completed(["image_url": "$RESULT", "cost": 0.025]), id) else { return }
        body["webhook"] = .string(url)
        let bytes = Array(JSONValue.object(body).encodedText.utf8)
        Task {
            for _ in 0..<times {
                let status = (try? await HTTPProbe.send(.POST, url, headers: [("Content-Type", "application/json")], body: bytes).status) ?? 0
                state.withLock { $0.webhookAnswers[scenario, default: []].append(status) }
            }
        }
    }

    /// The job object for a reply; nil for an HTTP error.
    private func render(_ reply: Reply, _ id: String) -> JSONValue? {
        let job: JSONValue
        switch reply {
        case .inQueue: job = ["id": .string(id), "status": "IN_QUEUE", "delayTime": 12]
        case .inProgress(let progress):
            job = ["id": .string(id), "status": "IN_PROGRESS", "delayTime": 40, "output": progress.map { ["progress": .string($0)] } ?? .null]
        case .holdUntilReleased, .completed, .runFor:
            var output: JSONValue = ["image_url": "$RESULT", "cost": 0.025]
            if case .completed(let given) = reply { output = given ?? .null }
            if case .object(var members) = output {
                for (key, value) in members {
                    guard let text = value.stringValue else { continue }
                    if text == "$RESULT" { members[key] = .string("\(baseURL)/results/\(id).png") }
                    if text.hasPrefix("$FILES/") { members[key] = .string("\(baseURL)/files/\(text.dropFirst(7))") }
                }
                output = .object(members)
            }
            job = ["id": .string(id), "status": "COMPLETED", "delayTime": 40, "executionTime": 1234, "output": output]
        case .failed(let error): job = ["id": .string(id), "status": "FAILED", "delayTime": 40, "executionTime": 10, "error": .string(error)]
        case .http: return nil
        }
        return job
    }

    func cancel(_ id: String) -> Response {
        state.withLock {
            $0.cancels.append(id)
            $0.active.remove(id)
        }
        return Self.json(200, ["id": .string(id), "status": "CANCELLED"])
    }

    func download(_ file: String) async throws -> Response {
        let id = file.hasSuffix(".png") ? String(file.dropLast(4)) : file
        let (count, scenario): (Int, String?) = state.withLock { s in
            s.downloads[id, default: 0] += 1
            return (s.downloads[id]!, s.jobs[id]?.scenario)
        }
        if count == 1, let delay = scenario.flatMap({ scenarios[$0]?.firstDownloadDelay }) {
            try await Task.sleep(for: delay)
        }
        return Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(bytes: result)))
    }

    private static func json(_ status: Int, _ body: JSONValue) -> Response {
        Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body.encodedText)))
    }
}
