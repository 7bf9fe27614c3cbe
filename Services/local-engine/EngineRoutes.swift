import RunPod
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceCore
import Timing

/// The RunPod serverless protocol under `/v2/{endpointId}/` (any endpoint id is accepted), plus
/// `GET /v2/{endpointId}/results/{id}.{format}` serving finished images (no key needed: the id is
/// an unguessable UUID, like RunPod's signed result URLs).
struct EngineRoutes: Sendable {
    let configuration: EngineConfiguration
    let store: JobStore
    let source: ImageSource
    let renderer: any ImageRenderer
    let results: ResultFiles

    /// `/run` and `/runsync` with this header are idempotent: the same key gets the same job while it
    /// lives (an extension of RunPod's protocol, which has no such key; RunPod ignores the header).
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!

    /// The longest `?wait=` a `/runsync` may ask for.
    static let maxWait = 300_000
    static let defaultWait = 90_000

    func register(on router: Router<BasicRequestContext>) {
        router.group("v2/:endpointId").get("results/:file", use: result)
        let api = router.group("v2/:endpointId").add(middleware: BearerKeyMiddleware(key: configuration.apiKey))
        api.post("run") { request, context in
            let view = try await submit(request, context: context, bodyLimit: configuration.runBodyLimit)
            return try Self.json(JobReceipt(id: view.body.id, status: view.body.status))
        }
        api.post("runsync", use: runSync)
        api.get("status/:id") { _, context in
            guard let view = await store.view(id: try context.parameters.require("id")) else { throw Self.jobNotFound(context) }
            return try Self.json(await inlined(view))
        }
        api.post("cancel/:id") { _, context in
            guard let view = await store.cancel(id: try context.parameters.require("id")) else { throw Self.jobNotFound(context) }
            return try Self.json(JobReceipt(id: view.body.id, status: view.body.status))
        }
        api.post("retry/:id") { _, context in
            do {
                let view = try await store.retry(id: try context.parameters.require("id"))
                return try Self.json(JobReceipt(id: view.body.id, status: view.body.status))
            } catch let rejection as JobStore.Rejection {
                throw Self.apiError(rejection, context: context)
            }
        }
        // RunPod's /stream (GET as its SDK asks, POST as its docs show): the chunks not handed out yet.
        let stream: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, context in
            let id = try context.parameters.require("id")
            guard let (status, chunks) = await store.takeStream(id: id) else { throw Self.jobNotFound(context) }
            return try Self.json(StreamBody(id: id, status: status, stream: chunks))
        }
        api.get("stream/:id", use: stream)
        api.post("stream/:id", use: stream)
        api.post("purge-queue") { _, _ in
            try Self.json(PurgeBody(removed: await store.purgeQueue()))
        }
        api.get("health") { _, _ in
            let (jobs, workers) = await store.health()
            return try Self.json(EngineHealth(jobs: jobs, workers: workers, renderer: renderer.description, queueLimit: configuration.queueLimit))
        }
    }

    // MARK: Handlers

    @Sendable func runSync(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var wait = Self.defaultWait
        if let raw = request.uri.queryParameters.get("wait") {
            guard let value = Int(raw), (0...Self.maxWait).contains(value) else {
                throw APIError.badRequest("wait: must be milliseconds in 0...\(Self.maxWait); got \"\(raw)\"", code: "invalid_field")
            }
            wait = value
        }
        let submitted = try await submit(request, context: context, bodyLimit: configuration.runSyncBodyLimit)
        let id = submitted.body.id
        if !submitted.body.status.isTerminal {
            let store = self.store
            _ = await withTimeout(.milliseconds(wait)) { await store.waitUntilSettled(id: id) }
        }
        // Gone only if its TTL was shorter than the wait: answer what RunPod would for an expired job.
        guard let view = await store.view(id: id) else { throw Self.jobNotFound(context, id: id) }
        return try Self.json(await inlined(view))
    }

    @Sendable func result(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let file = try context.parameters.require("file")
        let parts = file.split(separator: ".", maxSplits: 1).map(String.init)
        // A job this process knows, or one finished before a restart whose file is still on disk.
        let known = await store.resultKey(id: parts.count == 2 ? parts[0] : "")
        let key: ResultKey? = if let known { known } else if parts.count == 2 { await results.find(id: parts[0], format: parts[1]) } else { nil }
        guard parts.count == 2, let key, key.format == parts[1], let bytes = await results.read(key)
        else { throw APIError.notFound("no result \(file) (unknown, not completed, or expired)") }
        return Response(
            status: .ok,
            headers: [.contentType: "image/\(key.format)", .cacheControl: "private, max-age=1800"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Reads, validates and queues a `/run` or `/runsync` body. Malformed bodies are 400s; a bad
    /// `input` makes a job that is FAILED at once with the reason.
    private func submit(_ request: Request, context: BasicRequestContext, bodyLimit: Int) async throws -> JobView {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: bodyLimit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "the body exceeds \(bodyLimit >> 20) MB")
        }
        let submission: JobSubmission
        do {
            submission = try JSONDecoder().decode(JobSubmission.self, from: buffer)
        } catch {
            throw APIError.badRequest("the body must be JSON {\"input\": {...}, \"webhook\"?, \"policy\"?}: \(Self.describe(error))", code: "invalid_body")
        }
        if let webhook = submission.webhook {
            guard let url = URL(string: webhook), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  let host = url.host, !host.isEmpty
            else {
                throw APIError.badRequest("webhook: must be an http(s) URL; got \"\(webhook.prefix(200))\"", code: "invalid_field")
            }
            // Decided from the URL alone, before the job exists: nothing is ever sent elsewhere.
            let port = url.connectionPort
            if let refusal = await configuration.webhookHosts.refusal(
                host: host, port: port, variable: "LOCAL_ENGINE_WEBHOOK_ALLOWED_HOSTS", resolve: source.resolve) {
                throw refusal.isTransient
                    ? APIError.unavailable("webhook: \(refusal.reason); try again")
                    : APIError.badRequest("webhook: \(refusal.reason)", code: "invalid_field")
            }
        }
        if let policy = submission.policy {
            guard policy.executionTimeout > 0 else {
                throw APIError.badRequest("policy.executionTimeout: must be a positive number of milliseconds", code: "invalid_field")
            }
            guard policy.ttl > 0 else { throw APIError.badRequest("policy.ttl: must be a positive number of milliseconds", code: "invalid_field") }
        }
        let options: Result<StudioShotInput, JobFailure> = Result { () throws(JobFailure) in
            let options: StudioShotInput
            do throws(StudioShotInput.Invalid) { options = try StudioShotInput(parsing: submission.input) } catch { throw JobFailure(.invalidInput, error.message) }
            try source.validate(options.image)
            return options
        }
        let endpointId = try context.parameters.require("endpointId")
        let key = request.headers[Self.idempotencyKey].map { String($0.prefix(200)) }
        do {
            return try await store.submit(
                submission: submission, options: options, endpointId: endpointId,
                baseURL: baseURL(request), requestBytes: buffer.readableBytes, idempotencyKey: key?.isEmpty == true ? nil : key)
        } catch {
            throw Self.apiError(error, context: context)
        }
    }

    // MARK: Helpers

    private func baseURL(_ request: Request) -> String {
        if let url = configuration.publicURL { return url }
        let authority = request.head.authority ?? "\(configuration.service.httpHost):\(configuration.service.httpPort)"
        return "http://\(authority)"
    }

    /// Fills `output.image_base64` from the result file when the job asked for it.
    private func inlined(_ view: JobView) async -> JobStatusBody {
        var body = view.body
        if let key = view.inlineImage, let bytes = await results.read(key) {
            body.output?.imageBase64 = Data(bytes).base64EncodedString()
        }
        return body
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func jobNotFound(_ context: BasicRequestContext, id: String? = nil) -> APIError {
        let id = id ?? context.parameters.get("id") ?? "?"
        return APIError.notFound("job \(id) not found (unknown, or expired: results are kept for a limited time)")
    }

    static func apiError(_ rejection: JobStore.Rejection, context: BasicRequestContext) -> APIError {
        switch rejection {
        case .queueFull(let reason): APIError(.tooManyRequests, code: "queue_full", message: reason)
        case .notFound: jobNotFound(context)
        case .notRetryable(let status):
            APIError.badRequest("only FAILED or TIMED_OUT jobs can be retried; this one is \(status.rawValue)", code: "not_retryable")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) must be \(type)"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// Checks `Authorization: Bearer <key>` when a key is configured (constant-time comparison).
struct BearerKeyMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let key: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let token = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : ""
        guard Digest.constantTimeEquals(token.utf8, key.utf8) else {
            throw APIError.unauthorized("missing or wrong API key: send Authorization: Bearer <LOCAL_ENGINE_API_KEY>")
        }
        return try await next(request, context)
    }
}
