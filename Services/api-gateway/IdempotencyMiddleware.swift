import Foundation
import Crypto
import Database
import HTTPTypes
import Hummingbird
import ServiceCore
import ServiceSupport

/// `Idempotency-Key` on every POST behind it: the first request with a key runs and its answer is
/// remembered (24 h); a repeat gets that answer (`Idempotent-Replayed: true`) and starts nothing.
///
/// Keys belong to the caller: they are scoped by the API token (its digest), so two systems that
/// key their requests the same way (order numbers) never get each other's answers. The key is
/// claimed before the request runs, so two concurrent requests with one key cannot both start (the
/// second gets 409 `idempotency_in_progress`); the same key with another method, path, query,
/// content type or body is 409 `idempotency_conflict`; a server error (5xx) releases the key so the
/// request can be retried, and so does a refusal that says nothing about the request itself (402
/// budget spent, 409 generation turned off, 423, 429): the same request may succeed once the
/// setting or the limit allows it. Only JSON answers are remembered; the request body is read (up
/// to 16 MB) to fingerprint it.
struct IdempotencyMiddleware<Context: RequestContext>: RouterMiddleware {
    let store: IdempotencyStore
    static var header: HTTPField.Name { HTTPField.Name("Idempotency-Key")! }
    /// Set on the request the handlers see (never taken from the client): which claim of the key
    /// this request runs under, so that what it creates is derived from the key and the claim
    /// (``GenerationIntake/ids(for:)``) — the same when an abandoned claim is taken over, new when
    /// the key is used again after its record expired.
    static var claimHeader: HTTPField.Name { HTTPField.Name("Cyclorama-Idempotency-Claim")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = Self.request(request, claim: nil)
        guard request.method == .post, let key = request.headers[Self.header] else {
            return try await next(request, context)
        }
        guard (1...200).contains(key.count) else {
            throw APIError.badRequest("Idempotency-Key must be 1-200 characters", code: "invalid_field")
        }
        let body = try await request.collectBody(upTo: 16 << 20)
        var fingerprint = SHA256()
        fingerprint.update(data: Array("\(request.method.rawValue) \(request.uri.path)?\(request.uri.query ?? "")\n".utf8))
        for name in [HTTPField.Name.contentType, HTTPField.Name("Content-Disposition")!] {
            fingerprint.update(data: Array("\(name): \(request.headers[name] ?? "")\n".utf8))
        }
        fingerprint.update(data: Array(buffer: body))
        let digest = Digest.hex(fingerprint.finalize())
        let scope = Self.scope(of: request)
        switch try await store.claim(scope: scope, key: key, requestSHA256: digest) {
        case .replay(let status, let json):
            return Response(
                status: HTTPResponse.Status(code: status),
                headers: [.contentType: "application/json; charset=utf-8", HTTPField.Name("Idempotent-Replayed")!: "true"],
                body: .init(byteBuffer: ByteBuffer(string: json)))
        case .conflict:
            throw APIError(.conflict, code: "idempotency_conflict",
                           message: "this Idempotency-Key was used with a different request; use a new key")
        case .inProgress:
            throw APIError(.conflict, code: "idempotency_in_progress",
                           message: "a request with this Idempotency-Key is still being handled; retry shortly")
        case .proceed(let claim, let take):
            if let claim { request = Self.request(request, claim: claim) }
            let response: Response
            do {
                response = try await next(request, context)
            } catch let error as APIError where error.status.code < 500 && !Self.passing.contains(Int(error.status.code)) {
                // A client error is this request's answer: replay it too.
                try? await store.finish(scope: scope, key: key, take: take, status: Int(error.status.code), body: error.jsonBody)
                throw error
            } catch {
                // Nothing was done (or it failed): the key is free for a retry.
                try? await store.release(scope: scope, key: key, take: take)
                throw error
            }
            guard response.status.code < 500, !Self.passing.contains(Int(response.status.code)) else {
                try? await store.release(scope: scope, key: key, take: take)
                return response
            }
            let (json, replayable, bytes) = try await Self.collect(response)
            if replayable {
                // The work is done: if remembering the answer fails, keep the claim (a repeat then
                // gets 409 for a while) rather than free the key and let a repeat do the work twice.
                try? await store.finish(scope: scope, key: key, take: take, status: Int(response.status.code), body: json)
            } else {
                try? await store.release(scope: scope, key: key, take: take)
            }
            var answer = response
            answer.body = .init(byteBuffer: bytes) // as sent: a body that is not text stays intact
            return answer
        }
    }

    /// `request` with its ``claimHeader`` set to `claim` (none: removed).
    static func request(_ request: Request, claim: UUID?) -> Request {
        guard claim != nil || request.headers[claimHeader] != nil else { return request }
        var head = request.head
        head.headerFields[claimHeader] = claim?.uuidString.lowercased()
        return Request(head: head, body: request.body)
    }

    /// Refusals about the moment, not the request (budget spent, generation turned off, locked,
    /// rate limited): not remembered, so the same request may succeed later under the same key.
    static var passing: Set<Int> { [402, 409, 423, 429] }

    /// Whose keys these are: the caller's API token, as a digest (the token itself is never
    /// stored). Requests without one do not get this far (the token check runs first).
    static func scope(of request: Request) -> String {
        let token = request.headers[.authorization] ?? ""
        return "POST " + Digest.hex(SHA256.hash(data: Array(token.utf8))).prefix(32)
    }

    /// The response's body as text, whether it is JSON (only JSON answers are remembered), and as bytes.
    static func collect(_ response: Response) async throws -> (String, Bool, ByteBuffer) {
        let sink = CollectingWriter.Sink()
        try await response.body.write(CollectingWriter(sink: sink))
        let text = String(buffer: sink.buffer)
        let isJSON = response.headers[.contentType]?.hasPrefix("application/json") ?? false
        return (text, isJSON && !text.isEmpty, sink.buffer)
    }
}

/// Gathers a response body in memory (into `sink`: the writer itself is consumed by the body).
struct CollectingWriter: ResponseBodyWriter {
    final class Sink {
        var buffer = ByteBuffer()
    }

    let sink: Sink

    mutating func write(_ part: ByteBuffer) async throws {
        var part = part
        sink.buffer.writeBuffer(&part)
    }

    mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        for part in buffers { try await write(part) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
