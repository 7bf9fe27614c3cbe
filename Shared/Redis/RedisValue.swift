/// A decoded RESP reply.
///
/// Bulk strings stay bytes (`bulk`) so binary values round-trip; use ``stringValue`` or
/// ``RedisValue/string(_:)`` for text. Error replies never appear here: they are thrown as
/// ``RedisError`` with code ``RedisError/Code/serverError``.
public enum RedisValue: Sendable, Equatable, Hashable {
    /// A nil bulk string or nil array (`GET` of a missing key, a refused `SET NX`).
    case null
    case integer(Int)
    /// A bulk string, binary-safe.
    case bulk([UInt8])
    /// A simple status reply such as `OK` or `PONG`.
    case status(String)
    case array([RedisValue])

    /// A bulk reply holding the UTF-8 bytes of `text`; handy for comparisons (`value == .string("x")`).
    public static func string(_ text: String) -> RedisValue { .bulk(Array(text.utf8)) }

    /// The text of a bulk or status reply, if it is valid UTF-8.
    public var stringValue: String? {
        switch self {
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The integer of an integer reply, or of a bulk reply holding a decimal number.
    public var intValue: Int? {
        switch self {
        case .integer(let value): return value
        case .bulk: return stringValue.flatMap { Int($0) }
        default: return nil
        }
    }

    /// The bytes of a bulk reply.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    /// The elements of an array reply.
    public var arrayValue: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool { self == .null }
}
