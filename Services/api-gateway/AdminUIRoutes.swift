import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore
import ServiceSupport

/// The admin media manager: plain HTML, CSS and JavaScript modules from `Resources/web`, served at
/// `/` (the page) and `/ui/<file>` (its modules and styles). No build step: the files are the app.
/// Everything it shows comes from the public API with the token the user signs in with, so these
/// routes need no token themselves.
enum AdminUIRoutes {
    /// File name → (content type, bytes), read once from the bundle.
    static let files: [String: (type: String, bytes: [UInt8])] = {
        guard let folder = Bundle.module.url(forResource: "web", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path)
        else { return [:] }
        var files: [String: (String, [UInt8])] = [:]
        for name in names {
            guard let type = contentType(of: name),
                  let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path)
            else { continue }
            files[name] = (type, Array(data))
        }
        return files
    }()

    static func contentType(of name: String) -> String? {
        switch (name as NSString).pathExtension {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: nil
        }
    }

    /// Only our own scripts and styles; images from the API come as blob: URLs, icons as data: URLs.
    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:",
        "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    static func add(to router: Router<ServiceRequestContext>) {
        router.get("/") { _, _ in try serve("index.html") }
        router.get("/ui/:file") { _, context in try serve(context.parameters.get("file") ?? "") }
    }

    static func serve(_ name: String) throws -> Response {
        guard let file = files[name] else {
            throw APIError.notFound(files.isEmpty ? "the admin UI is not installed with this build" : "no UI file \(name.prefix(64))")
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: file.type, .cacheControl: "no-cache", .contentSecurityPolicy: contentSecurityPolicy,
                .xContentTypeOptions: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
