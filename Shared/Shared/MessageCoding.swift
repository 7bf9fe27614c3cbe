import Foundation

/// The one JSON encoder / decoder configuration every Cyclorama message uses, so bytes are the
/// same whichever service writes them: sorted keys, ISO-8601 UTC dates with milliseconds.
public enum MessageCoding {
    /// A fresh encoder: sorted keys, dates like `2026-11-29T10:15:30.123Z`, `/` not escaped.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTimestamp(date))
        }
        return encoder
    }

    /// A fresh decoder that reads ISO-8601 timestamps with or without fractional seconds.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath,
                    debugDescription: "not an ISO-8601 timestamp",
                    underlyingError: ValidationError(
                        field: "",
                        reason: "must be an ISO-8601 timestamp like 2026-11-29T10:15:30.123Z; got \(Check.quoted(text))")))
            }
            return date
        }
        return decoder
    }

    /// Encodes a message to the bytes published on the broker.
    public static func encode(_ message: some CycloramaMessage) throws -> [UInt8] {
        Array(try makeEncoder().encode(message))
    }

    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// `2026-11-29T10:15:30.123Z` (UTC, milliseconds).
    public static func formatTimestamp(_ date: Date) -> String {
        // Whole milliseconds computed here: the format style truncates, and .123 stored as a
        // Double may be .12299999, which it would print as .122.
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = (millis.floorDivided(by: 1000), millis.floorModulo(1000))
        let whole = withoutFraction.format(Date(timeIntervalSince1970: Double(seconds)))  // ...:30Z
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Parses `2026-11-29T10:15:30Z`, `...30.123Z` or an explicit offset like `...30+02:00`.
    public static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? withFraction.parse(text) { return date }
        if let date = try? withoutFraction.parse(text) { return date }
        return nil
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }

    fileprivate func floorModulo(_ divisor: Int64) -> Int64 {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}
