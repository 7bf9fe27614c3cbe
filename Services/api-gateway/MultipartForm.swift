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
        let body = Self.normalised(body, boundary: boundary)
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
            let parameters = HeaderParameters(disposition)
            if parameters.has("filename") {
                // The file part, even when its name cannot be read (an unknown charset).
                if fileBytes == nil {
                    self.fileName = parameters["filename"]
                    self.fileBytes = part.body
                }
            } else if let name = parameters["name"] {
                fields[name] = String(decoding: part.body, as: UTF8.self)
            }
        }
    }

    /// What multipart-kit would refuse although clients send it, made into what it reads:
    /// spaces and tabs after a boundary delimiter (RFC 2046's transport padding) are dropped, and a
    /// header block that is not UTF-8 (an older client's ISO-8859-1 file name) is read as ISO-8859-1
    /// and written as UTF-8 — multipart-kit would hand such a header over as "". Only delimiter
    /// lines and the header blocks after them change; a part's content never does (the delimiter
    /// cannot occur inside one), and a body with neither comes back as it was.
    static func normalised(_ body: [UInt8], boundary: String) -> [UInt8] {
        let delimiter = Array("--\(boundary)".utf8)
        let cr: UInt8 = 13, lf: UInt8 = 10, dash: UInt8 = 45
        var out: [UInt8] = []
        var copied = 0
        var from = 0
        while let start = delimiterLine(delimiter, in: body, from: from) {
            let after = start + delimiter.count
            if after + 1 < body.count, body[after] == dash, body[after + 1] == dash { break }
            var lineEnd = after
            while lineEnd < body.count, body[lineEnd] == 32 || body[lineEnd] == 9 { lineEnd += 1 }
            guard lineEnd + 1 < body.count, body[lineEnd] == cr, body[lineEnd + 1] == lf else {
                from = after
                continue
            }
            let headersStart = lineEnd + 2
            // The header block ends at the first empty line (at once when the part has no headers).
            var headersEnd = headersStart
            if !(headersStart + 1 < body.count && body[headersStart] == cr && body[headersStart + 1] == lf) {
                guard let blank = find([cr, lf, cr, lf], in: body, from: headersStart) else { break }
                headersEnd = blank
            }
            let headers = body[headersStart..<headersEnd]
            let padded = lineEnd > after
            let latin1 = String(validating: headers, as: UTF8.self) == nil
            if padded || latin1 {
                out.reserveCapacity(body.count + headers.count)
                out += body[copied..<after]
                out += [cr, lf]
                if latin1 {
                    for byte in headers {
                        if byte < 0x80 { out.append(byte) } else { out += [0xC0 | byte >> 6, 0x80 | byte & 0x3F] }
                    }
                } else {
                    out += headers
                }
                copied = headersEnd
            }
            from = headersEnd
        }
        if copied == 0 { return body }
        out += body[copied...]
        return out
    }

    /// Where the next `delimiter` at the start of a line (or of the body) begins, from `from` on.
    private static func delimiterLine(_ delimiter: [UInt8], in body: [UInt8], from: Int) -> Int? {
        var index = from
        while let found = find(delimiter, in: body, from: index) {
            if found == 0 || (found >= 2 && body[found - 2] == 13 && body[found - 1] == 10) { return found }
            index = found + 1
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in body: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, from <= body.count - needle.count else { return nil }
        var index = from
        while index <= body.count - needle.count {
            guard let hit = body[index...(body.count - needle.count)].firstIndex(of: first) else { return nil }
            if body[hit..<(hit + needle.count)].elementsEqual(needle) { return hit }
            index = hit + 1
        }
        return nil
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type.
    static func boundary(fromContentType contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        return HeaderParameters(contentType)["boundary"]
    }
}
