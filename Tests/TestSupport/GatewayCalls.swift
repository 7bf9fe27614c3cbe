import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

/// Calls to a gateway under test, whichever way they reach it: a whole system's gateway process
/// (`CycloramaSystem`), a gateway process of its own, or the gateway run in the test's process.
public protocol GatewayCalls: Sendable {
    /// The admin token the calls carry unless told otherwise.
    var token: String { get }
    /// Sends one request as it is (`path` after the gateway's origin) and returns the answer.
    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: [UInt8]?) async throws -> HTTPAnswer
}

extension GatewayCalls {
    /// Calls the gateway as the admin (or with `token`; "" sends no Authorization header).
    public func call(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], token: String? = nil
    ) async throws -> HTTPAnswer {
        var all = headers
        let bearer = token ?? self.token
        if !bearer.isEmpty { all.append(("Authorization", "Bearer \(bearer)")) }
        return try await send(method, path, headers: all, body: body)
    }

    public func call(_ method: HTTPMethod, _ path: String, json: String, headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await call(method, path, body: Array(json.utf8), headers: headers + [("Content-Type", "application/json")])
    }

    /// Uploads a raw image and returns the new media's id.
    public func upload(_ bytes: [UInt8]) async throws -> String {
        let answer = try await call(.POST, "/api/media", body: bytes, headers: [("Content-Type", "application/octet-stream")])
        guard answer.status == 201, let id = (try answer.json()["media"] as? [String: Any])?["id"] as? String else {
            throw FixtureError(message: "upload failed: \(answer.status) \(answer.text)")
        }
        return id
    }

    /// Uploads `bytes` as multipart/form-data (`query` after the path) and returns the answer.
    public func uploadForm(
        _ bytes: [UInt8], fileName: String = "photo.jpg", collection: String? = nil, query: String = ""
    ) async throws -> HTTPAnswer {
        let boundary = "cyclorama-test-\(UUID().uuidString)"
        var body = Array("--\(boundary)\r\n".utf8)
        if let collection {
            body += Array("Content-Disposition: form-data; name=\"collection\"\r\n\r\n\(collection)\r\n--\(boundary)\r\n".utf8)
        }
        body += Array("Content-Disposition: form-data; name=\"file\"; filename=\"\(fileName)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return try await call(.POST, "/api/media" + query, body: body, headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")])
    }
}

/// The gateway's OpenAPI document, as the gateway serves it, to check answers against.
public struct APIContract: Sendable {
    public let document: OpenAPIDocument

    /// Reads the document from `gateway` (served without a token, the file in the repository as is).
    public static func load(from gateway: some GatewayCalls) async throws -> APIContract {
        let served = try await gateway.call(.GET, "/api/openapi.json", token: "")
        #expect(served.status == 200, "the document is served without a token")
        let source = try Data(contentsOf: OpenAPIDocument.gatewayDocumentURL)
        #expect(Data(served.body) == source, "the gateway serves Services/api-gateway/Resources/openapi.json as is")
        return APIContract(document: try OpenAPIDocument(data: Data(served.body)))
    }

    /// Records an issue for every way `answer` differs from what the document says of `method path`.
    public func check(_ answer: HTTPAnswer, _ method: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let violations = try document.validate(responseBody: Data(answer.body), path: path, method: method, status: answer.status)
            #expect(violations.isEmpty, "\(method.uppercased()) \(path) \(answer.status): \(violations)\n\(answer.text)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(method.uppercased()) \(path) \(answer.status) is not in the document: \(error)\n\(answer.text)", sourceLocation: sourceLocation)
        }
    }
}

extension HTTPAnswer {
    /// `error.code` and `error.message` of a JSON error body.
    public var error: (code: String, message: String)? {
        guard let object = try? json(), let error = object["error"] as? [String: Any],
              let code = error["code"] as? String, let message = error["message"] as? String else { return nil }
        return (code, message)
    }
}

extension TestClientProtocol {
    /// Sends one request to a service run in process (`app.test(.router)`), given as the tests give
    /// requests to processes (NIO's method, header pairs), and answers as `HTTPProbe` does.
    public func send(_ method: HTTPMethod, _ uri: String, headers: [(String, String)], body: [UInt8]?) async throws -> HTTPAnswer {
        var fields = HTTPFields()
        for (name, value) in headers {
            guard let field = HTTPField.Name(name) else { throw FixtureError(message: "not a header name: \(name)") }
            fields.append(HTTPField(name: field, value: value))
        }
        guard let requestMethod = HTTPRequest.Method(method.rawValue) else { throw FixtureError(message: "not a method: \(method)") }
        let response = try await executeRequest(uri: uri, method: requestMethod, headers: fields, body: body.map { ByteBuffer(bytes: $0) })
        return HTTPAnswer(
            status: response.status.code,
            headers: response.headers.map { ($0.name.canonicalName, $0.value) },
            body: Array(buffer: response.body))
    }
}
