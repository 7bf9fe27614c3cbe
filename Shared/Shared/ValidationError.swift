import Foundation

/// A message that decodes but makes no sense: which field, and why, in words a publisher can act on.
///
/// `description` is `"<field>: <reason>"`, e.g.
/// `options.shadowStyle: must be one of minimal, soft, dramatic, none; got "spooky"`.
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The dotted path of the offending field (`options.backgroundColor`, `keys[2]`).
    public var field: String
    /// What is wrong with it.
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field.isEmpty ? reason : "\(field): \(reason)" }
}

/// Small checks shared by the messages' `validate()`.
enum Check {
    /// Quotes a value for a reason text, cut short so a huge value cannot bloat a DLQ header.
    static func quoted(_ value: String) -> String {
        let limit = 64
        let shown = value.count > limit ? String(value.prefix(limit)) + "…" : value
        return "\"" + shown.unicodeScalars.map { $0.properties.generalCategory == .control
            ? $0.escaped(asASCII: true) : String($0) }.joined() + "\""
    }

    static func nonEmpty(_ value: String, _ field: String, max: Int) throws(ValidationError) {
        if value.trimmingWhitespace().isEmpty {
            throw ValidationError(field: field, reason: "must not be empty")
        }
        if value.count > max {
            throw ValidationError(field: field, reason: "must be at most \(max) characters; got \(value.count)")
        }
    }

    static func optional(_ value: String?, _ field: String, max: Int) throws(ValidationError) {
        if let value { try nonEmpty(value, field, max: max) }
    }

    /// An absolute `http`, `https` or `data` URL (never `file:`: consumers download it).
    static func url(_ value: String, _ field: String) throws(ValidationError) {
        guard let url = URL(string: value), let scheme = url.scheme?.lowercased(),
              ["http", "https", "data"].contains(scheme), scheme == "data" || url.host != nil
        else {
            throw ValidationError(field: field, reason: "must be an absolute http(s) URL; got \(quoted(value))")
        }
    }

    static func atLeast(_ value: Int, _ minimum: Int, _ field: String) throws(ValidationError) {
        if value < minimum { throw ValidationError(field: field, reason: "must be at least \(minimum); got \(value)") }
    }
}

extension String {
    /// The string without leading and trailing whitespace and newlines (Foundation-free).
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
