import Foundation

/// Every setting Cyclorama knows, with the rule a new value must follow. The settings-service
/// checks updates against it; the message contract and the admin UI describe the same rules.
public enum SettingsCatalog {
    /// What values a setting takes.
    public enum Rule: Sendable, Equatable {
        case boolean
        case oneOf([String])
        case integer(ClosedRange<Int>)
        /// One of these integers (e.g. resolutions).
        case integerIn([Int])
        case decimal(ClosedRange<Double>)
        /// `#RRGGBB`.
        case hexColor
        /// An http(s) URL, or empty for none.
        case optionalURL
        /// A secret (write-only; stored encrypted): printable, no whitespace, at most 256 characters; empty clears it.
        case secret
    }

    public static let rules: [String: Rule] = [
        "runpodApiKey": .secret,
        "aiImageEnabled": .boolean,
        "aiImageDefaultShadow": .oneOf(["minimal", "soft", "dramatic"]),
        "aiImageDefaultBackground": .hexColor,
        "aiImageDefaultFraming": .oneOf(FramingPreset.allCases.map(\.rawValue)),
        "aiImageFidelityMode": .oneOf(FidelityMode.allCases.map(\.rawValue)),
        "aiImageInferenceSteps": .integer(20...40),
        "aiImageGuidance": .decimal(2...5),
        "aiImageResolution": .integerIn([1024, 1536, 2048]),
        "aiImageEnableUpscaling": .boolean,
        "aiImageMaxConcurrent": .integer(1...10),
        "aiImageAbTestEnabled": .boolean,
        "aiImageReviewBeforeReplace": .boolean,
        "aiImageEnableWebhooks": .boolean,
        "aiImageWebhookUrl": .optionalURL,
        "aiImageBackend": .oneOf(["local", "runpod"]),
        "aiImagePricePerMegapixel": .decimal(0...10),
        "aiImageMonthlyBudget": .decimal(0...1_000_000),
        "runpodImageDelivery": .oneOf(["auto", "url", "inline"]),
        "aiImageNotifyUrl": .optionalURL,
        "aiImageNotifySecret": .secret,
    ]

    /// The value as it is stored (upper-case colours), or why it is not acceptable. Unknown keys
    /// are refused. A value is taken exactly as the OpenAPI document spells it: no surrounding
    /// whitespace, `true` / `false` and the choices in lower case, integers without a sign or
    /// leading zeros — what a client is told is what is accepted.
    public static func normalize(_ key: String, _ raw: String) -> Result<String, ValidationError> {
        guard let rule = rules[key] else {
            return .failure(ValidationError(field: key, reason: "is not a setting; known: \(rules.keys.sorted().joined(separator: ", "))"))
        }
        let value = raw
        func refuse(_ reason: String) -> Result<String, ValidationError> {
            .failure(ValidationError(field: key, reason: "\(reason); got \"\(value.prefix(64))\""))
        }
        /// The integer `value` spells in the one way `String(_:)` writes it.
        func integer() -> Int? { Int(value).flatMap { String($0) == value ? $0 : nil } }
        switch rule {
        case .boolean:
            return value == "true" || value == "false" ? .success(value) : refuse("must be true or false")
        case .oneOf(let choices):
            return choices.contains(value) ? .success(value) : refuse("must be one of \(choices.joined(separator: ", "))")
        case .integer(let range):
            guard let number = integer(), range.contains(number) else {
                return refuse("must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return .success(String(number))
        case .integerIn(let choices):
            guard let number = integer(), choices.contains(number) else {
                return refuse("must be one of \(choices.map(String.init).joined(separator: ", "))")
            }
            return .success(String(number))
        case .decimal(let range):
            // Plain decimal digits only (no sign, exponent, hex or "inf"), as the OpenAPI document
            // states: what a client can be told is what is accepted.
            guard Self.isPlainDecimal(value), let number = Double(value), range.contains(number) else {
                return refuse("must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return .success(value)
        case .hexColor:
            guard let color = BackgroundColor(value), !color.isTransparent else { return refuse("must be a #RRGGBB colour") }
            return .success(color.rawValue)
        case .optionalURL:
            if value.isEmpty { return .success("") }
            guard value.count <= 2000, value.wholeMatch(of: Self.urlShape) != nil, let url = URL(string: value), url.host?.isEmpty == false else {
                return refuse("must be an http(s) URL or empty")
            }
            return .success(value)
        case .secret:
            guard value.count <= 256, value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0.value < 127 }) else {
                // Never echo a secret back, not even a part of it.
                return .failure(ValidationError(field: key, reason: "must be at most 256 printable characters without spaces"))
            }
            return .success(value)
        }
    }

    /// An http(s) URL as settings take it (and the OpenAPI document states): optional user
    /// information (a receiver's basic-auth credentials), a host name or IPv4 address in ASCII or an
    /// IPv6 literal in brackets, an optional port, then any printable ASCII. Nothing the URL parser
    /// would have to re-encode (an international name, spaces) is taken, so what is stored is what
    /// is called.
    static var urlShape: Regex<Substring> {
        #/[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]+@)?(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:[/?#][!-~]*)?/#
    }

    /// Whether the setting only takes a string (a JSON number or boolean is refused, not converted).
    public static func takesOnlyText(_ key: String) -> Bool {
        switch rules[key] {
        case .secret?, .oneOf?, .hexColor?, .optionalURL?: true
        default: false
        }
    }

    /// `123` or `123.45`: ASCII digits with an optional fraction.
    static func isPlainDecimal(_ value: String) -> Bool {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy { part in !part.isEmpty && part.allSatisfy { $0.isASCII && $0.isNumber } }
    }
}
