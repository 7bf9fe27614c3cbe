import Shared

// The message contract's words as pipeline settings: the local engine reads them from its input,
// the ingestor from a RunPod job's resolved options.

extension StudioFrame {
    public init(_ spec: FramingSpec) {
        self.init(aspect: spec.aspect.ratio, fill: spec.fill, alignBottom: spec.align == .bottom, minSide: spec.minSide, maxSide: spec.maxSide)
    }
}

extension StudioBackground {
    public init(_ color: BackgroundColor) {
        if let rgb = color.rgb { self = .color(red: rgb.red, green: rgb.green, blue: rgb.blue) } else { self = .transparent }
    }
}

extension ShadowPreset {
    public init(_ style: ShadowStyle) {
        switch style {
        case .none: self = .none
        case .minimal: self = .minimal
        case .soft: self = .soft
        case .dramatic: self = .dramatic
        }
    }
}
