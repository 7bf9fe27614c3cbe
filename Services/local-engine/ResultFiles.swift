import Foundation
import NIOPosix
import Timing

/// Finished images on disk, one file per job attempt (`<job id>.<attempt>.<format>`: a late render of
/// an abandoned attempt never touches a retry's file), so 30 minutes of results do not
/// sit in memory. File I/O runs on the given thread pool, never on the cooperative executor.
/// Names come from job ids the engine made, never from a request.
///
/// Results outlive a restart of the engine for their time to live: the jobs themselves do not
/// (`/status` answers 404, and a client submits again), but a result already announced can still be
/// downloaded (``find(id:format:)``).
public struct ResultFiles: Sendable {
    public var directory: URL
    public var threadPool: NIOThreadPool
    /// How long a result file is kept.
    public var lifetime: Duration

    public init(directory: URL, threadPool: NIOThreadPool, lifetime: Duration = .seconds(1800)) {
        self.directory = directory
        self.threadPool = threadPool
        self.lifetime = lifetime
    }

    /// Creates the folder and removes the result files a previous run left that are older than ``lifetime``.
    public func prepare() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        removeExpired()
    }

    /// Removes result files last written more than ``lifetime`` ago.
    public func removeExpired(now: Date = Date()) {
        let manager = FileManager.default
        let oldest = now.addingTimeInterval(-lifetime.timeInterval)
        for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] where Self.isResultFile(name) {
            let url = directory.appendingPathComponent(name)
            let written = (try? manager.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? .distantPast
            if written < oldest { try? manager.removeItem(at: url) }
        }
    }

    /// ``removeExpired(now:)`` on the thread pool (the sweeper calls it now and then).
    public func removeExpiredFiles() async {
        let files = self
        _ = try? await threadPool.runIfActive { files.removeExpired() }
    }

    /// The newest attempt's result of job `id` in `format` still on disk and within its lifetime
    /// (a job finished before this process started), nil when there is none.
    public func find(id: String, format: String) async -> ResultKey? {
        guard UUID(uuidString: id) != nil, format.allSatisfy({ $0.isLetter }) else { return nil }
        let directory = self.directory
        let oldest = Date().addingTimeInterval(-lifetime.timeInterval)
        return try? await threadPool.runIfActive { () -> ResultKey? in
            let manager = FileManager.default
            var best: ResultKey?
            for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] where Self.isResultFile(name) {
                let parts = name.split(separator: ".").map(String.init)
                guard parts[0] == id, parts[2] == format, let attempt = Int(parts[1]) else { continue }
                let written = (try? manager.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.modificationDate] as? Date) ?? .distantPast
                if written >= oldest, attempt > (best?.attempt ?? 0) { best = ResultKey(id: id, attempt: attempt, format: format) }
            }
            return best
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
