import Database
import Foundation
import ServiceCore
import Messaging
import PostgresNIO
import Shared
import TestSupport
import Timing

/// What one round did, and which invariants (docs/reliability.md, I1–I7) it broke.
public struct RoundReport: Sendable {
    public var fault: String
    public var backend: String
    public var transient: Bool
    public var jobs = 0
    public var terminal = 0
    public var completed = 0
    public var cancelled = 0
    public var failedByCode: [String: Int] = [:]
    /// I1: not ended by the end of the drain limit.
    public var stuck = 0
    /// I2: jobs with more than one media version, and media with more generated versions than completed jobs.
    public var doubleApplied = 0
    /// I3: submissions of one job attempt beyond the first the backend accepted.
    public var doubleSubmitted = 0
    /// I3: backend jobs still running at the end, or run to their end without being the job's result.
    public var orphans = 0
    /// I4: the most jobs at the backend at once (by its own record), and the limit.
    public var peak = 0
    public var limit = 0
    /// I6: FAILED jobs without a known code or a message.
    public var unexplained = 0
    /// I7: dead-lettered messages whose job had not ended.
    public var deadLetteredOpen = 0
    /// Messages in dead-letter queues: of the round's jobs, and others (poison).
    public var deadLetteredJobs = 0
    public var deadLetteredOther = 0
    /// From recovery until the last job ended (0 when all had ended before).
    public var drainSeconds = 0.0
    public var violations: [String] = []

    public var failed: Int { failedByCode.values.reduce(0, +) }
    public var passed: Bool { violations.isEmpty }
}

/// Proves I1–I7 for one round from the ledger, the media versions, the backend's own record of
/// submissions and when each ran, and the dead-letter queues.
struct HistoryChecker: Sendable {
    let fault: Fault
    let limit: Int
    let jobIds: [UUID]
    let system: CycloramaSystem
    let standIn: RunPodStandIn?
    /// With the local engine: the most jobs its `/health` showed at once (sampled).
    let enginePeak: Int?
    let started: ContinuousClock.Instant
    let struck: ContinuousClock.Instant
    let recovered: ContinuousClock.Instant
    let lastEnded: ContinuousClock.Instant?

    /// Codes a FAILED job may carry (GenerationFailed's open set, as Cyclorama writes it).
    static let knownCodes: Set<String> = [
        "backend_failed", "timed_out", "invalid_request", "cancelled", "invalid_output", "media_not_found",
        "retries_exhausted", "misconfigured", "submission_unconfirmed", "result_expired",
    ]

    struct LedgerRow {
        var id: UUID
        var mediaId: UUID
        var status: String
        var code: String?
        var message: String?
        var backendJobId: String?
    }

