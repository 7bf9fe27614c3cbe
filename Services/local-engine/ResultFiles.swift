import Foundation
import NIOPosix

/// Finished images on disk, one file per job (`<job id>.<format>`), so 30 minutes of results do not
/// sit in memory. File I/O runs on the given thread pool, never on the cooperative executor.
/// Names come from job ids the engine made, never from a request.
public struct ResultFiles: Sendable {
    public var directory: URL
    public var threadPool: NIOThreadPool

    public init(directory: URL, threadPool: NIOThreadPool) {
        self.directory = directory
        self.threadPool = threadPool
    }

    /// Creates the folder and removes what a previous run left (jobs do not survive a restart).
    public func prepare() throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory.path) {
            for name in try manager.contentsOfDirectory(atPath: directory.path) {
                try? manager.removeItem(at: directory.appendingPathComponent(name))
            }
        }
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    public func url(id: String, format: String) -> URL {
        directory.appendingPathComponent("\(id).\(format)")
    }

    public func write(_ bytes: [UInt8], id: String, format: String) async throws {
        let url = url(id: id, format: format)
        try await threadPool.runIfActive { try Data(bytes).write(to: url, options: .atomic) }
    }

    /// The file's bytes, or nil when it is gone.
    public func read(id: String, format: String) async -> [UInt8]? {
        let url = url(id: id, format: format)
        return try? await threadPool.runIfActive { () -> [UInt8]? in
            (try? Data(contentsOf: url)).map { Array($0) }
        }
    }

    public func remove(id: String, format: String) async {
        let url = url(id: id, format: format)
        _ = try? await threadPool.runIfActive { try? FileManager.default.removeItem(at: url) }
    }
}
