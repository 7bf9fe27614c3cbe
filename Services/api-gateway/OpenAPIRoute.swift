import Foundation
import Hummingbird
import ServiceCore
import ServiceSupport

/// `GET /api/openapi.json`: the OpenAPI 3 document of this API (`Resources/openapi.json`), which the
/// tests check the real responses against.
enum OpenAPIRoute {
    static let bytes: [UInt8]? = Bundle.module.url(forResource: "openapi", withExtension: "json")
        .flatMap { FileManager.default.contents(atPath: $0.path) }
        .map(Array.init)

    @Sendable static func serve(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let bytes else {
            throw APIError(.internalServerError, code: "openapi_missing", message: "the OpenAPI document is not installed with this build")
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "public, max-age=300"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
