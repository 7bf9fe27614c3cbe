import Shared
import Foundation

/// The local engine's `input` object (its endpoint's schema), validated: where the image comes from
/// and how to render it. The prompt-service builds it (``json``), the engine parses it
/// (``init(parsing:)``); RunPod's FLUX.1 Kontext endpoint takes another input.
///
/// ```
/// {"image": "<http(s) URL or data:image/...;base64,...>",
///  "background": "#RRGGBB" | "transparent",             default "#FFFFFF"
///  "shadow": "none" | "minimal" | "soft" | "dramatic",  default "soft"
///  "removeWatermark": true | false,                      default true
///  "upscale": 1 | 2 | 4,                                 default 1
///  "outputFormat": "png" | "jpeg" | "webp",              default "png"
///  "framing": {"aspect", "fill", "align", "minSide", "maxSide"} (FramingSpec), default none
///  "returnBase64": true | false}                         default false
/// ```
public struct StudioShotInput: Sendable, Equatable {
    /// Why an `input` is refused: the field, what it must be and what it got.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    public enum Background: Sendable, Equatable {
        case color(red: UInt8, green: UInt8, blue: UInt8)
        case transparent

        /// `#RRGGBB` or `transparent` (any case); nil otherwise.
        public init?(text: String) {
            if text.lowercased() == "transparent" {
                self = .transparent
                return
            }
            let digits = text.dropFirst()
            guard text.utf8.count == 7, text.hasPrefix("#"), digits.allSatisfy(\.isHexDigit),
                  let rgb = UInt32(String(digits), radix: 16) else { return nil }
            self = .color(red: UInt8(rgb >> 16 & 0xFF), green: UInt8(rgb >> 8 & 0xFF), blue: UInt8(rgb & 0xFF))
        }

        /// `#RRGGBB` (upper case) or `transparent`.
        public var text: String {
            switch self {
            case .transparent: "transparent"
            case .color(let r, let g, let b): String(format: "#%02X%02X%02X", r, g, b)
            }
        }
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
    /// The catalog frame; nil keeps the photo's frame.
    public var framing: FramingSpec?

    public static let fields = ["image", "background", "shadow", "removeWatermark", "upscale", "outputFormat", "framing", "returnBase64"]

    public init(image: String) { self.image = image }

    public init(
        image: String, background: Background, shadow: Shadow, removeWatermark: Bool, upscale: Int, outputFormat: Format = .png,
        framing: FramingSpec? = nil, returnBase64: Bool = false
    ) {
        self.image = image
        self.background = background
        self.shadow = shadow
        self.removeWatermark = removeWatermark
        self.upscale = upscale
        self.outputFormat = outputFormat
        self.framing = framing
        self.returnBase64 = returnBase64
    }

    /// The `input` object as sent (defaults left out only where the engine's defaults hold).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "image": .string(image),
            "background": .string(background.text),
            "shadow": .string(shadow.rawValue),
            "removeWatermark": .bool(removeWatermark),
            "upscale": .int(upscale),
            "outputFormat": .string(outputFormat.rawValue),
        ]
        if let framing { fields["framing"] = framing.json }
        if returnBase64 { fields["returnBase64"] = true }
        return .object(fields)
    }

    /// Validates `input`; the error names the field, what it must be and what it got.
    public init(parsing input: JSONValue) throws(Invalid) {
        guard case .object(let fields) = input else {
            throw Invalid("input: must be an object; got \(input.typeName)")
        }
        for key in fields.keys.sorted() where !Self.fields.contains(key) {
            throw Invalid("input.\(key): unknown field (expected \(Self.fields.joined(separator: ", ")))")
        }
        guard let image = fields["image"] else { throw Invalid("input.image: required (an http(s) URL or a data:image/...;base64 URI)") }
        guard case .string(let source) = image, !source.isEmpty else {
            throw Invalid("input.image: must be an http(s) URL or a data:image/...;base64 URI; got \(image.jsonText)")
        }
        self.init(image: source)
        if let value = fields["background"] {
            guard case .string(let text) = value, let parsed = Background(text: text) else {
                throw Invalid("input.background: must be \"#RRGGBB\" or \"transparent\"; got \(value.jsonText)")
            }
            background = parsed
        }
        if let value = fields["shadow"] { shadow = try Self.oneOf(value, field: "shadow") }
        if let value = fields["removeWatermark"] { removeWatermark = try Self.bool(value, field: "removeWatermark") }
        if let value = fields["upscale"] {
            guard let number = value.doubleValue, [1.0, 2.0, 4.0].contains(number) else {
                throw Invalid("input.upscale: must be one of 1, 2, 4; got \(value.jsonText)")
            }
            upscale = Int(number)
        }
        if let value = fields["outputFormat"] {
            if case .string("jpg") = value { outputFormat = .jpeg } else { outputFormat = try Self.oneOf(value, field: "outputFormat") }
        }
        if let value = fields["framing"], value != .null {
            do {
                framing = try FramingSpec(parsing: value, at: "input.framing", strict: true)
            } catch {
                throw Invalid(error.description)
            }
        }
        if let value = fields["returnBase64"] { returnBase64 = try Self.bool(value, field: "returnBase64") }
    }

    private static func oneOf<Choice: RawRepresentable & CaseIterable>(_ value: JSONValue, field: String) throws(Invalid) -> Choice
    where Choice.RawValue == String {
        if case .string(let text) = value, let choice = Choice(rawValue: text) { return choice }
        let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        throw Invalid("input.\(field): must be one of \(names); got \(value.jsonText)")
    }

    private static func bool(_ value: JSONValue, field: String) throws(Invalid) -> Bool {
        guard case .bool(let flag) = value else { throw Invalid("input.\(field): must be true or false; got \(value.jsonText)") }
        return flag
    }
}


/// A COMPLETED local-engine job's `output`.
public struct StudioShotOutput: Sendable, Equatable, Codable {
    /// Where the engine serves the image: `<base>/v2/<endpoint>/results/<id>.<format>`.
    public var imageURL: String
    /// The image itself, when `input.returnBase64` was true.
    public var imageBase64: String?
    public var width: Int
    public var height: Int
    public var format: String
    /// Always 0: the local engine is free. Present because RunPod's outputs carry it.
    public var cost: Double
    /// Milliseconds per pipeline stage (`fetch`, `decode`, `segment`, ... , `total`).
    public var timings: [String: Int]

    public init(imageURL: String, imageBase64: String?, width: Int, height: Int, format: String, cost: Double, timings: [String: Int]) {
        self.imageURL = imageURL
        self.imageBase64 = imageBase64
        self.width = width
        self.height = height
        self.format = format
        self.cost = cost
        self.timings = timings
    }

    enum CodingKeys: String, CodingKey {
        case imageURL = "image_url", imageBase64 = "image_base64", width, height, format, cost, timings
    }
}
