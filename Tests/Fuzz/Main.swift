import Foundation
import FuzzSuite

/// `make fuzz [FUZZ_INPUTS=100000] [FUZZ_MESSAGES=n] [FUZZ_SEED=n] [FUZZ_LANES=4]`: the long fuzz run. Sends
/// FUZZ_INPUTS mutated bodies to the gateway's routes and a tenth as many (or FUZZ_MESSAGES)
/// mutated messages to the queues, prints what
/// they got, and exits non-zero when any broke a rule (docs/security.md).
@main
struct FuzzMain {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let inputs = environment["FUZZ_INPUTS"].flatMap(Int.init) ?? 100_000
        // The queue messages: a tenth of the bodies unless FUZZ_MESSAGES says (FUZZ_INPUTS=0
        // FUZZ_MESSAGES=n replays only a run's messages: they come from the seed + 1).
        let messages = environment["FUZZ_MESSAGES"].flatMap(Int.init) ?? max(100, inputs / 10)
        let seed = environment["FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        // Bodies in flight at once (the inputs are the same for a seed whatever this is).
        let lanes = environment["FUZZ_LANES"].flatMap(Int.init) ?? 4
        let started = Date()
        let reports = try await FuzzSystem.run { system, media, image in
            let http = try await HTTPFuzz(system: system, mediaIds: media, image: image).run(inputs: inputs, seed: seed, lanes: lanes) { report in
                say("  … \(report.tried) HTTP inputs, \(report.failureCount) broke a rule (\(Int(Date().timeIntervalSince(started))) s)")
            }
            let queues = try await QueueFuzz(system: system).run(inputs: messages, seed: seed &+ 1)
            return [http, queues]
        }
        for report in reports { say(report) }
        say("in \(Int(Date().timeIntervalSince(started))) s")
        if reports.contains(where: { $0.failureCount > 0 }) { exit(1) }
    }
}

/// One line to standard output at once (print is buffered when the output is a file or a pipe).
func say(_ line: some CustomStringConvertible) {
    FileHandle.standardOutput.write(Data("\(line)\n".utf8))
}
