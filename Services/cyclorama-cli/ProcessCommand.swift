import ArgumentParser
import Foundation

/// `cyclorama process <folder | file.csv | image> --out <folder>`: every photo through the gateway
/// as batches of at most 500, followed by Server-Sent Events, each result downloaded next to its
/// name. Resumable: the run's state is a file in the output folder, so running the same command
/// again skips what is done and follows what is still running. docs/cli.md.
struct ProcessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Turn a folder of photos (or a CSV of media ids or image URLs) into studio shots.",
        discussion: """
            Ctrl-C detaches: the jobs go on in Cyclorama and running the same command again picks \
            them up (nothing is uploaded or paid for twice). With --cancel-on-interrupt, Ctrl-C \
            cancels the batches instead. Exit status: 0 when every photo was done, 1 when any \
            failed, 130 when interrupted.
            """)

    @OptionGroup var connection: Connection

    @Argument(help: "A folder of images, a CSV file whose first column is a media id or an image URL, or one image.")
    var input: String

    @Option(name: .long, help: "Where results are written (created if needed); the run's state is kept there too.")
    var out: String

    @Option(help: "Background: #RRGGBB or transparent (default: the settings').") var background: String?
    @Option(help: "Shadow: minimal, soft, dramatic or none (default: the settings').") var shadow: String?
    @Option(help: "Upscale: 1, 2 or 4 (default: the settings').") var upscale: Int?
    @Option(help: ArgumentHelp(
        "Framing: none, amazon, google, shopify, ebay, or a JSON object such as '{\"aspect\":\"4:5\",\"fill\":0.8}' (default: the settings').",
        discussion: "docs/framing.md describes the presets and the object's fields."))
    var framing: String?
    @Flag(name: .customLong("no-watermark-removal"), help: "Keep overlays (watermark removal is on by default).")
    var noWatermarkRemoval = false
    @Option(help: "Extra instructions for the backend (at most 500 characters).") var instructions: String?
    @Option(help: "The collection uploads go to.") var collection: String?
    @Option(name: .customLong("notify-url"), help: "POST each item's terminal event there, signed (default: the settings' aiImageNotifyUrl; \"\" for none).")
    var notifyURL: String?
    @Flag(name: .customLong("cancel-on-interrupt"), help: "Ctrl-C cancels the batches instead of detaching.")
    var cancelOnInterrupt = false
    @Flag(name: .long, help: "Print the summary as JSON on standard output.") var json = false
    @Option(name: .customLong("batch-size"), help: "Items per batch (1-500).") var batchSize = 500

    func validate() throws {
        guard (1...500).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 500") }
        if let upscale, ![1, 2, 4].contains(upscale) { throw ValidationError("--upscale must be 1, 2 or 4") }
        if let shadow, !["minimal", "soft", "dramatic", "none"].contains(shadow) {
            throw ValidationError("--shadow must be minimal, soft, dramatic or none")
        }
        if let framing, !["none", "amazon", "google", "shopify", "ebay"].contains(framing),
           !((try? JSONSerialization.jsonObject(with: Data(framing.utf8))) is [String: Any]) {
            throw ValidationError("--framing must be none, amazon, google, shopify, ebay or a JSON object")
        }
    }

    /// The batch options (the generate body), as the state file keeps them.
    var options: [String: String] {
        var options: [String: String] = [:]
        options["backgroundColor"] = background
        options["shadowStyle"] = shadow
        options["upscale"] = upscale.map(String.init)
        options["framing"] = framing
        options["removeWatermark"] = noWatermarkRemoval ? "false" : nil
        options["customInstructions"] = instructions
        options["notifyUrl"] = notifyURL
        return options
    }

    func run() async throws {
        let sources = try RunInputs.read(input)
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // One run per output folder at a time: two would each rewrite the state file with their own
        // view, lose each other's submissions and send them again (paying twice).
        let lock = try RunState.lock(folder)
        defer { close(lock) }
        var state = try RunState.load(from: folder) ?? RunState(options: options)
        guard state.options == options else {
            throw CommandFailure(description: """
                \(out) holds a run with other options (\(state.options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))); \
                use another --out, or the same options to resume it
                """)
        }
        state.add(sources)
        try state.save(to: folder)
        let interrupt = Interrupt()
        let summary = try await connection.withClient { client in
            let run = ProcessRun(
                client: client, folder: folder, state: state, batchSize: batchSize, collection: collection,
                progress: Progress(total: state.items.count, enabled: true))
            return await run.execute(interrupt: interrupt, cancelOnInterrupt: cancelOnInterrupt)
        }
        if json {
            printJSON(summary.json)
        } else {
            print(summary.text)
        }
        if summary.interrupted { throw ExitCode(130) }
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

/// What a run is given: files, media ids or image URLs, each with the name its result takes.
enum RunInputs {
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "webp", "gif"]

    static func read(_ path: String) throws -> [RunState.Source] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CommandFailure(description: "\(path): no such file or folder")
        }
        let url = URL(fileURLWithPath: path)
        if isFolder.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }
                .sorted()
            guard !names.isEmpty else { throw CommandFailure(description: "\(path) holds no .jpg, .jpeg, .png, .webp or .gif file") }
            return names.map { .init(kind: .file, value: url.appendingPathComponent($0).path, name: $0) }
        }
        if url.pathExtension.lowercased() == "csv" { return try csv(url) }
        return [.init(kind: .file, value: url.path, name: url.lastPathComponent)]
    }

    /// The first column of each line: a media id or an http(s) URL. A first line that is neither
    /// is a header; later ones are items that fail with the reason.
    static func csv(_ url: URL) throws -> [RunState.Source] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var sources: [RunState.Source] = []
        for (index, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            var cell = String(line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: .whitespaces)
            if cell.hasPrefix("\""), cell.hasSuffix("\""), cell.count >= 2 { cell = String(cell.dropFirst().dropLast()) }
            if cell.isEmpty { continue }
            if let id = UUID(uuidString: cell) {
                sources.append(.init(kind: .media, value: id.uuidString.lowercased(), name: id.uuidString.lowercased()))
            } else if let link = URL(string: cell), ["http", "https"].contains(link.scheme?.lowercased() ?? ""), link.host != nil {
                let last = link.lastPathComponent
                sources.append(.init(kind: .url, value: cell, name: last.isEmpty || last == "/" ? "line-\(index + 1)" : last))
            } else if index > 0 {
                sources.append(.init(kind: .invalid, value: cell, name: "line-\(index + 1)"))
            }
        }
        guard !sources.isEmpty else { throw CommandFailure(description: "\(url.path) names no media id or URL") }
        return sources
    }
}

