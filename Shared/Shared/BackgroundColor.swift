/// The background behind the product: an opaque `#RRGGBB` colour or `transparent`.
///
/// Parsing is case-insensitive; the value is kept normalised (`#F3F4F6`, `transparent`), so it can
/// be compared and looked up directly.
public struct BackgroundColor: Codable, Sendable, Hashable, CustomStringConvertible {
    /// `#RRGGBB` in upper case, or `transparent`.
    public let rawValue: String

    public static let white = BackgroundColor(uncheckedRawValue: "#FFFFFF")
    public static let transparent = BackgroundColor(uncheckedRawValue: "transparent")

    private init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }

    /// Parses `#rrggbb` / `#RRGGBB` or `transparent`; `nil` for anything else.
    public init?(_ text: String) {
        if text.lowercased() == "transparent" {
            rawValue = "transparent"
            return
        }
        let utf8 = Array(text.utf8)
        guard utf8.count == 7, utf8[0] == UInt8(ascii: "#"), utf8.dropFirst().allSatisfy(\.isHexDigit) else {
            return nil
        }
        rawValue = text.uppercased()
    }

    public var isTransparent: Bool { rawValue == "transparent" }

    /// The colour's components (0-255), `nil` when transparent.
    public var rgb: (red: UInt8, green: UInt8, blue: UInt8)? {
        guard !isTransparent, let value = UInt32(rawValue.dropFirst(), radix: 16) else { return nil }
        return (UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let color = BackgroundColor(text) else {
            let rejection = ValidationError(
                field: "", reason: "must be \"#RRGGBB\" (hex) or \"transparent\"; got \(Check.quoted(text))")
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath, debugDescription: rejection.reason, underlyingError: rejection))
        }
        self = color
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
