import Database
import Foundation
import Imaging
import Logging
import PostgresNIO
import Testing
import TestSupport

/// Checks answers against the OpenAPI document the gateway serves.
struct APIContract {
    let document: OpenAPIDocument

    static func load(from system: CycloramaSystem) async throws -> APIContract {
        let served = try await system.call(.GET, "/api/openapi.json", token: "")
        #expect(served.status == 200, "the document is served without a token")
        let source = try Data(contentsOf: OpenAPIDocument.gatewayDocumentURL)
        #expect(Data(served.body) == source, "the gateway serves Services/api-gateway/Resources/openapi.json as is")
        return APIContract(document: try OpenAPIDocument(data: Data(served.body)))
    }

    /// Records an issue for every way `answer` differs from what the document says of `method path`.
    func check(_ answer: HTTPAnswer, _ method: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let violations = try document.validate(responseBody: Data(answer.body), path: path, method: method, status: answer.status)
            #expect(violations.isEmpty, "\(method.uppercased()) \(path) \(answer.status): \(violations)\n\(answer.text)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(method.uppercased()) \(path) \(answer.status) is not in the document: \(error)\n\(answer.text)", sourceLocation: sourceLocation)
        }
    }
}

extension RasterImage {
    /// Whether every pixel at least `margin` away from `box` ([x0, y0, x1, y1)) and above
    /// `above` (rows < above) is exactly `rgb` — the background away from the product and its shadow.
    func isUniform(
        _ rgb: (UInt8, UInt8, UInt8), awayFrom box: [Int], margin: Int, above: Int
    ) -> (ok: Bool, checked: Int, first: String?) {
        let flat = rgbOverWhite()
        var checked = 0
        for y in 0..<min(height, above) {
            for x in 0..<width {
                let near = x > box[0] - margin && x < box[2] + margin && y > box[1] - margin && y < box[3] + margin
                if near { continue }
                let i = (y * width + x) * 3
                checked += 1
                if flat[i] != rgb.0 || flat[i + 1] != rgb.1 || flat[i + 2] != rgb.2 {
                    return (false, checked, "(\(x), \(y)) is \(flat[i]),\(flat[i + 1]),\(flat[i + 2])")
                }
            }
        }
        return (true, checked, nil)
    }
}

extension HTTPAnswer {
    /// `error.code` and `error.message` of a JSON error body.
    var error: (code: String, message: String)? {
        guard let object = try? json(), let error = object["error"] as? [String: Any],
              let code = error["code"] as? String, let message = error["message"] as? String else { return nil }
        return (code, message)
    }
}