/// Ctrl-C, noticed: the first one asks the run to stop; a second one ends the process at once.
///
/// A plain handler and a self-pipe: the handler does only what is async-signal-safe (one byte
/// written to a pipe), and a dispatch source reading the pipe runs the rest. The main thread of an
/// async `main` waits in `sigsuspend` with nothing blocked, so some thread always takes the signal.
/// (Not `DispatchSource.makeSignalSource`: on Linux it forwards the signal to the thread that
/// registered it, and a Ctrl-C was seen lost that way under load.)
final class Interrupt: @unchecked Sendable {
    private let lock = NSLock()
    private var handlers: [@Sendable () -> Void] = []
    private var fired = false
    private let reader: any DispatchSourceRead

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) != 0 { ends = [-1, -1] }
        let readEnd = ends[0]
        interruptPipe = ends[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        reader = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: .global())
        reader.setEventHandler { [weak self] in
            var bytes = [UInt8](repeating: 0, count: 16)
            let count = read(readEnd, &bytes, bytes.count)
            for _ in 0..<max(count, 0) { self?.fire() }
        }
        reader.resume()
        signal(SIGINT, interruptHandler)
    }

    var happened: Bool { lock.withLock { fired } }

    /// Runs `handler` on the first Ctrl-C (at once if it already came).
    func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if fired { return true }
            handlers.append(handler)
            return false
        }
        if now { handler() }
    }

    private func fire() {
        let toRun = lock.withLock { () -> [@Sendable () -> Void]? in
            if fired { return nil }
            fired = true
            defer { handlers = [] }
            return handlers
        }
        guard let toRun else {
            FileHandle.standardError.write(Data("\ninterrupted twice: stopping now\n".utf8))
            exit(130)
        }
        for handler in toRun { handler() }
    }
}

/// Where `interruptHandler` writes; set once, before the handler is installed.
nonisolated(unsafe) private var interruptPipe: Int32 = -1

/// The SIGINT handler: only what is async-signal-safe (write(2)).
private let interruptHandler: @convention(c) (Int32) -> Void = { _ in
    var byte: UInt8 = 1
    _ = write(interruptPipe, &byte, 1)
}
