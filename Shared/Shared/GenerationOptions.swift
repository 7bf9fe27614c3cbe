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

    public init(
        shadowStyle: ShadowStyle? = nil, backgroundColor: BackgroundColor? = nil,
        customInstructions: String? = nil, removeWatermark: Bool? = nil, upscale: UpscaleFactor? = nil
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.customInstructions = customInstructions
        self.removeWatermark = removeWatermark
        self.upscale = upscale
    }

    public func validate(at path: String = "options") throws(ValidationError) {
        try Self.validateCustomInstructions(customInstructions, at: "\(path).customInstructions")
    }

    /// These options with every absent field filled from `defaults`.
    public func resolved(with defaults: GenerationDefaults = GenerationDefaults()) -> ResolvedGenerationOptions {
        let instructions = customInstructions?.trimmingWhitespace()
        return ResolvedGenerationOptions(
            shadowStyle: shadowStyle ?? defaults.shadowStyle,
            backgroundColor: backgroundColor ?? defaults.backgroundColor,
            customInstructions: instructions?.isEmpty == false ? instructions : nil,
            removeWatermark: removeWatermark ?? defaults.removeWatermark,
            upscale: upscale ?? defaults.upscale)
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

    public init(
        shadowStyle: ShadowStyle = .soft, backgroundColor: BackgroundColor = .white,
        removeWatermark: Bool = true, upscale: UpscaleFactor = .x1
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.removeWatermark = removeWatermark
        self.upscale = upscale
    }

    /// Reads `aiImageDefaultShadow`, `aiImageDefaultBackground` and `aiImageEnableUpscaling` (true
    /// makes 2x the default upscale) from a settings map; a missing or unreadable value keeps
    /// Cyclorama's default (soft, #FFFFFF, 1x).
    public init(settings: [String: String]) {
        self.init(settings: CycloramaSettings(settings))
    }

    public init(settings: CycloramaSettings) {
        self.init(
            shadowStyle: settings.defaultShadow, backgroundColor: settings.defaultBackground,
            upscale: settings.enableUpscaling ? .x2 : .x1)
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

    public init(
        shadowStyle: ShadowStyle, backgroundColor: BackgroundColor, customInstructions: String? = nil,
        removeWatermark: Bool, upscale: UpscaleFactor
    ) {
        self.shadowStyle = shadowStyle
        self.backgroundColor = backgroundColor
        self.customInstructions = customInstructions
        self.removeWatermark = removeWatermark
        self.upscale = upscale
    }

    public func validate(at path: String = "options") throws(ValidationError) {
        try GenerationOptions.validateCustomInstructions(customInstructions, at: "\(path).customInstructions")
    }
}
