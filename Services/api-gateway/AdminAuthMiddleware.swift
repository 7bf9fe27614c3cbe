import Database
import Hummingbird
import ServiceCore
import ServiceSupport

/// Requires `Authorization: Bearer <token>` of an ADMIN token on every route behind it.
///
/// 401 when the token is missing or unknown, 403 when it is valid but not ADMIN. Tokens are looked up
/// by their SHA-256 (the plaintext is never stored), so a lookup leaks nothing through timing.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: APITokenStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("missing Authorization header; send `Authorization: Bearer <admin token>`")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw APIError.unauthorized("the Authorization header must be `Bearer <token>`")
        }
        guard let role = try await tokens.role(for: String(parts[1])) else {
            throw APIError.unauthorized("unknown or revoked API token")
        }
        guard role == "ADMIN" else {
            throw APIError.forbidden("this API needs an ADMIN token; yours has the role \(role)")
        }
        return try await next(request, context)
    }
}
