import Foundation

/// A test fixture that could not be set up; the message says what and carries logs.
public struct FixtureError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The sample product photos (../shared/samples/dev beside the repository).
public enum Samples {
    public static let root = TestEnvironment.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/samples/dev")

    /// `file` (e.g. `input.jpg`, `alpha.png`) of the scene whose folder starts with `scene` (e.g. `dev02`).
    public static func bytes(_ scene: String, _ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: try folder(scene).appendingPathComponent(file)))
    }

    /// The folder of the scene whose name starts with `scene` (e.g. `dev02`).
    public static func folder(_ scene: String) throws -> URL {
        let folder = try FileManager.default.contentsOfDirectory(atPath: root.path).first { $0.hasPrefix(scene) }
        guard let folder else { throw FixtureError(message: "no sample scene \(scene) in \(root.path)") }
        return root.appendingPathComponent(folder)
    }
}
