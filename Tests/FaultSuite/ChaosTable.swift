import Foundation
import TestSupport

/// Runs rounds of faults and sums them up: the rounds are spread over `lanes`, each lane a private
/// set of servers of its own running its rounds one after another (the machine mostly waits on
/// outages, so two lanes take about half the time).
public struct FaultCampaign: Sendable {
    public var faults: [Fault]
    public var rounds: Int
    public var lanes: Int
    public var log: @Sendable (String) -> Void

    public init(faults: [Fault], rounds: Int, lanes: Int = 2, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.faults = faults
        self.rounds = rounds
        self.lanes = max(1, lanes)
        self.log = log
    }

    /// Every round's report, in the catalog's order. A round that could not even be set up counts as a violation.
    public func run(serversName: String = "faults") async throws -> [RoundReport] {
        // The longest rounds first, each to the lane with the least work so far.
        var work: [(index: Int, round: Int, fault: Fault)] = []
        for round in 1...rounds {
            for (index, fault) in faults.enumerated() { work.append((index + (round - 1) * faults.count, round, fault)) }
        }
        var plan = Array(repeating: [(index: Int, round: Int, fault: Fault)](), count: lanes)
        var load = Array(repeating: 0, count: lanes)
        for item in work.sorted(by: { $0.fault.expectedSeconds > $1.fault.expectedSeconds }) {
            let lane = load.indices.min { load[$0] < load[$1] }!
            plan[lane].append(item)
            load[lane] += item.fault.expectedSeconds
        }
        // Every lane's servers first, then the rounds: booting six RabbitMQ nodes and six PostgreSQL
        // clusters at once takes the whole machine for a while, and `make test` starts its main run
        // beside this one only once the line below says that is over (scripts/beside.sh).
        let used = (0..<lanes).filter { !plan[$0].isEmpty }
        var servers: [Int: PrivateServers] = [:]
        var failure: (any Error)?
        await withTaskGroup(of: (Int, Result<PrivateServers, any Error>).self) { group in
            for lane in used {
                group.addTask {
                    // Twenty ports apart: each lane looks for free ports among twenty of its own.
                    do { return (lane, .success(try await PrivateServers.start(name: "\(serversName)-\(lane + 1)", slot: lane * 20))) }
                    catch { return (lane, .failure(error)) }
                }
            }
            for await (lane, result) in group {
                switch result {
                case .success(let set): servers[lane] = set
                case .failure(let error): failure = failure ?? error
                }
            }
        }
        if let failure {
            for set in servers.values { await set.stopAll() }
            throw failure
        }
        log(Self.serversUp(lanes: used.count))
        let started = servers
        let reports = await withTaskGroup(of: [(Int, RoundReport)].self) { group in
            for lane in used {
                let items = plan[lane], servers = started[lane]!
                group.addTask {
                    var reports: [(Int, RoundReport)] = []
                    for item in items {
                        reports.append((item.index, await runRound(item.fault, round: item.round, on: servers, lane: lane + 1)))
                    }
                    await servers.stopAll()
                    return reports
                }
            }
            var all: [(Int, RoundReport)] = []
            for await reports in group { all += reports }
            return all
        }
        return reports.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The line logged once every lane's servers have started (the Makefile's `make test` waits for it).
    public static func serversUp(lanes: Int) -> String { "the servers of all \(lanes) lanes are up" }

    private func runRound(_ fault: Fault, round: Int, on servers: PrivateServers, lane: Int) async -> RoundReport {
        let prefix = "[lane \(lane)] "
        log("\(prefix)round \(round)/\(rounds): \(fault.name) (\(fault.backend.rawValue))")
        var runner = FaultRound(fault: fault, servers: servers)
        let log = self.log
        runner.log = { log(prefix + $0) }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let report = try await runner.run()
            log("\(prefix)  \(report.passed ? "ok" : "VIOLATED") \(fault.name) in \(clock.now - start): \(report.completed)/\(report.jobs) completed, failed \(report.failedByCode), drain \(String(format: "%.1f", report.drainSeconds)) s, peak \(report.peak)/\(report.limit)")
            for violation in report.violations { log("\(prefix)    \(violation)") }
            return report
        } catch {
            var report = RoundReport(fault: fault.name, backend: fault.backend.rawValue, transient: fault.transient)
            report.violations = ["the round could not run: \(error)"]
            log("\(prefix)  ERROR \(fault.name): \(error)")
            // Whatever the fault left behind, the next round starts on running servers.
            for server in PrivateServers.Server.allCases { try? await servers.start(server) }
            return report
        }
    }
}

/// The table `make chaos` prints and docs/reliability.md keeps: per fault, what all its rounds did.
public enum ChaosTable {
    public static func markdown(_ reports: [RoundReport]) -> String {
        var order: [String] = []
        var byFault: [String: [RoundReport]] = [:]
        for report in reports {
            if byFault[report.fault] == nil { order.append(report.fault) }
            byFault[report.fault, default: []].append(report)
        }
        var lines = [
            "| fault | backend | rounds | jobs | terminal | COMPLETED | FAILED by reason | double-applied | double-submitted | orphans left | peak / limit | drain after recovery (max) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for fault in order {
            let rounds = byFault[fault]!
            let sum = { (value: (RoundReport) -> Int) in rounds.map(value).reduce(0, +) }
            var failed: [String: Int] = [:]
            for report in rounds { failed.merge(report.failedByCode, uniquingKeysWith: +) }
            let failedText = failed.isEmpty ? "0" : failed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let peak = rounds.map(\.peak).max() ?? 0
            let limit = rounds.map(\.limit).max() ?? 0
            let drain = rounds.map(\.drainSeconds).max() ?? 0
            let violations = rounds.flatMap(\.violations).count
            let backend = rounds.first?.backend ?? "-"
            lines.append(
                "| \(fault) | \(backend) | \(rounds.count) | \(sum(\.jobs)) | \(sum(\.terminal)) | \(sum(\.completed)) | \(failedText) | "
                    + "\(sum(\.doubleApplied)) | \(sum(\.doubleSubmitted)) | \(sum(\.orphans)) | \(peak) / \(limit) | "
                    + "\(String(format: "%.0f", drain)) s | \(violations == 0 ? "ok" : "\(violations) violation(s)") |")
        }
        return lines.joined(separator: "\n")
    }
}
