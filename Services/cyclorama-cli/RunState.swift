import Foundation

/// A `process` run as it stands, kept in `<out>/.cyclorama-run.json` so that running the same
/// command again goes on where it stopped: nothing is uploaded twice, a batch already sent is
/// followed rather than sent again, and a result already written is not fetched again.
struct RunState: Codable {
    /// What an item is made from.
    struct Source: Codable, Equatable, Sendable {
        enum Kind: String, Codable, Sendable {
            /// A local image, uploaded first.
            case file
            /// A media item already in the library.
            case media
            /// An image on the web, fetched here and uploaded.
            case url
            /// A CSV line that names neither: it fails with the reason.
            case invalid
        }

        var kind: Kind
        var value: String
        /// The name the result takes (its extension replaced by the result's).
        var name: String
    }

    enum Stage: String, Codable, Sendable {
        case pending, uploaded, submitted, done, failed
    }

    struct Item: Codable, Sendable {
        var source: Source
        /// The result's file name without extension, unique in the run.
        var stem: String
        var stage: Stage = .pending
        var mediaId: String?
        var batchId: String?
        var jobId: String?
        /// The result's file name in the output folder, once written.
        var result: String?
        var error: String?
        /// How many times the item was asked for again after it failed (nil: never). Part of its
        /// batch's Idempotency-Key, so that asking again makes a new job instead of getting the
        /// failed one back.
        var retry: Int?
    }

    static let fileName = ".cyclorama-run.json"

    var version = 1
    var runId = UUID().uuidString.lowercased()
    var options: [String: String]
    var items: [Item] = []
    /// Cost so far by batch (USD), as the gateway reports it.
    var costs: [String: Double] = [:]

    init(options: [String: String]) {
        self.options = options
    }

    /// Adds the sources not in the run yet; items that failed before are tried again (a new
    /// command is the user asking for it), keeping what they had (an upload is not repeated).
    mutating func add(_ sources: [Source]) {
        for index in items.indices where items[index].stage == .failed {
            items[index].stage = items[index].mediaId == nil ? .pending : .uploaded
            items[index].batchId = nil
            items[index].jobId = nil
            items[index].error = nil
            items[index].retry = (items[index].retry ?? 0) + 1
        }
        var stems = Set(items.map(\.stem))
        for source in sources where !items.contains(where: { $0.source.kind == source.kind && $0.source.value == source.value }) {
            let base = (source.name as NSString).deletingPathExtension
            var stem = base.isEmpty ? source.name : base
            if stems.contains(stem) { stem = source.name }
            var counter = 2
            while stems.contains(stem) {
                stem = "\(base)-\(counter)"
                counter += 1
            }
            stems.insert(stem)
            items.append(Item(source: source, stem: stem))
        }
    }

    static let lockName = ".cyclorama-run.lock"

    /// Takes the output folder for this process (an exclusive `flock` on its lock file, released
    /// when the process ends however it ends); refused while another run holds it. Returns the
    /// descriptor to close when the run is over.
    static func lock(_ folder: URL) throws -> Int32 {
        let path = folder.appendingPathComponent(lockName).path
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CommandFailure(description: "could not open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            close(descriptor)
            throw CommandFailure(description: busy
                ? "another cyclorama run is using \(folder.path); wait for it to end (or stop it), or use another --out"
                : "could not lock \(path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    static func load(from folder: URL) throws -> RunState? {
        let file = folder.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode(RunState.self, from: data)
        } catch {
            throw CommandFailure(description: "\(file.path) is not a run this version can read (\(error)); move it away to start over")
        }
    }

    /// Written whole to a temporary file and renamed: a reader never sees half of it.
    func save(to folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let temporary = folder.appendingPathComponent(Self.fileName + ".part")
        try encoder.encode(self).write(to: temporary)
        try moveIntoPlace(temporary, folder.appendingPathComponent(Self.fileName))
    }
}

/// Renames `temporary` over `destination` (one atomic step: a reader sees the old file or the new).
func moveIntoPlace(_ temporary: URL, _ destination: URL) throws {
    guard rename(temporary.path, destination.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw CommandFailure(description: "could not write \(destination.path): \(reason)")
    }
}
