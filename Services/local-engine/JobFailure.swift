/// Why a job ended FAILED (or TIMED_OUT). `message` is what the job's `error` says: it names the field
/// or the step, what was expected and what was found, so a client can fix its request.
public struct JobFailure: Error, Equatable, CustomStringConvertible {
    /// A stable category, extendable without breaking callers.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// `input` is malformed: a missing field, a bad enum value, a bad URL.
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// `input.image` could not be downloaded or decoded from its data URI.
        public static let fetchFailed = Code(rawValue: "fetch_failed")
        /// The bytes are not an image the pipeline accepts (empty, text, truncated, too large).
        public static let imageRejected = Code(rawValue: "image_rejected")
        /// The pipeline failed on an accepted image.
        public static let renderFailed = Code(rawValue: "render_failed")
        /// The job ran longer than `policy.executionTimeout`.
        public static let timedOut = Code(rawValue: "timed_out")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