    func check() async throws -> RoundReport {
        var report = RoundReport(fault: fault.name, backend: fault.backend.rawValue, transient: fault.transient)
        report.limit = limit
        report.jobs = jobIds.count
        let ids = jobIds
        let url = system.database.url
        // Read within a minute: a PostgresNIO call stuck past a server's restart must not hold the round for ever.
        let read = Task { try await SystemDatabase.withClient(url) { client in
            var rows: [LedgerRow] = []
            for try await (id, media, status, code, message, backendJobId) in try await client.query(
                "SELECT id, media_id, status, error_code, error, backend_job_id FROM generation_jobs WHERE id = ANY(\(ids))"
            ).decode((UUID, UUID, String, String?, String?, String?).self) {
                rows.append(LedgerRow(id: id, mediaId: media, status: status, code: code, message: message, backendJobId: backendJobId))
            }
            var versions: [UUID: Int] = [:]
            for try await (job, count) in try await client.query(
                "SELECT job_id, count(*)::int FROM media_versions WHERE job_id = ANY(\(ids)) GROUP BY job_id"
            ).decode((UUID, Int).self) { versions[job] = count }
            var perMedia: [UUID: Int] = [:]
            for try await (media, count) in try await client.query("""
                SELECT v.media_id, count(*)::int FROM media_versions v
                WHERE v.source = 'generation' AND v.media_id IN (SELECT media_id FROM generation_jobs WHERE id = ANY(\(ids)))
                GROUP BY v.media_id
                """).decode((UUID, Int).self) { perMedia[media] = count }
            return (rows, versions, perMedia)
        } }
        guard let answer = await awaitResult(of: read, atMost: .seconds(60)) else {
            read.cancel()
            throw FixtureError(message: "the ledger could not be read within a minute after the round")
        }
        let (rows, versions, perMedia) = try answer.get()
        let byId = Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })

        // I1: every accepted job ended.
        for id in jobIds {
            guard let row = byId[id] else {
                report.stuck += 1
                report.violations.append("I1: job \(id) has no ledger row")
                continue
            }
            switch row.status {
            case "COMPLETED": report.completed += 1
            case "CANCELLED": report.cancelled += 1
            case "FAILED": report.failedByCode[row.code ?? "-", default: 0] += 1
            default:
                report.stuck += 1
                report.violations.append("I1: job \(id) is still \(row.status)")
            }
        }
        report.terminal = report.jobs - report.stuck
        if let lastEnded, lastEnded > recovered { report.drainSeconds = (lastEnded - recovered).timeInterval }

        // I2: one applied version per job, none for a job that did not complete.
        for (job, count) in versions where count > 1 {
            report.doubleApplied += 1
            report.violations.append("I2: job \(job) has \(count) media versions")
        }
        var completedPerMedia: [UUID: Int] = [:]
        for row in rows where row.status == "COMPLETED" { completedPerMedia[row.mediaId, default: 0] += 1 }
        for (media, count) in perMedia where count > completedPerMedia[media, default: 0] {
            report.doubleApplied += 1
            report.violations.append("I2: media \(media) has \(count) generated versions for \(completedPerMedia[media, default: 0]) completed jobs")
        }

        // I3, I4: the backend's own record.
        if let standIn {
            let backendJobs = standIn.backendJobs()
            var byAttempt: [String: [RunPodStandIn.BackendJob]] = [:]
            for job in backendJobs { byAttempt[job.idempotencyKey ?? "(none) \(job.id)", default: []].append(job) }
            for (key, jobs) in byAttempt where jobs.count > 1 {
                report.doubleSubmitted += jobs.count - 1
                report.violations.append("I3: attempt \(key) was submitted \(jobs.count) times: \(jobs.map(\.id))")
            }
            let results = Set(rows.compactMap(\.backendJobId))
            for job in backendJobs {
                if job.endedAt == nil {
                    report.orphans += 1
                    report.violations.append("I3: backend job \(job.id) is still running and nobody follows it")
                } else if job.outcome == "COMPLETED", !results.contains(job.id) {
                    report.orphans += 1
                    report.violations.append("I3: backend job \(job.id) ran to its end unfollowed (its result was not used)")
                }
            }
            report.peak = standIn.peakActive()
        } else if let enginePeak {
            report.peak = enginePeak
        }
        if report.peak > limit {
            report.violations.append("I4: \(report.peak) jobs at the backend at once; the limit is \(limit)")
        }

        // I5: a transient fault fails no job.
        if fault.transient, report.failed > 0 {
            report.violations.append("I5: a transient fault failed \(report.failed) job(s): \(report.failedByCode)")
        }

        // I6: every failure says why, in words and a stable code.
        for row in rows where row.status == "FAILED" {
            let known = row.code.map(Self.knownCodes.contains) ?? false
            if !known || (row.message ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                report.unexplained += 1
                report.violations.append("I6: job \(row.id) FAILED with code \(row.code ?? "nil") and message \(row.message ?? "nil")")
            }
        }

        // I7: nothing sits in a dead-letter queue while its job is open.
        let ended = Set(rows.filter { ["COMPLETED", "FAILED", "CANCELLED"].contains($0.status) }.map(\.id))
        let ours = Set(jobIds)
        for message in try await deadLetters() {
            let text = String(decoding: message.body, as: UTF8.self)
            let jobId = (try? JSONDecoder().decode(JSONValue.self, from: Data(message.body)))?["jobId"]?.stringValue.flatMap(UUID.init(uuidString:))
            guard let jobId, ours.contains(jobId) else {
                report.deadLetteredOther += 1
                if !text.contains(Poison.marker) {
                    report.violations.append("a message nobody sent as poison was dead-lettered from \(message.queue): \(message.headers[Routing.Header.reason] ?? "-") \(text.prefix(200))")
                }
                continue
            }
            report.deadLetteredJobs += 1
            if !ended.contains(jobId) {
                report.deadLetteredOpen += 1
                report.violations.append("I7: job \(jobId) is open while its message sits in \(message.queue)")
            }
        }
        return report
    }

    /// Every message in the dead-letter queues of Cyclorama's queues (taken off them).
    private func deadLetters() async throws -> [Delivery] {
        let probe = try await BrokerProbe(url: system.amqpURL)
        var all: [Delivery] = []
        let queues = Routing.bindings.map(\.queue) + [Routing.Queue.webhookNotices]
        for queue in queues {
            all += try await probe.collect(10_000, on: Routing.Queue.deadLetter(for: queue), timeout: .seconds(1))
        }
        await probe.close()
        return all
    }
}
