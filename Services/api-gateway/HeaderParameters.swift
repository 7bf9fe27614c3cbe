import Foundation

/// The parameters of a header such as `Content-Disposition` or `Content-Type` (RFC 9110 §5.6.6):
/// `form-data; name=token; filename="a quoted \"string\"; with a semicolon"`, and RFC 8187's
/// extended form `filename*=UTF-8''na%C3%AFve.jpg`, which wins over the plain one when both are
/// given (RFC 6266 §4.3: the plain one is the fallback for older readers). Names are
/// case-insensitive; the first of two parameters with one name counts.
///
/// One reader for every header the gateway takes parameters from: splitting on `;` cut a quoted
/// file name that holds one, kept a quoted string's backslashes, and did not know `filename*`
/// (a raw upload of `naïve.jpg` by a client that follows RFC 6266 had no name).
struct HeaderParameters: Sendable {
    private var values: [String: String] = [:]
    /// The names given, extended or not, whether or not their value could be read.
    private var names: Set<String> = []

    init(_ header: String) {
        var rest = Substring(header)
        while !rest.isEmpty {
            let segmentEnd = Self.endOfSegment(rest)
            let segment = rest[..<segmentEnd]
            rest = segmentEnd < rest.endIndex ? rest[rest.index(after: segmentEnd)...] : ""
            guard let equals = segment.firstIndex(of: "=") else { continue } // the value before the parameters
            let name = segment[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let raw = segment[segment.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, values[name] == nil else { continue }
            names.insert(name.hasSuffix("*") ? String(name.dropLast()) : name)
            if name.hasSuffix("*") {
                // An empty or undecodable extended value leaves the plain one to speak.
                if let decoded = Self.extendedValue(raw), !decoded.isEmpty { values[name] = decoded }
            } else {
                values[name] = Self.unquoted(raw)
            }
        }
    }

    /// The parameter `name` (its extended form first), nil when absent.
    subscript(name: String) -> String? {
        let name = name.lowercased()
        return values[name + "*"] ?? values[name]
    }

    /// Whether the parameter `name` was given, plain or extended, readable or not.
    func has(_ name: String) -> Bool { names.contains(name.lowercased()) }

    /// Where the segment that starts `text` ends: the first `;` outside a quoted string.
    private static func endOfSegment(_ text: Substring) -> Substring.Index {
        var quoted = false
        var escaped = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                escaped = false
            } else if quoted && character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if character == ";" && !quoted {
                return index
            }
            index = text.index(after: index)
        }
        return text.endIndex
    }

    /// A token as it is; a quoted string without its quotes and with its escapes resolved.
    private static func unquoted(_ raw: String) -> String {
        guard raw.count >= 2, raw.hasPrefix("\""), raw.hasSuffix("\"") else { return raw }
        var value = ""
        var escaped = false
        for character in raw.dropFirst().dropLast() {
            if !escaped && character == "\\" {
                escaped = true
                continue
            }
            escaped = false
            value.append(character)
        }
        return value
    }

    /// RFC 8187's `charset'language'percent-encoded`, for UTF-8 and ISO-8859-1; nil otherwise.
    private static func extendedValue(_ raw: String) -> String? {
        let pieces = raw.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count == 3 else { return nil }
        var bytes: [UInt8] = []
        var encoded = pieces[2].utf8[...]
        while let byte = encoded.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let digits = encoded.prefix(2)
            guard digits.count == 2, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }), let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
            encoded = encoded.dropFirst(2)
        }
        switch pieces[0].lowercased() {
        case "utf-8": return String(validating: bytes, as: UTF8.self)
        case "iso-8859-1": return String(bytes.map { Character(Unicode.Scalar($0)) })
        default: return nil
        }
    }
}
