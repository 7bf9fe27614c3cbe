import Foundation
import Hummingbird
import ServiceCore
import ServiceSupport

/// The methods each path of the OpenAPI document takes, read from the document itself, so a
/// request with another method on a known path gets 405 with `Allow` (RFC 9110) instead of 404.
struct AllowedMethods: Sendable {
    private let routes: [(segments: [Substring], methods: [String])]

    init(openAPI bytes: [UInt8]?) {
        let verbs = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        guard let bytes, let document = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let paths = document["paths"] as? [String: Any]
        else {
            routes = []
            return
        }
        routes = paths.compactMap { path, item in
            guard let operations = item as? [String: Any] else { return nil }
            let methods = verbs.filter { operations[$0] != nil }.map { $0.uppercased() }
            return methods.isEmpty ? nil : (path.split(separator: "/"), methods)
        }
    }

    /// The methods `path` takes (a `{parameter}` segment matches any one segment); empty for a path
    /// the document does not describe. As in the router, a literal segment wins over a parameter:
    /// `/api/media/trash` takes what that path takes, not what `/api/media/{id}` does.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")
        var best: (parameters: Int, methods: Set<String>)?
        for route in routes where route.segments.count == segments.count {
            var parameters = 0
            let matches = zip(route.segments, segments).allSatisfy { pattern, segment in
                if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                    parameters += 1
                    return true
                }
                return pattern == segment
            }
            guard matches else { continue }
            if best == nil || parameters < best!.parameters {
                best = (parameters, Set(route.methods))
            } else if parameters == best!.parameters {
                best!.methods.formUnion(route.methods)
            }
        }
        return (best?.methods ?? []).sorted()
    }
}

/// Answers a request the router has no route for with 405 and `Allow` when its path takes other
/// methods; everything else (a path nobody serves, a handler's own 404) passes through unchanged.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // Only the router throws HTTPError for a missing route; handlers throw APIError.
            let path = request.uri.path
            let methods = allowed.methods(for: path)
            guard !methods.isEmpty, !methods.contains(request.method.rawValue) else { throw error }
            let refusal = APIError(
                .methodNotAllowed, code: "method_not_allowed",
                message: "\(request.method.rawValue) is not a method of \(path); it takes \(methods.joined(separator: ", "))")
            var response = try refusal.response(from: request, context: context)
            response.headers[.allow] = methods.joined(separator: ", ")
            return response
        }
    }
}
