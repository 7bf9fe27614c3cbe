/// What the publisher asks for. Every field is optional; absent ones take the defaults
/// (``GenerationDefaults``) when the prompt-service resolves them.
public struct GenerationOptions: Codable, Sendable, Hashable {
    /// Longest allowed `customInstructions`, counted after trimming.
    public static let maxCustomInstructionsLength = 500

    /// Default: the `aiImageDefaultShadow` setting.
    public var shadowStyle: ShadowStyle?
    /// Default: the `aiImageDefaultBackground` setting.
    public var backgroundColor: BackgroundColor?
    /// Free text appended to the prompt (sanitised by the prompt-service); at most 500 characters.
    public var customInstructions: String?
    /// Remove watermarks and text overlays. Default `true`.
    public var removeWatermark: Bool?
    /// Default 1 (no upscaling).
    public var upscale: UpscaleFactor?
    /// A marketplace preset or an explicit frame. Default: the `aiImageDefaultFraming` setting.
    public var framing: Framing?

    public init(
        shadowStyle: ShadowStyle? = nil, backgroundColor: BackgroundColor? = nil,
        customInstructions: String? = nil, removeWatermark: Bool? = nil, upscale: UpscaleFactor? = nil,
        framing: Framing? = nil
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.customInstructions = customInstructions
        self.removeWatermark = removeWatermark
        self.upscale = upscale
        self.framing = framing
    }

    public func validate(at path: String = "options") throws(ValidationError) {
        try Self.validateCustomInstructions(customInstructions, at: "\(path).customInstructions")
        try framing?.spec?.validate(at: "\(path).framing")
    }

    /// These options with every absent field filled from `defaults`.
    public func resolved(with defaults: GenerationDefaults = GenerationDefaults()) -> ResolvedGenerationOptions {
        let instructions = customInstructions?.trimmingWhitespace()
        return ResolvedGenerationOptions(
            shadowStyle: shadowStyle ?? defaults.shadowStyle,
            backgroundColor: backgroundColor ?? defaults.backgroundColor,
            customInstructions: instructions?.isEmpty == false ? instructions : nil,
            removeWatermark: removeWatermark ?? defaults.removeWatermark,
            upscale: upscale ?? defaults.upscale,
            framing: (framing ?? defaults.framing).spec)
    }

    static func validateCustomInstructions(_ text: String?, at field: String) throws(ValidationError) {
        guard let text else { return }
        let length = text.trimmingWhitespace().count
        if length > maxCustomInstructionsLength {
            throw ValidationError(
                field: field, reason: "must be at most \(maxCustomInstructionsLength) characters; got \(length)")
        }
    }
}

/// The values absent options take: the settings' defaults, then Cyclorama's own.
public struct GenerationDefaults: Sendable, Hashable {
    public var shadowStyle: ShadowStyle
    public var backgroundColor: BackgroundColor
    public var removeWatermark: Bool
    public var upscale: UpscaleFactor
    public var framing: Framing

    public init(
        shadowStyle: ShadowStyle = .soft, backgroundColor: BackgroundColor = .white,
        removeWatermark: Bool = true, upscale: UpscaleFactor = .x1, framing: Framing = .preset(.none)
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.removeWatermark = removeWatermark
        self.upscale = upscale
        self.framing = framing
    }

    /// Reads `aiImageDefaultShadow`, `aiImageDefaultBackground`, `aiImageEnableUpscaling` (true
    /// makes 2x the default upscale) and `aiImageDefaultFraming` from a settings map; a missing or
    /// unreadable value keeps Cyclorama's default (soft, #FFFFFF, 1x, none).
    public init(settings: [String: String]) {
        self.init(settings: CycloramaSettings(settings))
    }

    public init(settings: CycloramaSettings) {
        self.init(
            shadowStyle: settings.defaultShadow, backgroundColor: settings.defaultBackground,
            upscale: settings.enableUpscaling ? .x2 : .x1, framing: .preset(settings.defaultFraming))
    }
}

/// Options with every value decided, as the prompt-service hands them to the dispatcher.
public struct ResolvedGenerationOptions: Codable, Sendable, Hashable {
    public var shadowStyle: ShadowStyle
    public var backgroundColor: BackgroundColor
    /// Trimmed; absent when there are none.
    public var customInstructions: String?
    public var removeWatermark: Bool
    public var upscale: UpscaleFactor
    /// The frame to render, presets spelled out; absent for none.
    public var framing: FramingSpec?

    public init(
        shadowStyle: ShadowStyle, backgroundColor: BackgroundColor, customInstructions: String? = nil,
        removeWatermark: Bool, upscale: UpscaleFactor, framing: FramingSpec? = nil
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.customInstructions = customInstructions
        self.removeWatermark = removeWatermark
        self.upscale = upscale
        self.framing = framing
    }

    public func validate(at path: String = "options") throws(ValidationError) {
        try GenerationOptions.validateCustomInstructions(customInstructions, at: "\(path).customInstructions")
        try framing?.validate(at: "\(path).framing")
    }
}
