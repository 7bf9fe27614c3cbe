import Database
import Hummingbird
import ServiceCore
import ServiceSupport

/// Requires `Authorization: Bearer <token>` of an ADMIN token on every route behind it.
///
/// 401 when the token is missing or unknown, 403 when it is valid but not ADMIN. Tokens are looked up
/// by their SHA-256 (the plaintext is never stored), so a lookup leaks nothing through timing.
///
/// Guessing is made slow: every 401 takes a token from the client address's bucket in `failures`,
/// and while that bucket is empty the address gets 429 with `Retry-After` before its token is even
/// looked at (`API_AUTH_FAILURE_BURST` failures at once, then one per `API_AUTH_FAILURE_REFILL_SECONDS`).
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext
    let tokens: APITokenStore
    let failures: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let client = context.clientKey
        if let wait = failures.wait(client) {
            var error = APIError.tooManyRequests(
                "too many requests with a missing or wrong API token from \(context.clientAddress); try again later",
                code: "too_many_auth_failures", retryAfter: wait)
            error.headers = failures.headers(client)
            throw error
        }
        // A 401 says how many more the address may have before the 429s (`RateLimit-*`).
        func refuse(_ message: String) -> APIError {
            _ = failures.take(client)
            var error = APIError.unauthorized(message)
            error.headers = failures.headers(client)
            return error
        }
        guard let header = request.headers[.authorization] else {
            throw refuse("missing Authorization header; send `Authorization: Bearer <admin token>`")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw refuse("the Authorization header must be `Bearer <token>`")
        }
        guard let role = try await tokens.role(for: String(parts[1])) else {
            throw refuse("unknown or revoked API token")
        }
        guard role == "ADMIN" else {
            throw APIError.forbidden("this API needs an ADMIN token; yours has the role \(role)")
        }
        return try await next(request, context)
    }
}
