/// How a studio shot is framed for a catalog: the canvas's aspect, how much of it the product takes,
/// where the product sits, and bounds on the output's size (docs/framing.md).
///
/// On the wire a `framing` is a preset's name (`"amazon"`) or an explicit object
/// (`{"aspect": "1:1", "fill": 0.85, "align": "center", "minSide": 1600, "maxSide": 2000}`, every
/// field optional). Options that reached the dispatcher carry the explicit form (``FramingSpec``).
public enum Framing: Codable, Sendable, Hashable {
    case preset(FramingPreset)
    case custom(FramingSpec)

    /// What to render; nil for `none` (the photo's own frame, today's behaviour).
    public var spec: FramingSpec? {
        switch self {
        case .preset(let preset): preset.spec
        case .custom(let spec): spec
        }
    }

    /// Reads a `framing` value: a preset's name or an object. `strict` refuses an object's unknown
    /// fields (the HTTP API does; broker messages ignore them, as the contract says of every field).
    public init(parsing value: JSONValue, at path: String = "framing", strict: Bool = false) throws(ValidationError) {
        switch value {
        case .string(let name):
            guard let preset = FramingPreset(rawValue: name) else {
                throw ValidationError(
                    field: path, reason: "must be one of \(FramingPreset.allowedValues) or an object; got \(Check.quoted(name))")
            }
            self = .preset(preset)
        case .object:
            self = .custom(try FramingSpec(parsing: value, at: path, strict: strict))
        default:
            throw ValidationError(
                field: path, reason: "must be one of \(FramingPreset.allowedValues) or an object; got \(value.typeName)")
        }
    }

    public init(from decoder: any Decoder) throws {
        self = try decodeParsed(from: decoder) { (value) throws(ValidationError) in try Framing(parsing: value, at: "") }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .preset(let preset): try preset.encode(to: encoder)
        case .custom(let spec): try spec.encode(to: encoder)
        }
    }
}

/// A marketplace's main-image rules as a ``FramingSpec`` (figures and sources in docs/framing.md).
public enum FramingPreset: String, WireChoice {
    /// The photo's own frame: no framing.
    case none
    /// Square, the product ~85 % of the frame, 1600–2000 px (zoom needs ≥ 1000; 1600+ recommended).
    case amazon
    /// Square, the product ~80 % (75–90 % asked), 1500–2000 px (1500 x 1500 recommended).
    case google
    /// Square 2048 x 2048.
    case shopify
    /// Square, the product ~85 %, 1600–2000 px (≥ 500 required, 1600 recommended).
    case ebay
    public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }

    public var spec: FramingSpec? {
        switch self {
        case .none: nil
        case .amazon: FramingSpec(aspect: .square, fill: 0.85, align: .center, minSide: 1600, maxSide: 2000)
        case .google: FramingSpec(aspect: .square, fill: 0.8, align: .center, minSide: 1500, maxSide: 2000)
        case .shopify: FramingSpec(aspect: .square, fill: 0.85, align: .center, minSide: 2048, maxSide: 2048)
        case .ebay: FramingSpec(aspect: .square, fill: 0.85, align: .center, minSide: 1600, maxSide: 2000)
        }
    }
}

/// An explicit framing. The product's box (from the matte) is scaled to fit inside `fill` of the
/// canvas on both axes (less when its shadow would be cut: docs/framing.md) — on a square canvas, the product's long side is `fill` of the
/// canvas's side — and the canvas's long side is the product's own resolution (times `upscale`)
/// kept within `minSide`...`maxSide`.
public struct FramingSpec: Codable, Sendable, Hashable {
    /// The canvas's width : height.
    public enum Aspect: String, WireChoice {
        case square = "1:1", portrait = "4:5", classic = "3:4", wide = "16:9", original
        public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }

