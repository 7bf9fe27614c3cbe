import Foundation

/// Progress on standard error: on a terminal one line redrawn in place (a bar, counts, rate and
/// time left); otherwise a plain line per photo that ends, which logs and CI read well.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let terminal: Bool
    private var startedAt = Date()
    private var doneAtStart = 0
    private var done = 0
    private var failed = 0

    init(total: Int, enabled: Bool) {
        self.total = total
        terminal = enabled && isatty(STDERR_FILENO) == 1
    }

    func start(done: Int, failed: Int) {
        lock.withLock {
            startedAt = Date()
            doneAtStart = done
            self.done = done
            self.failed = failed
        }
        if !terminal, done + failed > 0 { say("resuming: \(done) done, \(failed) failed before, \(total - done - failed) to go") }
        draw()
    }

    func update(done: Int, failed: Int) {
        lock.withLock {
            self.done = done
            self.failed = failed
        }
        draw()
    }

    func finished(_ name: String, result: String) {
        if !terminal { say("done    \(name) -> \(result)") }
    }

    func failed(_ name: String, reason: String) {
        if terminal { clearLine() }
        say("failed  \(name): \(reason)")
    }

    func note(_ text: String) {
        if terminal { clearLine() }
        say(text)
    }

    func finish() {
        if terminal {
            draw()
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }

    private func clearLine() { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }

    private func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
        if terminal { draw() }
    }

    private func draw() {
        guard terminal else { return }
        let (done, failed, rate) = lock.withLock { () -> (Int, Int, Double) in
            let seconds = max(Date().timeIntervalSince(startedAt), 0.001)
            return (self.done, self.failed, Double(self.done - doneAtStart) / seconds)
        }
        let width = 30
        let filled = total == 0 ? width : min(width, (done + failed) * width / total)
        let left = total - done - failed
        let eta = rate > 0 && left > 0 ? Self.duration(Double(left) / rate) : "--:--"
        let line = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(done + failed)/\(total)  done \(done)  failed \(failed)  " + String(format: "%.2f/s", rate) + "  left \(eta)"
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 3600 ? String(format: "%d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60) : String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
