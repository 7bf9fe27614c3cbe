import FaultSuite
import Foundation
import Testing
import TestSupport

/// `make test-faults`: one round of every fault of the catalog (docs/reliability.md), each on a
/// fresh system over a private set of servers the faults may stop and kill, spread over lanes
/// (`CYCLORAMA_FAULT_LANES`, default 6), and each round's history checked against I1–I7. `make chaos`
/// runs more rounds and prints the table.
@Suite("Faults", .timeLimit(.minutes(60)))
struct FaultTests {
    @Test func everyAcceptedJobEndsOnceWhateverFails() async throws {
        let faults = FaultCatalog.all()
        let lanes = PrivateServers.faultLanes
        // Unbuffered: a long run shows its rounds as they go, in CI's log too.
        let reports = try await FaultCampaign(faults: faults, rounds: 1, lanes: lanes) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }.run(serversName: "fault-tests")
        #expect(reports.count == faults.count)
        for report in reports {
            #expect(report.violations.isEmpty, "\(report.fault): \(report.violations.joined(separator: "\n"))")
            #expect(report.terminal == report.jobs, "\(report.fault): \(report.stuck) job(s) never ended")
        }
        print(ChaosTable.markdown(reports))
    }
}
