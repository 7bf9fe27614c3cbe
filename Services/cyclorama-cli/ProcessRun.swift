import AsyncHTTPClient
import Foundation
import NIOCore

/// One `process` run: upload what is local, send batches, follow them, write each result; the
/// state is saved as it changes (at most twice a second, and at the end).
actor ProcessRun {
    let client: GatewayClient
    let folder: URL
    var state: RunState
    let batchSize: Int
    let collection: String?
    let progress: Progress
    private var lastSave = ContinuousClock.now
    /// Batches whose results wait for review (their results are fetched from the review, not the
    /// media, which changes only when they are approved).
    private var heldForReview: Set<String> = []
    /// Failed fetches of a result, by job: after ``fetchAttempts`` the item fails with the reason.
    private var fetchFailures: [String: Int] = [:]
    static let fetchAttempts = 5
    /// At most this many batches are followed (each holds an event stream) at once.
    static let followedAtOnce = 8

    init(client: GatewayClient, folder: URL, state: RunState, batchSize: Int, collection: String?, progress: Progress) {
        self.client = client
        self.folder = folder
        self.state = state
        self.batchSize = batchSize
        self.collection = collection
        self.progress = progress
    }

    /// Runs until every item is done or failed, or until Ctrl-C: then the run detaches (its jobs
    /// go on) or, with `cancelOnInterrupt`, cancels its open batches first.
    func execute(interrupt: Interrupt, cancelOnInterrupt: Bool) async -> RunSummary {
        let started = ContinuousClock.now
        progress.start(done: count(.done), failed: count(.failed))
        let work = Task { await self.work() }
        interrupt.onInterrupt { work.cancel() }
        await work.value
        let interrupted = interrupt.happened
        var cancelled = 0
        if interrupted, cancelOnInterrupt {
            for batch in Set(state.items.filter { $0.stage == .submitted }.compactMap(\.batchId)) {
                if (try? await client.json(.POST, "/api/ai-image/batch/\(batch)/cancel", body: [:])) != nil { cancelled += 1 }
            }
            if cancelled > 0 { await reconcileAll() }
        }
        saveNow()
        progress.finish()
        return RunSummary(
            items: state.items, cost: state.costs.values.reduce(0, +), seconds: (ContinuousClock.now - started) / .seconds(1),
            interrupted: interrupted, cancelledBatches: cancelled, folder: folder.path)
    }

    private func count(_ stage: RunState.Stage) -> Int { state.items.filter { $0.stage == stage }.count }

    private func work() async {
        await upload()
        guard !Task.isCancelled else { return }
        await submit()
        guard !Task.isCancelled else { return }
        await follow()
    }

    // MARK: Upload

    private func upload() async {
        for index in state.items.indices where state.items[index].stage == .pending {
            guard !Task.isCancelled else { return }
            let source = state.items[index].source
            do {
                switch source.kind {
                case .media:
                    state.items[index].mediaId = source.value
                case .invalid:
                    throw CommandFailure(description: "\"\(source.value.prefix(80))\" is neither a media id nor an http(s) URL")
                case .file:
                    guard let data = FileManager.default.contents(atPath: source.value) else {
                        throw CommandFailure(description: "cannot read \(source.value)")
                    }
                    state.items[index].mediaId = try await uploaded(Array(data), name: source.name, source: source)
                case .url:
                    state.items[index].mediaId = try await uploaded(try await fetch(source.value), name: source.name, source: source)
                }
                state.items[index].stage = .uploaded
            } catch {
                // Interrupted (whatever the client made of the cancellation): the item stays
                // pending for the next run, not failed.
                if Task.isCancelled || error is CancellationError { return }
                fail(index, "\(error)")
            }
            changed()
        }
    }

    /// The state is saved at most twice a second, so a crash may forget the last uploads: each
    /// carries an Idempotency-Key made from the run and its source (and its bytes' size), and the
    /// run after the crash gets the same media back instead of a copy.
    private func uploaded(_ bytes: [UInt8], name: String, source: RunState.Source) async throws -> String {
        let key = idempotencyKey("upload-\(Self.digest("\(source.kind.rawValue):\(source.value):\(bytes.count)"))")
        var attempt = 0
        while true {
            do {
                let media = try await client.upload(bytes, name: name, collection: collection, key: key)
                guard let id = media["id"] as? String else { throw CommandFailure(description: "the upload answer names no media id") }
                return id
            } catch let failure as GatewayClient.Failure where failure.code == "idempotency_in_progress" && attempt < 30 {
                // The same upload, sent before an interrupt, is still being stored: its answer
                // comes back once it is.
                attempt += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// An image on the web (what a CSV names), at most 15 MB (what an upload may be).
    private func fetch(_ url: String) async throws -> [UInt8] {
        let response = try await client.http.execute(HTTPClientRequest(url: url), timeout: .seconds(120))
        guard response.status == .ok else { throw CommandFailure(description: "\(url) answered \(response.status.code)") }
        do {
            return Array(buffer: try await response.body.collect(upTo: 15 * 1024 * 1024))
        } catch {
            throw CommandFailure(description: "\(url) is larger than an upload may be (15 MB)")
        }
    }

    // MARK: Submit

    /// Sends the uploaded items as batches. Each batch carries an Idempotency-Key made from the
    /// run and its media ids, so a batch sent just before a crash is found, not sent again.
    private func submit() async {
        var waiting = state.items.indices.filter { state.items[$0].stage == .uploaded }
        while !waiting.isEmpty, !Task.isCancelled {
            let chunk = Array(waiting.prefix(batchSize))
            waiting.removeFirst(chunk.count)
            var members = chunk
            for _ in 0..<3 where !members.isEmpty {
                let ids = members.map { state.items[$0].mediaId! }
                var options: [String: Any] = [:]
                var body: [String: Any] = ["mediaIds": ids]
                for (key, value) in state.options {
                    switch key {
                    case "upscale": options[key] = Int(value) ?? 1
                    case "removeWatermark": options[key] = value == "true"
                    // A preset's name, or an explicit frame as JSON (checked when the command was read).
                    case "framing": options[key] = value.hasPrefix("{") ? (try? JSONSerialization.jsonObject(with: Data(value.utf8))) ?? value : value
                    // Beside the options: where each item's terminal event is POSTed.
                    case "notifyUrl": body[key] = value
                    default: options[key] = value
                    }
                }
                body["options"] = options
                // The run and its media: the same batch sent again (after a crash lost its answer)
                // is found, not made twice. An item asked for again after it failed adds its
                // retry count, so that asking again makes a new job.
                let named = members.map { index in
                    state.items[index].retry.map { "\(state.items[index].mediaId!)#\($0)" } ?? state.items[index].mediaId!
                }
                let key = idempotencyKey(Self.digest(named.joined(separator: ",")))
                do {
                    let answer = try await client.json(
                        .POST, "/api/ai-image/batch", body: body, headers: [("Idempotency-Key", key)])
                    let batch = answer["batchId"] as? String
                    if let batch, answer["review"] as? Bool == true { heldForReview.insert(batch) }
                    let jobs = answer["jobs"] as? [GatewayClient.Object] ?? []
                    for index in members {
                        let job = jobs.first { $0["mediaId"] as? String == state.items[index].mediaId }
                        guard let batch, let jobId = job?["jobId"] as? String else {
                            fail(index, "the batch answer has no job for this media")
                            continue
                        }
                        state.items[index].batchId = batch
                        state.items[index].jobId = jobId
                        state.items[index].stage = .submitted
                    }
                    members = []
                    saveNow()
                } catch let failure as GatewayClient.Failure where failure.status == 404 || failure.code == "not_an_image" {
                    // The answer names the media it refused: they fail, the rest go again.
                    let refused = members.filter { failure.message.contains(state.items[$0].mediaId!) }
                    if refused.isEmpty {
                        for index in members { fail(index, failure.description) }
                        members = []
                    }
                    for index in refused { fail(index, failure.description) }
                    members.removeAll { refused.contains($0) }
                } catch {
                    if Task.isCancelled { return }
                    for index in members { fail(index, "\(error)") }
                    members = []
                }
                changed()
            }
        }
    }

    /// The `Idempotency-Key` of one request of this run: the same on every resume, so a request
    /// the gateway already took is answered with what it made, never made twice.
    private func idempotencyKey(_ what: String) -> String { "cyclorama-cli-\(state.runId)-\(what)" }

    /// FNV-1a, 64 bits, in hex: a stable name for a set of ids.
    static func digest(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    // MARK: Follow

    /// Follows every open batch, at most ``followedAtOnce`` at a time (each holds a connection for
    /// its event stream, and the downloads need theirs).
    private func follow() async {
        var batches = Set(state.items.filter { $0.stage == .submitted }.compactMap(\.batchId)).sorted()[...]
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.followedAtOnce {
                guard let batch = batches.popFirst() else { break }
                group.addTask { await self.follow(batch) }
            }
            for await _ in group {
                guard let batch = batches.popFirst() else { continue }
                group.addTask { await self.follow(batch) }
            }
        }
    }

    private func open(in batch: String) -> Bool {
        state.items.contains { $0.batchId == batch && $0.stage == .submitted }
    }

    /// Reads the batch, then its event stream, again and again until none of its items is open.
    private func follow(_ batch: String) async {
        var pause: Duration = .milliseconds(500)
        while open(in: batch), !Task.isCancelled {
            do {
                try await reconcile(batch)
                guard open(in: batch) else { return }
                for try await event in client.events("batchId=\(batch)") {
                    guard !Task.isCancelled else { return }
                    guard let data = try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? GatewayClient.Object else { continue }
                    if event.name == "item" {
                        await settle(data)
                    } else if event.name == "batch", let cost = data["cost"] as? Double {
                        state.costs[batch] = cost
                    }
                    if !open(in: batch) { return }
                }
                // The stream ended with items still open here: the batch ended on the server (the
                // stream ends then) and a result could not be fetched yet. Not again at once.
                guard open(in: batch) else { return }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(10))
            } catch {
                if Task.isCancelled { return }
                progress.note("batch \(batch): \(error); trying again")
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(10))
            }
        }
    }

    private func reconcileAll() async {
        for batch in Set(state.items.compactMap(\.batchId)) { try? await reconcile(batch) }
    }

    /// Takes every item's state from the batch (what happened while no stream was open).
    private func reconcile(_ batch: String) async throws {
        let answer = try await client.json(.GET, "/api/ai-image/batch/\(batch)")
        if let cost = answer["cost"] as? Double { state.costs[batch] = cost }
        if answer["review"] as? Bool == true { heldForReview.insert(batch) }
        for item in answer["items"] as? [GatewayClient.Object] ?? [] { await settle(item) }
    }

    /// An item's new status: COMPLETED fetches the result, FAILED and CANCELLED fail it.
    private func settle(_ item: GatewayClient.Object) async {
        guard let jobId = item["jobId"] as? String,
              let index = state.items.firstIndex(where: { $0.jobId == jobId && $0.stage == .submitted }) else { return }
        switch item["status"] as? String {
        case "COMPLETED":
            do {
                // Held for review, the media still shows the photo until someone approves: the
                // result is the one the review holds.
                let batch = state.items[index].batchId ?? ""
                let file = heldForReview.contains(batch)
                    ? try await client.file(at: "/api/ai-image/batch/\(batch)/review/\(jobId)/file")
                    : try await client.file(of: state.items[index].mediaId!)
                let name = state.items[index].stem + "." + Self.fileExtension(file.type)
                try write(file.bytes, to: name)
                state.items[index].result = name
                state.items[index].stage = .done
                progress.finished(state.items[index].source.name, result: name)
            } catch let failure as GatewayClient.Failure where failure.status == 404 {
                // Deleted since it was made: there is nothing to fetch, ever.
                fail(index, "the result could not be fetched: \(failure)")
            } catch {
                let failures = fetchFailures[jobId, default: 0] + 1
                fetchFailures[jobId] = failures
                guard failures >= Self.fetchAttempts else {
                    progress.note("\(state.items[index].source.name): the result could not be fetched (\(error)); trying again")
                    return
                }
                fail(index, "the result could not be fetched (\(failures) tries): \(error)")
            }
        case "FAILED", "CANCELLED":
            let error = item["error"] as? GatewayClient.Object
            fail(index, "\(item["status"] as! String): \(error?["message"] as? String ?? error?["code"] as? String ?? "no reason given")")
        default:
            return
        }
        changed()
    }

    private func write(_ bytes: [UInt8], to name: String) throws {
        let temporary = folder.appendingPathComponent(".\(name).part")
        try Data(bytes).write(to: temporary)
        try moveIntoPlace(temporary, folder.appendingPathComponent(name))
    }

    static func fileExtension(_ type: String) -> String {
        switch type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() {
        case "image/png": "png"
        case "image/webp": "webp"
        case "image/gif": "gif"
        default: "jpg"
        }
    }

    // MARK: State

    private func fail(_ index: Int, _ reason: String) {
        state.items[index].stage = .failed
        state.items[index].error = reason
        progress.failed(state.items[index].source.name, reason: reason)
    }

    private func changed() {
        progress.update(done: count(.done), failed: count(.failed))
        if ContinuousClock.now - lastSave > .milliseconds(500) { saveNow() }
    }

    private func saveNow() {
        do {
            try state.save(to: folder)
            lastSave = .now
        } catch {
            progress.note("could not save the run's state in \(folder.path): \(error)")
        }
    }
}

/// The end of a run, for people and for scripts.
struct RunSummary: Sendable {
    var items: [RunState.Item]
    var cost: Double
    var seconds: Double
    var interrupted: Bool
    var cancelledBatches: Int
    var folder: String

    var done: Int { items.filter { $0.stage == .done }.count }
    var failed: Int { items.filter { $0.stage == .failed }.count }
    var running: Int { items.count - done - failed }

    var json: [String: Any] {
        [
            "total": items.count, "done": done, "failed": failed, "running": running,
            "cost": cost, "seconds": (seconds * 10).rounded() / 10, "interrupted": interrupted, "output": folder,
            "failures": items.filter { $0.stage == .failed }.map { ["name": $0.source.name, "reason": $0.error ?? ""] },
            "results": items.filter { $0.stage == .done }.map { ["name": $0.source.name, "result": $0.result ?? "", "mediaId": $0.mediaId ?? ""] },
        ]
    }

    var text: String {
        var lines = ["\(done) of \(items.count) done, \(failed) failed" + (running > 0 ? ", \(running) still running" : "")
            + String(format: ", cost $%.2f, %.0f s; results in %@", cost, seconds, folder)]
        for item in items where item.stage == .failed { lines.append("  failed \(item.source.name): \(item.error ?? "")") }
        if interrupted {
            lines.append(cancelledBatches > 0
                ? "interrupted: \(cancelledBatches) batch(es) cancelled; run the same command again to try what is left"
                : "interrupted: the jobs go on in Cyclorama; run the same command again to follow them and fetch their results (or pass --cancel-on-interrupt to cancel instead)")
        }
        return lines.joined(separator: "\n")
    }
}
