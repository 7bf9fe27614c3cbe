import Foundation
import Hummingbird
import NIOCore
import Timing

/// An HTTP error with Cyclorama's JSON body: `{"error": {"code": "...", "message": "..."}}`.
///
/// Every 4xx/5xx the services answer goes through this type, so clients can rely on one shape.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code such as `not_found` or `invalid_field`.
    public var code: String
    /// A sentence for people: what was wrong and, where possible, how to fix it.
    public var message: String
    /// `Retry-After` seconds when the one for the status (``retryAfter``) is not right.
    public var retryAfterSeconds: Int?
    /// More headers for the answer (e.g. a limit's `RateLimit-*`).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// `Retry-After` (seconds) for the statuses that invite a retry: 503 (a dependency is away, worth
    /// trying again in a few seconds) and 429 (a queue or limit is full).
    public var retryAfter: Int? {
        if let retryAfterSeconds { return retryAfterSeconds }
        switch status.code {
        case 503: return 5
        case 429: return 2
        default: return nil
        }
    }

    public static func notFound(_ message: String) -> APIError { .init(.notFound, code: "not_found", message: message) }
    public static func badRequest(_ message: String, code: String = "bad_request") -> APIError {
        .init(.badRequest, code: code, message: message)
    }
    public static func unauthorized(_ message: String) -> APIError { .init(.unauthorized, code: "unauthorized", message: message) }
    public static func forbidden(_ message: String) -> APIError { .init(.forbidden, code: "forbidden", message: message) }
    /// 429 with `Retry-After`: the wait rounded up to whole seconds (at least 1).
    public static func tooManyRequests(_ message: String, code: String = "rate_limited", retryAfter wait: Duration) -> APIError {
        let seconds = Int(wait.timeInterval.rounded(.up))
        return .init(.tooManyRequests, code: code, message: message, retryAfterSeconds: max(1, seconds))
    }
    public static func unavailable(_ message: String) -> APIError {
        .init(.serviceUnavailable, code: "unavailable", message: message)
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(Body(error: .init(code: code, message: message)))
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let seconds = retryAfter { headers[.retryAfter] = String(seconds) }
        headers.append(contentsOf: self.headers)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error a route throws into the JSON error shape; unknown errors become a 500 whose
/// body says nothing about internals (they are logged instead).
public struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whether an error means a dependency is away (a 503 worth retrying) rather than a bug. The
    /// services on the broker pass ServiceSupport's `Outage.isOutage`; a service without server
    /// clients has no such errors.
    let isOutage: @Sendable (any Error) -> Bool

    public init(isOutage: @escaping @Sendable (any Error) -> Bool = { _ in false }) {
        self.isOutage = isOutage
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        } catch let error as NIOTooManyBytesError {
            // A route collects at most what it can use; more is the client's mistake, not ours.
            let limit = error.maxBytes.map { $0 == 0 ? "no body" : "at most \($0) bytes" } ?? "a smaller body"
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "this route takes \(limit)")
        } catch let error where isOutage(error) {
            // PostgreSQL, Redis or the broker is away: worth trying again shortly, not a bug.
            context.logger.warning("a dependency is away", metadata: ["error": "\(error)"])
            throw APIError.unavailable("a dependency of this service (database, Redis or broker) is not answering; try again shortly")
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            throw APIError(.internalServerError, code: "internal", message: "internal error; see the service log")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 429: "too_many_requests"
        default: status.code >= 500 ? "internal" : "error"
        }
    }
}