        /// Width over height; nil for `original` (the photo's).
        public var ratio: Double? {
            switch self {
            case .square: 1
            case .portrait: 4.0 / 5
            case .classic: 3.0 / 4
            case .wide: 16.0 / 9
            case .original: nil
            }
        }
    }

    /// Where the product sits: centred, or standing near the bottom edge (room above it).
    public enum Align: String, WireChoice {
        case center, bottom
        public init(from decoder: any Decoder) throws { self = try Self.decodeChoice(from: decoder) }
    }

    public static let fillRange = 0.5...0.95
    /// The bounds `minSide` and `maxSide` take (10000² is the engine's 100 MP output cap).
    public static let sideRange = 100...10_000
    public static let fields = ["aspect", "fill", "align", "minSide", "maxSide"]

    /// Default `1:1`.
    public var aspect: Aspect
    /// Default 0.85.
    public var fill: Double
    /// Default `center`.
    public var align: Align
    /// The output's long side at least this (the product enlarged with the upscaler when needed).
    public var minSide: Int?
    /// The output's long side at most this (the product scaled down when needed). A hard limit: it
    /// wins over a larger `minSide`.
    public var maxSide: Int?

    public init(aspect: Aspect = .square, fill: Double = 0.85, align: Align = .center, minSide: Int? = nil, maxSide: Int? = nil) {
        self.aspect = aspect
        self.fill = fill
        self.align = align
        self.minSide = minSide
        self.maxSide = maxSide
    }

    public func validate(at path: String = "framing") throws(ValidationError) {
        guard fill.isFinite, Self.fillRange.contains(fill) else {
            throw ValidationError(field: Self.field(path, "fill"), reason: "must be a number from 0.5 to 0.95; got \(fill)")
        }
        for (name, side) in [("minSide", minSide), ("maxSide", maxSide)] {
            if let side, !Self.sideRange.contains(side) {
                throw ValidationError(field: Self.field(path, name), reason: "must be an integer from 100 to 10000; got \(side)")
            }
        }
    }

    /// Reads an explicit framing object; absent fields take their defaults.
    public init(parsing value: JSONValue, at path: String = "framing", strict: Bool = false) throws(ValidationError) {
        guard case .object(let fields) = value else {
            throw ValidationError(field: path, reason: "must be an object; got \(value.typeName)")
        }
        if strict, let unknown = fields.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw ValidationError(field: Self.field(path, unknown), reason: "is not a framing field; known: \(Self.fields.joined(separator: ", "))")
        }
        func present(_ key: String) -> JSONValue? { fields[key].flatMap { $0 == .null ? nil : $0 } }
        func choice<C: WireChoice>(_ key: String) throws(ValidationError) -> C? where C.RawValue == String {
            guard let raw = present(key) else { return nil }
            guard case .string(let text) = raw, let value = C(rawValue: text) else {
                throw ValidationError(field: Self.field(path, key), reason: "must be one of \(C.allowedValues); got \(raw.jsonText.prefix(64))")
            }
            return value
        }
        func side(_ key: String) throws(ValidationError) -> Int? {
            guard let raw = present(key) else { return nil }
            guard case .int(let number) = raw else {
                throw ValidationError(field: Self.field(path, key), reason: "must be an integer from 100 to 10000; got \(raw.jsonText.prefix(32))")
            }
            return number
        }
        self.init()
        if let aspect: Aspect = try choice("aspect") { self.aspect = aspect }
        if let align: Align = try choice("align") { self.align = align }
        if let raw = present("fill") {
            guard let number = raw.doubleValue else {
                throw ValidationError(field: Self.field(path, "fill"), reason: "must be a number from 0.5 to 0.95; got \(raw.jsonText.prefix(32))")
            }
            fill = number
        }
        minSide = try side("minSide")
        maxSide = try side("maxSide")
        try validate(at: path)
    }

    public init(from decoder: any Decoder) throws {
        self = try decodeParsed(from: decoder) { (value) throws(ValidationError) in try FramingSpec(parsing: value, at: "") }
    }

    private enum CodingKeys: String, CodingKey { case aspect, fill, align, minSide, maxSide }

    /// `path.key`, or `key` at the top.
    static func field(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(aspect, forKey: .aspect)
        try container.encode(fill, forKey: .fill)
        try container.encode(align, forKey: .align)
        try container.encodeIfPresent(minSide, forKey: .minSide)
        try container.encodeIfPresent(maxSide, forKey: .maxSide)
    }

    /// The JSON object as sent (the engine's `input.framing`).
    public var json: JSONValue {
        var object: [String: JSONValue] = ["aspect": .string(aspect.rawValue), "fill": .double(fill), "align": .string(align.rawValue)]
        if let minSide { object["minSide"] = .int(minSide) }
        if let maxSide { object["maxSide"] = .int(maxSide) }
        return .object(object)
    }
}

/// Decodes a JSON value and reads it with `parse`; a refusal becomes a decoding error with its reason.
private func decodeParsed<T>(from decoder: any Decoder, _ parse: (JSONValue) throws(ValidationError) -> T) throws -> T {
    let value = try JSONValue(from: decoder)
    do {
        return try parse(value)
    } catch {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description, underlyingError: error))
    }
}
