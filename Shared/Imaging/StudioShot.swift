/// The shadow rendered under the product, from its mask.
public enum ShadowPreset: String, Sendable, CaseIterable {
    /// No shadow at all.
    case none
    /// A contact shadow at the base and a faint ambient pad.
    case minimal
    /// Contact, pad and a gentle, short cast shadow.
    case soft
    /// Contact, pad and a darker, longer, harder-edged cast shadow.
    case dramatic
}

/// What replaces the photo's background.
public enum StudioBackground: Sendable, Equatable {
    /// A flat colour (8-bit sRGB).
    case color(red: UInt8, green: UInt8, blue: UInt8)
    /// No background: the result has an alpha channel.
    case transparent

    /// Plain white, the default studio backdrop.
    public static let white = StudioBackground.color(red: 255, green: 255, blue: 255)
}

/// The encoding of the result.
public enum OutputFormat: String, Sendable, CaseIterable {
    case png, jpeg, webp
}

/// One studio shot to render.
public struct StudioShotRequest: Sendable {
    /// The encoded input photo: JPEG, PNG, WebP or GIF (the first frame of an animation); libvips'
    /// other loaders are blocked.
    public var image: [UInt8]
    public var background: StudioBackground
    public var shadow: ShadowPreset
    /// Detect a tiled semi-transparent overlay and invert it before segmentation.
    public var removeWatermark: Bool
    /// Enlargement factor: 1, 2 or 4. The output is the input's size times this.
    public var upscale: Int
    public var outputFormat: OutputFormat
    /// A catalog frame: the product measured from its matte and placed on a new canvas (the output's
    /// size is then the frame's, with `upscale` the product's enlargement before its bounds). Nil
    /// keeps the photo's frame.
    public var frame: StudioFrame?

    public init(
        image: [UInt8], background: StudioBackground = .white, shadow: ShadowPreset = .soft,
        removeWatermark: Bool = true, upscale: Int = 1, outputFormat: OutputFormat = .png, frame: StudioFrame? = nil
    ) {
        self.image = image
        self.background = background
        self.shadow = shadow
        self.removeWatermark = removeWatermark
        self.upscale = upscale
        self.outputFormat = outputFormat
        self.frame = frame
    }
}

/// A rendered studio shot.
public struct StudioShotResult: Sendable {
    /// The encoded image in `format`.
    public var encoded: [UInt8]
    public var width: Int
    public var height: Int
    public var format: OutputFormat
    /// True for an RGBA result (transparent background, PNG or WebP). JPEG never has alpha:
    /// a transparent request encoded as JPEG is flattened onto white.
    public var hasAlpha: Bool
    /// Milliseconds per stage: decode, watermark, segment, refine, shadow, composite, upscale (or frame), encode.
    public var timings: [String: Int]
    /// True when the photo's segmentation came from the pipeline's cache (the same pixels were
    /// segmented lately): `segment` then took no model time.
    public var segmentationReused = false

    public init(
        encoded: [UInt8], width: Int, height: Int, format: OutputFormat, hasAlpha: Bool,
        timings: [String: Int]
    ) {
        self.encoded = encoded
        self.width = width
        self.height = height
        self.format = format
        self.hasAlpha = hasAlpha
        self.timings = timings
    }
}
