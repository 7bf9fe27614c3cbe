import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Imaging
import Logging
import NIOCore
import ServiceLifecycle
import Shared
import Synchronization

/// A stand-in for RunPod's serverless API, which tests cannot reach: a real HTTP server speaking its
/// protocol (`/v2/{endpoint}/run`, `/status/{id}`, `/cancel/{id}`, `/health`, job objects, HTTP codes,
/// Bearer auth) that records what it is sent and answers from a scenario.
///
/// A job picks its scenario by a `case:<name>` marker in its prompt (the test puts it in
/// `customInstructions`; without one, `default`). Results are served at `/results/<job id>.png`
/// (`$RESULT` in a scenario's output), also behind a redirect (`$REDIRECTED`: `/redirect/<job id>.png`
/// answers 302 to it; `/redirect-away/...` answers 302 to a documentation address). A
/// job submitted with a `webhook` gets the job object POSTed there when it ends, as RunPod does.
/// As RunPod, it answers 404 for an endpoint id other than its own and, given `acceptedKeys`,
/// 401 for a call without one of them.
///
/// As a RunPod worker does, a scenario with ``Scenario/fetchesInput`` downloads the job's
/// `input.image` before it runs, and fails the job ("Invalid image URL") when that fails. It honours
/// nothing RunPod does not: an `Idempotency-Key` header is recorded (to tell which Cyclorama job a
/// submission was for) but never acted on.
///
/// ``faults`` switches on what the fault suite injects: `/run` answers lost after the job was
/// accepted, 429 and 5xx storms, slow answers, results gone before they are downloaded.
public final class RunPodStandIn: Sendable {
    public enum Reply: Sendable {
        case inQueue
        case inProgress(String?)
        /// What some of RunPod's pages call IN_PROGRESS: status `RUNNING`.
        case running
        /// COMPLETED with this output; `nil` output means COMPLETED without one. `"$RESULT"` in
        /// `image_url` becomes this server's result URL for the job, `"$FILES/<name>"` one of its fixed
        /// files (`not-an-image.png`, `cut-short.png`, `large.jpg`).
        case completed(JSONValue?)
        case failed(String)
        /// An HTTP error instead of a job object.
        case http(Int)
        /// IN_PROGRESS until ``release(_:)`` is called for the scenario.
        case holdUntilReleased
        /// IN_PROGRESS until this long after the job was accepted (after its input was fetched, with
        /// ``Scenario/fetchesInput``), then COMPLETED with a result.
        case runFor(Duration)
        /// As ``runFor(_:)``, with a duration drawn uniformly from the range for each job.
        case runBetween(Duration, Duration)
    }

    public struct Scenario: Sendable {
        /// HTTP statuses answered to the first `/run` calls before one is accepted.
        public var runRejections: [Int] = []
        /// The `/status` replies of the n-th accepted job (the last one of a list repeats; the last
        /// list is used for later jobs).
        public var jobs: [[Reply]]
        /// A delay before the first download of a result.
        public var firstDownloadDelay: Duration?
        /// How often a job's webhook is called when it ends (RunPod: once; slow receivers have seen
        /// duplicates); 0 = never (a lost webhook).
        public var webhookCalls = 1
        /// Download `input.image` before running, failing the job when that fails.
        public var fetchesInput = false
        /// `/run` answers HTTP 400 with a FAILED job carrying this error, as RunPod does for an input it refuses.
        public var refusedAtRun: String?
        /// This scenario's result image instead of the stand-in's (`$RESULT`).
        public var result: [UInt8]?

        public init(
            runRejections: [Int] = [], jobs: [[Reply]], firstDownloadDelay: Duration? = nil, webhookCalls: Int = 1,
            fetchesInput: Bool = false, refusedAtRun: String? = nil, result: [UInt8]? = nil
        ) {
            self.result = result
            self.refusedAtRun = refusedAtRun
            self.runRejections = runRejections
            self.jobs = jobs
            self.firstDownloadDelay = firstDownloadDelay
            self.webhookCalls = webhookCalls
            self.fetchesInput = fetchesInput
        }
    }

