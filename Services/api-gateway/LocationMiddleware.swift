import Foundation
import Hummingbird

/// `Location` on what a POST creates (RFC 9110): 201 of an upload → the media, of an export → its
/// signed archive, 202 of a generation → its status, of a batch → the batch, of variations → the
/// media's variations. Derived from the
/// answer's own body, so a replayed answer (`Idempotency-Key`) carries it too; it sits outside the
/// idempotency middleware.
struct LocationMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard request.method == .post, [201, 202].contains(response.status.code), response.headers[.location] == nil else {
            return response
        }
        let (text, isJSON, bytes) = try await IdempotencyMiddleware<Context>.collect(response)
        response.body = .init(byteBuffer: bytes)
        guard isJSON, let body = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let location = Self.location(path: request.uri.path, body: body)
        else { return response }
        response.headers[.location] = location
        return response
    }

    /// Where the thing a POST to `path` created lives, from its answer `body`; nil when it made none.
    static func location(path: String, body: [String: Any]) -> String? {
        let segments = path.split(separator: "/")
        switch (segments.count, segments.dropFirst().first, segments.dropFirst(2).first) {
        case (2, "media", _):
            return ((body["media"] as? [String: Any])?["id"] as? String).map { "/api/media/\($0)" }
        case (4, "ai-image", "generate"):
            return (body["jobId"] as? String).map { "/api/ai-image/status/\($0)" }
        case (3, "ai-image", "batch"), (5, "ai-image", "batch") where segments.last == "retry":
            return (body["batchId"] as? String).map { "/api/ai-image/batch/\($0)" }
        case (2, "exports", _):
            return (body["export"] as? [String: Any])?["url"] as? String
        case (4, "ai-image", "variations"):
            return "/api/ai-image/variations/\(segments[3])"
        default:
            return nil
        }
    }
}
