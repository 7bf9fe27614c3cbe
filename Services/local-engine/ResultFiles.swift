import Foundation
import NIOPosix

/// Finished images on disk, one file per job attempt (`<job id>.<attempt>.<format>`: a late render of
/// an abandoned attempt never touches a retry's file), so 30 minutes of results do not
/// sit in memory. File I/O runs on the given thread pool, never on the cooperative executor.
/// Names come from job ids the engine made, never from a request.
public struct ResultFiles: Sendable {
    public var directory: URL
    public var threadPool: NIOThreadPool

    public init(directory: URL, threadPool: NIOThreadPool) {
        self.directory = directory
        self.threadPool = threadPool
    }

    /// Creates the folder and removes the result files a previous run left (jobs do not survive a restart).
    public func prepare() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        removeAll()
    }

    /// Removes every result file, and the folder when nothing else is in it. Only `<uuid>.<n>.<format>`
    /// files are touched, so a folder shared with other files is safe.
    public func removeAll(removingFolder: Bool = false) {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] where Self.isResultFile(name) {
            try? manager.removeItem(at: directory.appendingPathComponent(name))
        }
        if removingFolder, (try? manager.contentsOfDirectory(atPath: directory.path))?.isEmpty == true {
            try? manager.removeItem(at: directory)
        }
    }

    static func isResultFile(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        return parts.count == 3 && UUID(uuidString: String(parts[0])) != nil
    }

    public func url(_ key: ResultKey) -> URL {
        directory.appendingPathComponent("\(key.id).\(key.attempt).\(key.format)")
    }

    public func write(_ bytes: [UInt8], _ key: ResultKey) async throws {
        let url = url(key)
        try await threadPool.runIfActive { try Data(bytes).write(to: url, options: .atomic) }
    }

    /// The file's bytes, or nil when it is gone.
    public func read(_ key: ResultKey) async -> [UInt8]? {
        let url = url(key)
        return try? await threadPool.runIfActive { () -> [UInt8]? in
            (try? Data(contentsOf: url)).map { Array($0) }
        }
    }

    public func remove(_ key: ResultKey) async {
        let url = url(key)
        _ = try? await threadPool.runIfActive { try? FileManager.default.removeItem(at: url) }
    }
}

/// Which file holds a job attempt's result.
public struct ResultKey: Sendable, Equatable {
    public var id: String
    public var attempt: Int
    public var format: String
}