    /// One `/run` call as it arrived.
    public struct RunCall: Sendable {
        public var authorization: String?
        public var idempotencyKey: String?
        public var body: JSONValue
        /// The job it created; nil when the call was refused.
        public var jobId: String?
        /// The job was created but the answer was cut off.
        public var answerLost: Bool
    }

    /// What the stand-in knows about one job it accepted: the backend's own record.
    public struct BackendJob: Sendable {
        public var id: String
        public var scenario: String
        /// The `Idempotency-Key` its `/run` carried (Cyclorama sends `<jobId>:<attempt>`).
        public var idempotencyKey: String?
        public var acceptedAt: ContinuousClock.Instant
        /// When it stopped running at the backend (finished, failed, cancelled); nil while it runs.
        public var endedAt: ContinuousClock.Instant?
        public var outcome: String
        public var cancelled: Bool
    }

    /// Faults to inject, switched at run time.
    public struct Faults: Sendable {
        /// The next this-many accepted `/run` calls lose their answer (the connection is cut).
        public var loseRunAnswers = 0
        /// `/run` answers this status (429, 503, ...) until `runStormUntil`.
        public var runStorm: Int?
        public var runStormUntil: ContinuousClock.Instant?
        /// `/status` answers this status until `statusStormUntil`.
        public var statusStorm: Int?
        public var statusStormUntil: ContinuousClock.Instant?
        /// Every call waits this long (drawn from the range) until `slowUntil`.
        public var slow: ClosedRange<Double>?
        public var slowUntil: ContinuousClock.Instant?
        /// Results of jobs that finish before `expireResultsUntil` are gone (404) when downloaded.
        public var expireResultsUntil: ContinuousClock.Instant?
        /// `/cancel` answers this status (and cancels nothing) until `cancelStormUntil`.
        public var cancelStorm: Int?
        public var cancelStormUntil: ContinuousClock.Instant?
        /// The next this-many input downloads fail, as a worker that cannot reach the image's host.
        public var failInputFetches = 0
        /// While true, an accepted `/run` (its job created) holds its answer: a test acts while the
        /// caller waits for it (the answer goes out once this is false again).
        public var holdRunAnswers = false
        public init() {}
    }

    public let port: Int
    public let endpoint = "black-forest-labs-flux-1-kontext-dev"
    public let resultSize = (width: 64, height: 48)
    private let core: Core
    private let keys: KeyRing
    private let task: Task<Void, any Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var endpointURL: String { "\(baseURL)/v2/\(endpoint)" }
    public var hostAndPort: String { "127.0.0.1:\(port)" }

    /// Every job's result: 64x48 RGBA, a red product on the left two thirds, transparent right of x = 42.
    public static let resultPixels = [UInt8]((0..<48).flatMap { _ in (0..<64).flatMap { x -> [UInt8] in [200, 40, 40, x < 42 ? 255 : 0] } })

