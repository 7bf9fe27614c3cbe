/// Why a studio shot could not be rendered. `message` is written for people and names the value
/// that was wrong ("image is 50000x50000 (2500.0 MP); at most 40.0 MP").
public struct ImagingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure; extendable without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The input has no bytes.
        public static let emptyInput = Code("emptyInput")
        /// The bytes are not an image, or the image is corrupt or truncated.
        public static let undecodable = Code("undecodable")
        /// Too many bytes or pixels (checked before the pixels are decoded).
        public static let tooLarge = Code("tooLarge")
        /// A valid request the engine does not support (an upscale of 3, an odd channel count).
        public static let unsupported = Code("unsupported")
        /// The model or a library failed; not the caller's fault.
        public static let `internal` = Code("internal")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
