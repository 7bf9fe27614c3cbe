import Foundation
import MultipartKit
import NIOCore

/// The file part of a `multipart/form-data` upload (RFC 7578), and the plain fields beside it.
///
/// The framing is read by vapor's multipart-kit (`MultipartParser`); this keeps only what uploads
/// need: the first part that carries a `filename`, and text fields such as `collection`. The whole
/// body is already in memory (it is size-capped before parsing).
struct MultipartForm {
    var fileName: String?
    var fileBytes: [UInt8]?
    var fields: [String: String] = [:]

    /// Nil when the body is not well-formed multipart for `boundary`.
    init?(body: [UInt8], boundary: String) {
        guard !boundary.isEmpty, boundary.utf8.count <= 200 else { return nil }
        var parts: [(headers: [(String, String)], body: [UInt8])] = []
        var headers: [(String, String)] = []
        var content: [UInt8] = []
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { buffer in content += buffer.readableBytesView }
        parser.onPartComplete = {
            parts.append((headers, content))
            headers = []
            content = []
        }
        do { try parser.execute(body) } catch { return nil }
        guard !parts.isEmpty else { return nil }
        for part in parts {
            guard let disposition = part.headers.first(where: { $0.0.lowercased() == "content-disposition" })?.1 else { continue }
            if let fileName = Self.parameter("filename", in: disposition) {
                if fileBytes == nil {
                    self.fileName = fileName
                    self.fileBytes = part.body
                }
            } else if let name = Self.parameter("name", in: disposition) {
                fields[name] = String(decoding: part.body, as: UTF8.self)
            }
        }
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type.
    static func boundary(fromContentType contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        return parameter("boundary", in: contentType)
    }

    /// A header parameter (`name="value"` or `name=value`); the value may hold `=`.
    private static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let pair = piece.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].lowercased() == name else { continue }
            var value = String(pair[1])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}