    /// `result` replaces the default result image (``resultPixels``) for every job.
    public init(scenarios: [String: Scenario], acceptedKeys: Set<String>? = nil, port: Int? = nil, result: [UInt8]? = nil) async throws {
        let port = port ?? freePort()
        self.port = port
        let core = Core(
            scenarios: scenarios, baseURL: "http://127.0.0.1:\(port)",
            result: try result ?? ImageCodec.encode(Self.resultPixels, width: 64, height: 48, bands: 4, format: .png))
        self.core = core
        var logger = Logger(label: "runpod-stand-in")
        logger.logLevel = .critical
        let router = Router()
        let keys = KeyRing(acceptedKeys)
        self.keys = keys
        router.add(middleware: RunPodGate(endpoint: endpoint, acceptedKeys: { keys.keys.withLock { $0 } }))
        router.post("/v2/:endpoint/run") { request, _ in try await core.run(request) }
        router.get("/v2/:endpoint/status/:id") { _, context in await core.status(context.parameters.get("id") ?? "") }
        router.post("/v2/:endpoint/cancel/:id") { _, context in await core.cancel(context.parameters.get("id") ?? "") }
        router.get("/v2/:endpoint/health") { _, _ in core.health() }
        router.get("/results/:file") { _, context in try await core.download(context.parameters.get("file") ?? "") }
        router.get("/redirect/:file") { _, context in
            Response(status: .found, headers: [.location: "/results/\(context.parameters.get("file") ?? "")"])
        }
        router.get("/redirect-away/:file") { _, _ in Response(status: .found, headers: [.location: "http://203.0.113.9/result.png"]) }
        // Fixed files for results that must be refused: text posing as a PNG, a PNG cut short, and a
        // photo of ~100 KB.
        router.get("/files/not-an-image.png") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(string: "this is not an image")))
        }
        // A PNG whose header is whole and whose data is cut short (no IEND chunk).
        router.get("/files/cut-short.png") { _, _ in
            func be32(_ value: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((value >> $0) & 0xFF) } }
            var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            png += be32(13) + Array("IHDR".utf8) + be32(64) + be32(64) + [8, 2, 0, 0, 0] + [0, 0, 0, 0]
            png += be32(400) + Array("IDAT".utf8) + [UInt8](repeating: 0x55, count: 120)
            return Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(bytes: png)))
        }
        let photo = try Samples.bytes("dev01", "input.jpg")
        router.get("/files/large.jpg") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/jpeg"], body: .init(byteBuffer: ByteBuffer(bytes: photo)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(services: [app], logger: logger)
        task = Task { try await group.run() }
        for _ in 0..<100 {
            if await HTTPProbe.status(of: "http://127.0.0.1:\(port)/ready") != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: What the tests read

    /// The id of the `index`-th (0-based) job the scenario accepted: `<scenario>-<index>-<instance tag>`.
    public func jobId(_ scenario: String, _ index: Int) -> String { Self.jobId(scenario, index, tag: core.tag) }

    static func jobId(_ scenario: String, _ index: Int, tag: String) -> String { "\(scenario)-\(index)-\(tag)" }

    /// What points a system at this stand-in: the dispatcher's `RUNPOD_ENDPOINT_URL`, the
    /// ingestor's `INGEST_ALLOWED_HOSTS` (results come from here), and each one's `dispatcher` /
    /// `ingestor` variables besides.
    public func overrides(dispatcher: [String: String] = [:], ingestor: [String: String] = [:]) -> [String: [String: String]] {
        [
            "runpod-dispatcher": dispatcher.merging(["RUNPOD_ENDPOINT_URL": endpointURL]) { own, _ in own },
            "result-ingestor": ingestor.merging(["INGEST_ALLOWED_HOSTS": hostAndPort]) { own, _ in own },
        ]
    }

    /// From now on accepts only `keys` (nil: any), as RunPod after a key was created or revoked.
    public func acceptKeys(_ keys: Set<String>?) { self.keys.keys.withLock { $0 = keys } }

    public func runs(_ scenario: String) -> [RunCall] { core.state.withLock { $0.runs[scenario] ?? [] } }
    /// Every `/run` call of every scenario, in order.
    public func allRuns() -> [RunCall] { core.state.withLock { $0.runOrder } }
    public func downloads(_ scenario: String) -> Int {
        core.state.withLock { s in s.downloads.filter { s.jobs[$0.key]?.scenario == scenario }.values.reduce(0, +) }
    }
    public func cancels() -> [String] { core.state.withLock { $0.cancels } }
    /// The most jobs ever running at this backend at once: accepted and not yet ended (finished,
    /// failed or cancelled) — by when they ended, not by when someone asked.
    public func peakActive() -> Int {
        let now = ContinuousClock.now
        let jobs = backendJobs(at: now)
        var events: [(ContinuousClock.Instant, Int)] = []
        for job in jobs {
            events.append((job.acceptedAt, 1))
            events.append((job.endedAt ?? now, -1))
        }
        // Ends before starts at the same instant: a job that ended lets the next one in.
        events.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var current = 0, peak = 0
        for (_, delta) in events {
            current += delta
            peak = max(peak, current)
        }
        return peak
    }
    /// Every job the stand-in accepted, with when it ran (the backend's own record).
    public func backendJobs(at now: ContinuousClock.Instant = .now) -> [BackendJob] {
        core.state.withLock { s in
            s.jobs.map { id, job in
                let ended = Core.endedAt(job, now: now)
                return BackendJob(
                    id: id, scenario: job.scenario, idempotencyKey: job.idempotencyKey, acceptedAt: job.acceptedAt,
                    endedAt: ended?.at, outcome: ended?.outcome ?? "RUNNING", cancelled: job.cancelledAt != nil)
            }.sorted { $0.acceptedAt < $1.acceptedAt }
        }
    }
    public func release(_ scenario: String) {
        let hooked = core.state.withLock { s in
            s.released.insert(scenario)
            return s.jobs.filter { $0.value.scenario == scenario }.keys.compactMap { id in s.jobs[id]?.webhook.map { (id, $0) } }
        }
        for (id, url) in hooked { core.callWebhook(url, job: id, scenario: scenario) }
    }
    /// `/status` calls for the scenario's jobs.
    public func statusCalls(_ scenario: String) -> Int {
        core.state.withLock { s in s.statusCalls.filter { s.jobs[$0.key]?.scenario == scenario }.values.reduce(0, +) }
    }
    /// The HTTP statuses the scenario's webhook calls got, in order (0: no answer; -1: not made, the URL is not loopback).
    public func webhookAnswers(_ scenario: String) -> [Int] { core.state.withLock { $0.webhookAnswers[scenario] ?? [] } }

    /// Switches faults on or off.
    public func inject(_ change: (inout Faults) -> Void) {
        core.faults.withLock { change(&$0) }
    }

    /// Stops at once: requests still being answered are cut off (a graceful stop would wait out a
    /// scenario's held answer, e.g. a 20 s `firstDownloadDelay`, after the test is done).
    public func stop() async {
        task.cancel()
        _ = await task.result
    }
}

