/// A closed set of values on the wire (shadow styles, job kinds, backends, stages).
///
/// Decoding an unknown value fails with a reason listing the allowed ones, e.g.
/// `must be one of minimal, soft, dramatic, none; got "spooky"`.
public protocol WireChoice: RawRepresentable, CaseIterable, Codable, Sendable, Hashable
where RawValue: Codable & Sendable & CustomStringConvertible {}

extension WireChoice {
    /// The allowed values, for reasons and docs: `minimal, soft, dramatic, none`.
    public static var allowedValues: String { allCases.map { "\($0.rawValue)" }.joined(separator: ", ") }

    /// The readable rejection of `raw`.
    static func rejection(of raw: RawValue) -> ValidationError {
        let shown = (raw as? String).map(Check.quoted) ?? "\(raw)"
        return ValidationError(field: "", reason: "must be one of \(allowedValues); got \(shown)")
    }

    /// Decodes the raw value and rejects anything outside the set with a readable reason.
    static func decodeChoice(from decoder: any Decoder) throws -> Self {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(RawValue.self)
        guard let value = Self(rawValue: raw) else {
            let rejection = rejection(of: raw)
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath, debugDescription: rejection.reason, underlyingError: rejection))
        }
        return value
    }
}
