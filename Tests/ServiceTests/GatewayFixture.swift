import Foundation
import NIOHTTP1
import TestSupport

/// A real api-gateway process on its own database, media folder and admin token.
struct GatewayFixture {
    let process: ServiceProcess
    let database: TemporaryDatabase
    let token: String
    let mediaRoot: URL

    /// - Parameter environment: more variables for the gateway (e.g. its own broker virtual host).
    static func start(environment extra: [String: String] = [:]) async throws -> GatewayFixture {
        let database = try await TemporaryDatabase.create()
        let scratch = try TestEnvironment.scratchDirectory()
        let token = (0..<4).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "") }.joined()
        let tokenFile = scratch.appendingPathComponent("admin-token")
        try token.write(to: tokenFile, atomically: true, encoding: .utf8)
        let mediaRoot = scratch.appendingPathComponent("media")
        let process = try ServiceProcess("api-gateway", port: freePort(), environment: [
            "DATABASE_URL": database.url,
            "CYCLORAMA_ADMIN_TOKEN_FILE": tokenFile.path,
            "MEDIA_ROOT": mediaRoot.path,
            "NOTIFY_ALLOWED_HOSTS": "",
        ].merging(extra) { $1 })
        let fixture = GatewayFixture(process: process, database: database, token: token, mediaRoot: mediaRoot)
        guard await process.waitUntilHealthy(timeout: .seconds(60)) == 200 else {
            await fixture.stop()
            throw FixtureError(message: "api-gateway never became healthy; log:\n\(process.log())")
        }
        return fixture
    }

    var baseURL: String { "http://127.0.0.1:\(process.port)" }

    /// Calls the API as the admin (or with `token`, or with no Authorization header when `token` is "").
    func call(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], token: String? = nil
    ) async throws -> HTTPAnswer {
        var all = headers
        let bearer = token ?? self.token
        if !bearer.isEmpty { all.append(("Authorization", "Bearer \(bearer)")) }
        return try await HTTPProbe.send(method, baseURL + path, headers: all, body: body)
    }

    /// Uploads `bytes` as multipart/form-data (`query` after the path) and returns the answer.
    func upload(_ bytes: [UInt8], fileName: String = "photo.jpg", collection: String? = nil, query: String = "") async throws -> HTTPAnswer {
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

    func stop() async {
        _ = await process.stop()
        await database.drop()
        try? FileManager.default.removeItem(at: mediaRoot.deletingLastPathComponent())
    }
}