/// The stand-in's state and protocol handlers.
private final class Core: Sendable {
    struct Job {
        var scenario: String
        var replies: [RunPodStandIn.Reply]
        var polls = 0
        var idempotencyKey: String?
        var webhook: String?
        var acceptedAt: ContinuousClock.Instant
        /// When it starts running: at once, or once its input was fetched.
        var startedAt: ContinuousClock.Instant?
        var duration: Duration?
        var fetchFailure: String?
        var fetchFailedAt: ContinuousClock.Instant?
        var cancelledAt: ContinuousClock.Instant?
        /// When a terminal reply was last handed out (for scripted replies).
        var reportedEndAt: ContinuousClock.Instant?
        var reportedOutcome: String?
    }

    struct State {
        var runs: [String: [RunPodStandIn.RunCall]] = [:]
        var runOrder: [RunPodStandIn.RunCall] = []
        var jobs: [String: Job] = [:]
        var accepted: [String: Int] = [:]
        var cancels: [String] = []
        var downloads: [String: Int] = [:]
        var released: Set<String> = []
        var statusCalls: [String: Int] = [:]
        var webhookAnswers: [String: [Int]] = [:]
        var webhooksCalled: Set<String> = []
    }

    typealias Reply = RunPodStandIn.Reply
    let scenarios: [String: RunPodStandIn.Scenario]
    let baseURL: String
    let result: [UInt8]
    /// Makes this instance's job ids unique, as RunPod's are (ids of two stand-ins never meet).
    let tag = String(UUID().uuidString.prefix(8).lowercased())
    let state = Mutex(State())
    let faults = Mutex(RunPodStandIn.Faults())

