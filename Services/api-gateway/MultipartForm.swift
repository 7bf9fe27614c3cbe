import Foundation

/// The file part of a `multipart/form-data` upload (RFC 7578), and the plain fields beside it.
///
/// Only what uploads need: the first part that carries a `filename`, and text fields such as
/// `collection`. The whole body is already in memory (it is size-capped before parsing).
struct MultipartForm {
    var fileName: String?
    var fileBytes: [UInt8]?
    var fields: [String: String] = [:]

    /// Nil when the body is not well-formed multipart for `boundary`.
    init?(body: [UInt8], boundary: String) {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [ArraySlice<UInt8>] = []
        var searchFrom = 0
        var previousEnd: Int?
        while let start = Self.find(delimiter, in: body, from: searchFrom) {
            if let previousEnd { parts.append(body[previousEnd..<max(previousEnd, start - 2)]) }  // drop CRLF before delimiter
            var cursor = start + delimiter.count
            if cursor + 1 < body.count, body[cursor] == UInt8(ascii: "-"), body[cursor + 1] == UInt8(ascii: "-") { break }
            if cursor + 1 < body.count, body[cursor] == 13, body[cursor + 1] == 10 { cursor += 2 }
            previousEnd = cursor
            searchFrom = cursor
        }
        guard !parts.isEmpty else { return nil }
        for part in parts {
            guard let headerEnd = Self.find(Array("\r\n\r\n".utf8), in: Array(part), from: 0) else { return nil }
            let partBytes = Array(part)
            let headers = String(decoding: partBytes[..<headerEnd], as: UTF8.self)
            let content = Array(partBytes[(headerEnd + 4)...])
            guard let disposition = headers.split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("content-disposition:")
            }) else { continue }
            let name = Self.parameter("name", in: String(disposition))
            if let fileName = Self.parameter("filename", in: String(disposition)) {
                if fileBytes == nil {
                    self.fileName = fileName
                    self.fileBytes = content
                }
            } else if let name {
                fields[name] = String(decoding: content, as: UTF8.self)
            }
        }
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type.
    static func boundary(fromContentType contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        return parameter("boundary", in: contentType)
    }

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

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
