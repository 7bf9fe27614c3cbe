import Foundation

/// CPU time per process name, read from /proc: what each of the system's processes (the services,
/// the broker's Erlang VM, PostgreSQL's backends, Redis, the benchmark itself) spent between two
/// readings. Processes are grouped by their command name (`comm`, at most 15 characters), so all
/// PostgreSQL backends count as one. A process that ends between the readings loses its share (the
/// services, the servers and their connections live for the whole run).
struct ProcessCPU {
    /// CPU seconds (user + system) per command name.
    var seconds: [String: Double]

    static func read() -> ProcessCPU {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var seconds: [String: Double] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries where entry.allSatisfy(\.isNumber) {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
            else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            // Fields after the name: state is field 3, utime 14 and stime 15 (proc(5)).
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            seconds[name, default: 0] += (user + system) / ticks
        }
        return ProcessCPU(seconds: seconds)
    }

    /// What each name spent since `earlier`, names that spent nothing left out.
    func since(_ earlier: ProcessCPU) -> [String: Double] {
        seconds.reduce(into: [:]) { spent, entry in
            let used = entry.value - (earlier.seconds[entry.key] ?? 0)
            if used > 0 { spent[entry.key] = used }
        }
    }

    /// The table of CPU milliseconds per job, largest first; names under 1 % of the total are summed
    /// as "other".
    static func table(_ spent: [String: Double], jobs: Int, wall: Duration) -> [String] {
        let total = spent.values.reduce(0, +)
        guard jobs > 0, total > 0 else { return ["(no CPU time measured)"] }
        var rows = spent.filter { $0.value >= total / 100 }.sorted { $0.value > $1.value }
        let other = spent.filter { $0.value < total / 100 }.values.reduce(0, +)
        if other > 0 { rows.append(("other", other)) }
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        func ms(_ seconds: Double) -> String { String(format: "%.2f", seconds * 1000 / Double(jobs)) }
        var lines = [
            "| process | CPU per job (ms) | share |",
            "|---------|------------------|-------|",
        ]
        for (name, used) in rows {
            lines.append("| \(name) | \(ms(used)) | \(String(format: "%.0f %%", used / total * 100)) |")
        }
        lines.append("| **all** | \(ms(total)) | 100 % |")
        lines.append("")
        lines.append(String(
            format: "%d jobs in %.1f s wall; the machine's %d cores were %.0f %% busy with these processes",
            jobs, wallSeconds, ProcessInfo.processInfo.activeProcessorCount,
            total / max(wallSeconds, 0.001) / Double(ProcessInfo.processInfo.activeProcessorCount) * 100))
        return lines
    }
}