    init(scenarios: [String: RunPodStandIn.Scenario], baseURL: String, result: [UInt8]) {
        self.scenarios = scenarios
        self.baseURL = baseURL
        self.result = result
    }

    /// When and how a job stopped running at the backend, nil while it runs.
    static func endedAt(_ job: Job, now: ContinuousClock.Instant) -> (at: ContinuousClock.Instant, outcome: String)? {
        var candidates: [(ContinuousClock.Instant, String)] = []
        if let at = job.cancelledAt { candidates.append((at, "CANCELLED")) }
        if let at = job.fetchFailedAt { candidates.append((at, "FAILED")) }
        if let started = job.startedAt, let duration = job.duration, started + duration <= now {
            candidates.append((started + duration, "COMPLETED"))
        }
        if let at = job.reportedEndAt { candidates.append((at, job.reportedOutcome ?? "COMPLETED")) }
        return candidates.min { $0.0 < $1.0 }
    }

    private func slowDown() async {
        let delay: Double? = faults.withLock { f in
            guard let range = f.slow, let until = f.slowUntil, ContinuousClock.now < until else { return nil }
            return Double.random(in: range)
        }
        if let delay { try? await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
    }

    func run(_ request: Request) async throws -> Response {
        await slowDown()
        var request = request
        let bytes = try await request.collectBody(upTo: 10 << 20)
        guard let body = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes)) else {
            return Self.json(400, ["error": "invalid JSON body"])
        }
        // RunPod's minimums (a policy below them is refused with 400).
        if let policy = body["policy"] {
            if let timeout = policy["executionTimeout"]?.doubleValue, timeout <= 5_000 {
                return Self.json(400, ["error": .string("policy.executionTimeout must be more than 5000 ms")])
            }
            if let ttl = policy["ttl"]?.doubleValue, ttl < 10_000 {
                return Self.json(400, ["error": .string("policy.ttl must be at least 10000 ms")])
            }
        }
        let prompt = body["input"]?["prompt"]?.stringValue ?? ""
        let name = prompt.range(of: #"case:[a-z0-9-]+"#, options: .regularExpression).map { String(prompt[$0].dropFirst(5)) } ?? "default"
        guard let scenario = scenarios[name] else { return Self.json(400, ["error": .string("no scenario \(name)")]) }
        let storm: Int? = faults.withLock { f in
            guard let status = f.runStorm, let until = f.runStormUntil, ContinuousClock.now < until else { return nil }
            return status
        }
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        var call = RunPodStandIn.RunCall(
            authorization: request.headers[.authorization], idempotencyKey: key, body: body, jobId: nil, answerLost: false)
        if let storm {
            state.withLock { s in
                s.runs[name, default: []].append(call)
                s.runOrder.append(call)
            }
            return Self.json(storm, ["error": .string("rate limited or unavailable (a storm of \(storm))")])
        }
        if let refusal = scenario.refusedAtRun {
            let count = state.withLock { s in
                s.runs[name, default: []].append(call)
                s.runOrder.append(call)
                return s.runs[name]!.count
            }
            return Self.json(400, ["id": .string("refused-\(name)-\(count)"), "status": "FAILED", "error": .string(refusal)])
        }
        let loseAnswer = faults.withLock { f in
            guard f.loseRunAnswers > 0 else { return false }
            f.loseRunAnswers -= 1
            return true
        }
        let (rejection, id, replies): (Int?, String, [Reply]) = state.withLock { s in
            let attempts = (s.runs[name]?.count ?? 0) + 1
            if attempts <= scenario.runRejections.count {
                s.runs[name, default: []].append(call)
                s.runOrder.append(call)
                return (scenario.runRejections[attempts - 1], "", [])
            }
            let index = s.accepted[name, default: 0]
            s.accepted[name] = index + 1
            let id = RunPodStandIn.jobId(name, index, tag: tag)
            let replies = scenario.jobs[min(index, scenario.jobs.count - 1)]
            var job = Job(scenario: name, replies: replies, idempotencyKey: key, webhook: body["webhook"]?.stringValue, acceptedAt: .now)
            switch replies.first {
            case .runFor(let duration): job.duration = duration
            case .runBetween(let low, let high):
                let span = (high - low) / 1000
                job.duration = low + span * Int.random(in: 0...1000)
            default: break
            }
            if !scenario.fetchesInput { job.startedAt = job.acceptedAt }
            s.jobs[id] = job
            call.jobId = id
            call.answerLost = loseAnswer
            s.runs[name, default: []].append(call)
            s.runOrder.append(call)
            return (nil, id, replies)
        }
        if let rejection { return Self.json(rejection, ["error": .string("rejected by the scenario (\(rejection))")]) }
        if scenario.fetchesInput, let image = body["input"]?["image"]?.stringValue {
            Task { await self.fetchInput(id, image) }
        }
        if let webhook = body["webhook"]?.stringValue, case .some = replies.first.flatMap({ reply -> Bool? in
            if case .runFor = reply { return true }
            if case .runBetween = reply { return true }
            return nil
        }) {
            Task { await self.callWebhookWhenDone(webhook, job: id, scenario: name) }
        }
        if loseAnswer {
            // The job exists; the answer never arrives whole: headers, half a body, then the connection is cut.
            let partial = ByteBuffer(string: #"{"id": "\#(id)", "sta"#)
            return Response(
                status: .ok, headers: [.contentType: "application/json", .contentLength: "64"],
                body: ResponseBody { writer in
                    try await writer.write(partial)
                    throw CancellationError()
                })
        }
        while faults.withLock({ $0.holdRunAnswers }) { try await Task.sleep(for: .milliseconds(20)) }
        return Self.json(200, ["id": .string(id), "status": "IN_QUEUE"])
    }

    /// As a RunPod worker does: download the input before running; a failure fails the job.
    private func fetchInput(_ id: String, _ image: String) async {
        var failure: String? = faults.withLock { f in
            guard f.failInputFetches > 0 else { return nil }
            f.failInputFetches -= 1
            return "the host did not answer (injected)"
        }
        if failure != nil {
        } else if image.hasPrefix("data:") {
            // RunPod's workers take a base64 data URI as the image itself.
            let payload = image.range(of: ";base64,").map { String(image[$0.upperBound...]) }
            if payload.flatMap({ Data(base64Encoded: $0) }).map({ $0.isEmpty }) ?? true { failure = "not a base64 data URI" }
        } else if let host = URL(string: image)?.host, ["127.0.0.1", "localhost", "::1"].contains(host) {
            do {
                // Long: a timeout here fails the run, and the dispatcher then submits again.
                let answer = try await HTTPProbe.send(.GET, image, timeout: .seconds(60))
                if answer.status != 200 { failure = "HTTP \(answer.status)" }
            } catch {
                failure = "\(error)"
            }
        } else {
            failure = "not fetched: the stand-in reaches loopback only"
        }
        state.withLock { s in
            guard var job = s.jobs[id], job.cancelledAt == nil else { return }
            if let failure {
                job.fetchFailure = "Invalid image URL: could not download the image (\(failure.prefix(120)))"
                job.fetchFailedAt = .now
            } else {
                job.startedAt = .now
            }
            s.jobs[id] = job
        }
    }

    private func callWebhookWhenDone(_ url: String, job id: String, scenario: String) async {
        while true {
            let ended = state.withLock { s in s.jobs[id].flatMap { Core.endedAt($0, now: .now) } }
            if let ended {
                if ended.outcome != "CANCELLED" { callWebhook(url, job: id, scenario: scenario) }
                return
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    func status(_ id: String) async -> Response {
        await slowDown()
        let storm: Int? = faults.withLock { f in
            guard let status = f.statusStorm, let until = f.statusStormUntil, ContinuousClock.now < until else { return nil }
            return status
        }
        if let storm { return Self.json(storm, ["error": .string("unavailable (a storm of \(storm))")]) }
        let reply: Reply? = state.withLock { s in
            guard var job = s.jobs[id] else { return nil }
            s.statusCalls[id, default: 0] += 1
            let now = ContinuousClock.now
            if job.cancelledAt != nil { return .failed("__cancelled") }
            if let failure = job.fetchFailure { return .failed(failure) }
            var reply = job.replies[min(job.polls, job.replies.count - 1)]
            if case .holdUntilReleased = reply, !s.released.contains(job.scenario) {
                return .inProgress("held")
            }
            switch reply {
            case .runFor, .runBetween:
                guard let started = job.startedAt, let duration = job.duration else { return .inQueue }
                if now - started < duration { return .inProgress("running") }
                reply = .completed(["image_url": "$RESULT", "cost": 0.025])
            default: break
            }
            job.polls += 1
            switch reply {
            case .completed, .holdUntilReleased:
                if job.reportedEndAt == nil, job.duration == nil { job.reportedEndAt = now; job.reportedOutcome = "COMPLETED" }
            case .failed:
                if job.reportedEndAt == nil { job.reportedEndAt = now; job.reportedOutcome = "FAILED" }
            default: break
            }
            s.jobs[id] = job
            return reply
        }
        guard let reply else { return Self.json(404, ["error": .string("job \(id) not found")]) }
        if case .failed("__cancelled") = reply {
            return Self.json(200, ["id": .string(id), "status": "CANCELLED", "delayTime": 40])
        }
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
        let first = state.withLock { $0.webhooksCalled.insert(id).inserted }
        guard first, times > 0 else { return }
        let failure = state.withLock { $0.jobs[id]?.fetchFailure }
        let reply: Reply = failure.map { .failed($0) } ?? .completed(["image_url": "$RESULT", "cost": 0.025])
        guard case .object(var body) = render(reply, id) else { return }
        // Tests never leave loopback, even when a test (or a fuzzer) sets a webhook URL elsewhere:
        // such a call is recorded as refused (-1) and never made, not even resolved.
        guard Self.isLoopbackLiteral(url) else {
            state.withLock { $0.webhookAnswers[scenario, default: []].append(-1) }
            return
        }
        body["webhook"] = .string(url)
        let bytes = Array(JSONValue.object(body).encodedText.utf8)
        Task {
            for _ in 0..<times {
                let status = (try? await HTTPProbe.send(.POST, url, headers: [("Content-Type", "application/json")], body: bytes).status) ?? 0
                state.withLock { $0.webhookAnswers[scenario, default: []].append(status) }
            }
        }
    }

    /// Whether `url`'s host is a loopback address written as one (127.0.0.0/8 or ::1).
    static func isLoopbackLiteral(_ url: String) -> Bool {
        guard let host = URLComponents(string: url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) else { return false }
        if host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { part in UInt8(part).map { String($0) == part } ?? false }
    }

    /// The job object for a reply; nil for an HTTP error.
    private func render(_ reply: Reply, _ id: String) -> JSONValue? {
        let job: JSONValue
        switch reply {
        case .inQueue: job = ["id": .string(id), "status": "IN_QUEUE", "delayTime": 12]
        case .inProgress(let progress):
            job = ["id": .string(id), "status": "IN_PROGRESS", "delayTime": 40, "output": progress.map { ["progress": .string($0)] } ?? .null]
        case .running: job = ["id": .string(id), "status": "RUNNING", "delayTime": 40]
        case .holdUntilReleased, .completed, .runFor, .runBetween:
            var output: JSONValue = ["image_url": "$RESULT", "cost": 0.025]
            if case .completed(let given) = reply { output = given ?? .null }
            if case .object(var members) = output {
                for (key, value) in members {
                    guard let text = value.stringValue else { continue }
                    if text == "$RESULT" { members[key] = .string("\(baseURL)/results/\(id).png") }
                    if text == "$REDIRECTED" { members[key] = .string("\(baseURL)/redirect/\(id).png") }
                    if text == "$REDIRECTED_AWAY" { members[key] = .string("\(baseURL)/redirect-away/\(id).png") }
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

    func cancel(_ id: String) async -> Response {
        await slowDown()
        let storm: Int? = faults.withLock { f in
            guard let status = f.cancelStorm, let until = f.cancelStormUntil, ContinuousClock.now < until else { return nil }
            return status
        }
        if let storm { return Self.json(storm, ["error": .string("unavailable (a storm of \(storm))")]) }
        let known = state.withLock { s -> Bool in
            s.cancels.append(id)
            guard var job = s.jobs[id] else { return false }
            if Core.endedAt(job, now: .now) == nil { job.cancelledAt = .now }
            s.jobs[id] = job
            return true
        }
        guard known else { return Self.json(404, ["error": .string("job \(id) not found")]) }
        return Self.json(200, ["id": .string(id), "status": "CANCELLED"])
    }

    func health() -> Response {
        let (running, queued, completed, failed) = state.withLock { s -> (Int, Int, Int, Int) in
            var running = 0, queued = 0, completed = 0, failed = 0
            for job in s.jobs.values {
                switch Core.endedAt(job, now: .now)?.outcome {
                case nil: if job.startedAt == nil { queued += 1 } else { running += 1 }
                case "COMPLETED": completed += 1
                default: failed += 1
                }
            }
            return (running, queued, completed, failed)
        }
        return Self.json(200, [
            "jobs": ["completed": .int(completed), "failed": .int(failed), "inProgress": .int(running), "inQueue": .int(queued), "retried": 0],
            "workers": ["idle": 1, "running": .int(running)],
        ])
    }

    func download(_ file: String) async throws -> Response {
        let id = file.hasSuffix(".png") ? String(file.dropLast(4)) : file
        let expireUntil = faults.withLock { $0.expireResultsUntil }
        let (count, scenario, expired): (Int, String?, Bool) = state.withLock { s in
            s.downloads[id, default: 0] += 1
            let job = s.jobs[id]
            let ended = job.flatMap { Core.endedAt($0, now: .now) }
            let expired = expireUntil.map { until in ended.map { $0.at < until } ?? false } ?? false
            return (s.downloads[id]!, job?.scenario, expired)
        }
        if expired { return Self.json(404, ["error": .string("result \(id) has expired")]) }
        if count == 1, let delay = scenario.flatMap({ scenarios[$0]?.firstDownloadDelay }) {
            try await Task.sleep(for: delay)
        }
        let image = scenario.flatMap { scenarios[$0]?.result } ?? result
        return Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(bytes: image)))
    }

    private static func json(_ status: Int, _ body: JSONValue) -> Response {
        Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body.encodedText)))
    }
}

/// RunPod's gate in front of `/v2/...`: an unknown endpoint id is 404, a key not accepted 401.
private struct RunPodGate<Context: RequestContext>: RouterMiddleware {
    let endpoint: String
    let acceptedKeys: @Sendable () -> Set<String>?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let parts = request.uri.path.split(separator: "/")
        guard parts.first == "v2" else { return try await next(request, context) }
        if let acceptedKeys = acceptedKeys() {
            let header = request.headers[.authorization] ?? ""
            guard header.hasPrefix("Bearer "), acceptedKeys.contains(String(header.dropFirst(7))) else {
                return Response(status: .unauthorized, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "Unauthorized")))
            }
        }
        guard parts.count > 1, parts[1] == endpoint else {
            return Response(
                status: .notFound, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"endpoint not found"}"#)))
        }
        return try await next(request, context)
    }
}

/// The keys the stand-in accepts (nil: any), changeable while it runs.
private final class KeyRing: Sendable {
    let keys: Mutex<Set<String>?>
    init(_ keys: Set<String>?) { self.keys = Mutex(keys) }
}
