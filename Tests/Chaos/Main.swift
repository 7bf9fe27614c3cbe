import FaultSuite
import Foundation

/// `make chaos`: many rounds of every fault (or of those named), each on a fresh system over a
/// private set of servers, every round's history checked against I1–I7 (docs/reliability.md);
/// prints the table docs/reliability.md keeps. Exits non-zero when any round broke an invariant.
///
///     chaos [--rounds N] [--lanes N (2)] [--only name,name] [--out file.md]
@main
struct Chaos {
    static func main() async throws {
        var rounds = 5
        var lanes = 2
        var only: [String] = []
        var output: String?
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--rounds": rounds = Int(arguments.next() ?? "") ?? rounds
            case "--lanes": lanes = Int(arguments.next() ?? "") ?? lanes
            case "--only": only = (arguments.next() ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case "--out": output = arguments.next()
            default:
                print("usage: chaos [--rounds N] [--lanes N] [--only name,name] [--out file.md]")
                exit(2)
            }
        }
        let faults = FaultCatalog.named(only)
        guard !faults.isEmpty else {
            print("no fault matches \(only); faults: \(FaultCatalog.all().map(\.name).joined(separator: "; "))")
            exit(2)
        }
        let started = Date()
        let campaign = FaultCampaign(faults: faults, rounds: rounds, lanes: lanes) { line in
            // Unbuffered, so a long run shows its progress as it goes.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        let reports = try await campaign.run(serversName: "chaos")
        let table = ChaosTable.markdown(reports)
        print("\n\(rounds) round(s) of \(faults.count) fault(s) in \(Int(Date().timeIntervalSince(started))) s\n")
        print(table)
        if let output { try (table + "\n").write(toFile: output, atomically: true, encoding: .utf8) }
        exit(reports.allSatisfy(\.passed) ? 0 : 1)
    }
}
