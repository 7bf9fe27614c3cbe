import Shared
import Foundation

/// A job's `input` object, validated: where the image comes from and how to render it.
///
/// ```
/// {"image": "<http(s) URL or data:image/...;base64,...>",
///  "background": "#RRGGBB" | "transparent",             default "#FFFFFF"
///  "shadow": "none" | "minimal" | "soft" | "dramatic",  default "soft"
///  "removeWatermark": true | false,                      default true
///  "upscale": 1 | 2 | 4,                                 default 1
///  "outputFormat": "png" | "jpeg" | "webp",              default "png"
///  "returnBase64": true | false}                         default false
/// ```
public struct StudioShotInput: Sendable, Equatable {
    public enum Background: Sendable, Equatable {
        case color(red: UInt8, green: UInt8, blue: UInt8)
        case transparent
    }
    public enum Shadow: String, Sendable, CaseIterable { case none, minimal, soft, dramatic }
    public enum Format: String, Sendable, CaseIterable {
        case png, jpeg, webp
        /// The file extension and media type results are served with.
        public var mediaType: String { "image/\(rawValue)" }
    }

    /// `input.image` as sent: an http(s) URL or a data URI.
    public var image: String
    public var background: Background = .color(red: 255, green: 255, blue: 255)
    public var shadow: Shadow = .soft
    public var removeWatermark = true
    public var upscale = 1
    public var outputFormat: Format = .png
    public var returnBase64 = false

    public static let fields = ["image", "background", "shadow", "removeWatermark", "upscale", "outputFormat", "returnBase64"]

    public init(image: String) { self.image = image }

    /// Validates `input`; the error names the field, what it must be and what it got.
    public init(parsing input: JSONValue) throws(JobFailure) {
        guard case .object(let fields) = input else {
            throw JobFailure(.invalidInput, "input: must be an object; got \(input.typeName)")
        }
        for key in fields.keys.sorted() where !Self.fields.contains(key) {
            throw JobFailure(.invalidInput, "input.\(key): unknown field (expected \(Self.fields.joined(separator: ", ")))")
        }
        guard let image = fields["image"] else { throw JobFailure(.invalidInput, "input.image: required (an http(s) URL or a data:image/...;base64 URI)") }
        guard case .string(let source) = image, !source.isEmpty else {
            throw JobFailure(.invalidInput, "input.image: must be an http(s) URL or a data:image/...;base64 URI; got \(image.jsonText)")
        }
        self.init(image: source)
        if let value = fields["background"] { background = try Self.background(value) }
        if let value = fields["shadow"] { shadow = try Self.oneOf(value, field: "shadow") }
        if let value = fields["removeWatermark"] { removeWatermark = try Self.bool(value, field: "removeWatermark") }
        if let value = fields["upscale"] {
            guard let number = value.doubleValue, [1.0, 2.0, 4.0].contains(number) else {
                throw JobFailure(.invalidInput, "input.upscale: must be one of 1, 2, 4; got \(value.jsonText)")
            }
            upscale = Int(number)
        }
        if let value = fields["outputFormat"] {
            if case .string("jpg") = value { outputFormat = .jpeg } else { outputFormat = try Self.oneOf(value, field: "outputFormat") }
        }
        if let value = fields["returnBase64"] { returnBase64 = try Self.bool(value, field: "returnBase64") }
    }

    private static func background(_ value: JSONValue) throws(JobFailure) -> Background {
        let problem = JobFailure(.invalidInput, "input.background: must be \"#RRGGBB\" or \"transparent\"; got \(value.jsonText)")
        guard case .string(let text) = value else { throw problem }
        if text.lowercased() == "transparent" { return .transparent }
        let hex = Array(text.utf8)
        guard hex.count == 7, hex[0] == UInt8(ascii: "#"), let rgb = UInt32(String(text.dropFirst()), radix: 16),
              text.dropFirst().allSatisfy(\.isHexDigit)
        else { throw problem }
        return .color(red: UInt8(rgb >> 16 & 0xFF), green: UInt8(rgb >> 8 & 0xFF), blue: UInt8(rgb & 0xFF))
    }

    private static func oneOf<Choice: RawRepresentable & CaseIterable>(_ value: JSONValue, field: String) throws(JobFailure) -> Choice
    where Choice.RawValue == String {
        if case .string(let text) = value, let choice = Choice(rawValue: text) { return choice }
        let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        throw JobFailure(.invalidInput, "input.\(field): must be one of \(names); got \(value.jsonText)")
    }

    private static func bool(_ value: JSONValue, field: String) throws(JobFailure) -> Bool {
        guard case .bool(let flag) = value else { throw JobFailure(.invalidInput, "input.\(field): must be true or false; got \(value.jsonText)") }
        return flag
    }
}

