@testable import ApiGateway
import AsyncHTTPClient
import Crypto
import Database
import Foundation
import HTTPTypes
import PostgresNIO
import ServiceCore
import Synchronization
import Testing
import TestSupport

/// The gateway's notification sender in this process, on a real database and a real receiver on
/// loopback: the database makes one notification when a job ends, the sender signs and POSTs it,
/// records every attempt, retries what is not taken and refuses an address before connecting.
@Suite("Notification sender", .timeLimit(.minutes(6)))
struct NotificationSenderTests {
    static let secret = "whsec_test-secret-0123456789abcdef"

    /// A migrated database with one media item, a sender for it, and `body`.
    func withSender(
        hosts: HostAllowList, policy: NotificationPolicy,
        resolve: @escaping @Sendable (String) async -> [String] = { _ in [] },
        secret: @escaping @Sendable () async throws -> String? = { NotificationSenderTests.secret },
        _ body: @Sendable (NotificationSender, JobLedger, NotificationStore, UUID) async throws -> Void
    ) async throws {
        let database = try await TemporaryDatabase.create()
        defer { Task { await database.drop() } }
        let http = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2))))
        do {
            try await SystemDatabase.withClient(database.url) { client in
                _ = try await Migrator(logger: .init(label: "test.migrator")).migrate(on: client)
                let media = try await MediaStore(client: client).create(
                    collection: "PRODUCTS", originalFilename: "a.jpg",
                    file: StoredFile(path: "aa/bb/a.jpg", mimeType: "image/jpeg", width: 10, height: 10, bytes: 100,
                                     sha256: String(repeating: "a", count: 64)))
                let ledger = JobLedger(client: client)
                let store = NotificationStore(client: client)
                let sender = NotificationSender(
                    store: store, ledger: ledger, media: MediaStore(client: client), http: http, hosts: hosts, resolve: resolve,
                    secret: secret, policy: policy, logger: .init(label: "test.notifications"))
                try await body(sender, ledger, store, media.id)
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// Sweeps until the job's notification is no longer PENDING (or `timeout`).
    func settle(_ sender: NotificationSender, _ store: NotificationStore, job: UUID, timeout: Duration = .seconds(30)) async throws
        -> (NotificationRecord, [NotificationAttempt]) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try await sender.sweep()
            if let found = try await store.notification(forJob: job), found.0.status != .pending { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try #require(try await store.notification(forJob: job), "the job has a notification")
    }

    /// ``fastPolicy(retryFor:)`` with waits of up to a second, for a long window.
    static func slowerPolicy(retryFor: Duration) -> NotificationPolicy {
        var policy = fastPolicy(retryFor: retryFor)
        policy.longestWait = .seconds(1)
        return policy
    }

    static func fastPolicy(retryFor: Duration = .seconds(60)) -> NotificationPolicy {
        var policy = NotificationPolicy()
        policy.firstRetry = .milliseconds(50)
        policy.longestWait = .milliseconds(200)
        // An attempt's deadline the receivers here meet with seconds to spare (the test process's
        // executor has stalled for seconds under a full run), and the slow one misses by far.
        policy.timeout = .seconds(5)
        policy.retryFor = retryFor
        return policy
    }

    @Test func aJobThatEndsIsPostedOnceSignedAndTriedAgainUntilTheReceiverTakesIt() async throws {
        // 500, 500, too slow (past the attempt's timeout), then 200.
        let receiver = try await TestHTTPServer(delay: { _, index in index == 2 ? .seconds(30) : nil }) { _, index in
            (index < 2 ? .internalServerError : .ok, [:], [])
        }
        defer { Task { await receiver.stop() } }
        try await withSender(hosts: HostAllowList(["127.0.0.1:\(receiver.port)"]), policy: Self.fastPolicy()) { sender, ledger, store, mediaId in
            let job = UUID()
            try await ledger.insert(NewJob(id: job, mediaId: mediaId, correlationId: "c", notifyURL: "\(receiver.url)/hooks?shop=1"))
            #expect(try await store.notification(forJob: job) == nil, "nothing before the job ends")
            #expect(try await sender.sweep() == 0)
            try await ledger.fail(job, code: "backend_failed", message: "the backend gave up")
            // A second end (cancel after fail) is not a second notification.
            _ = try await ledger.cancel(job)

            // Time enough under a full parallel run: in-process imaging tests have stalled the whole
            // executor for 40 s, deadlines included; the checks below are what they were.
            let (record, attempts) = try await settle(sender, store, job: job, timeout: .seconds(120))
            #expect(record.status == .delivered, "\(record)")
            #expect(record.event == "job.failed")
            #expect(attempts.map(\.statusCode) == [500, 500, nil, 200], "\(attempts)")
            // Checked before indexing: a missing attempt fails this test, not the whole run.
            try #require(attempts.count == 4)
            #expect(attempts[2].error?.contains("no answer within") == true, "\(attempts[2])")
            #expect(attempts.allSatisfy { $0.durationMilliseconds != nil })
            #expect(attempts[3].error == nil)

            let received = await receiver.waitForRequests(4, path: "/hooks", timeout: .seconds(5))
            #expect(received.count == 4, "one POST per attempt")
            let body = try #require(received.first?.body)
            for (index, request) in received.enumerated() {
                #expect(request.method == "POST")
                #expect(request.body == body, "every attempt sends the same bytes")
                #expect(request.headers[.init("Cyclorama-Notification-Id")!] == record.id.lowercasedString)
                #expect(request.headers[.init("Cyclorama-Attempt")!] == String(index + 1))
                let signature = try #require(request.headers[.init("Cyclorama-Signature")!])
                #expect(NotificationSignatureCheck.verify(signature, body: request.body, secret: Self.secret), "\(signature)")
                #expect(!NotificationSignatureCheck.verify(signature, body: request.body, secret: "another secret"))
            }
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            #expect(json["id"] as? String == record.id.lowercasedString)
            #expect(json["type"] as? String == "job.failed")
            let sent = try #require(json["job"] as? [String: Any])
            #expect(sent["jobId"] as? String == job.lowercasedString)
            #expect(sent["status"] as? String == "FAILED")
            #expect((sent["error"] as? [String: Any])?["code"] as? String == "backend_failed")

            // Delivered is final: later rounds send nothing.
            #expect(try await sender.sweep() == 0)
            #expect(await receiver.received(path: "/hooks").count == 4)
        }
    }

    /// AsyncHTTPClient's deadline ends with the answer's head: a receiver that sends its head and
    /// then stalls its body held the whole round (every other receiver's notification) until the
    /// periodic work's limit, and past the lease, so another gateway could send the same attempt.
    @Test func aReceiverThatStallsItsAnswerIsCutOffAtTheAttemptsTimeout() async throws {
        let receiver = try await TestHTTPServer(stall: { _, index in index == 0 ? .seconds(120) : nil }) { _, _ in
            (.ok, [:], Array("taken".utf8))
        }
        defer { Task { await receiver.stop() } }
        let policy = Self.fastPolicy()
        try await withSender(hosts: HostAllowList(["127.0.0.1:\(receiver.port)"]), policy: policy) { sender, ledger, store, mediaId in
            let job = UUID()
            try await ledger.insert(NewJob(id: job, mediaId: mediaId, correlationId: "c", notifyURL: "\(receiver.url)/stalls"))
            _ = try await ledger.cancel(job)
            let started = ContinuousClock.now
            #expect(try await sender.sweep() == 1)
            let round = ContinuousClock.now - started
            // The receiver stalls for 120 s; the attempt ends at its 5 s timeout (with room for a
            // loaded machine), well within the lease.
            #expect(round < .seconds(60) && round < policy.lease, "the round took \(round)")
            let (record, attempts) = try await settle(sender, store, job: job, timeout: .seconds(120))
            #expect(record.status == .delivered, "\(record)")
            #expect(attempts.map(\.statusCode) == [nil, 200], "\(attempts)")
            #expect(attempts.first?.error?.contains("no answer within") == true, "\(attempts)")
        }
    }

    /// The last attempt goes out at the end of the window, not a backed-off wait before it; after
    /// the end a failure is final.
    @Test func theLastAttemptIsAtTheEndOfTheWindow() {
        var policy = NotificationPolicy()
        policy.firstRetry = .seconds(600)
        policy.longestWait = .seconds(3600)
        policy.retryFor = .seconds(86_400)
        let created = Date(timeIntervalSince1970: 1_800_000_000), end = created.addingTimeInterval(86_400)
        // Early on: the backed-off wait (600 s, give or take a fifth).
        let second = policy.nextAttempt(after: 1, createdAt: created, now: created, jitter: 0.5)
        #expect(second == created.addingTimeInterval(600))
        // 23 h 05 min in, with an hour's wait ahead: once more, at the end, instead of giving up.
        #expect(policy.nextAttempt(after: 9, createdAt: created, now: created.addingTimeInterval(83_100), jitter: 0.5) == end)
        #expect(policy.nextAttempt(after: 10, createdAt: created, now: end, jitter: 0.5) == nil, "after the window: final")
    }

    @Test func anAddressThatIsNotPublicIsRefusedBeforeAnyConnect() async throws {
        let receiver = try await TestHTTPServer { _, _ in (.ok, [:], []) }
        defer { Task { await receiver.stop() } }
        let asked = Mutex<[String]>([])
        // Allowed only by name or `*`: a name that resolves to a private address, a loopback literal
        // on the receiver's own port (had it connected, the receiver would have seen it).
        try await withSender(
            hosts: HostAllowList(["*"]), policy: Self.fastPolicy(),
            resolve: { host in
                asked.withLock { $0.append(host) }
                return host == "hooks.shop.example" ? ["203.0.113.9", "10.1.2.3"] : []
            }
        ) { sender, ledger, store, mediaId in
            let byName = UUID(), literal = UUID(), unresolved = UUID()
            try await ledger.insert(NewJob(id: byName, mediaId: mediaId, correlationId: "c", notifyURL: "https://hooks.shop.example/x"))
            try await ledger.insert(NewJob(id: literal, mediaId: mediaId, correlationId: "c", notifyURL: "\(receiver.url)/x"))
            try await ledger.insert(NewJob(id: unresolved, mediaId: mediaId, correlationId: "c", notifyURL: "https://nowhere.shop.example/x"))
            for job in [byName, literal, unresolved] { _ = try await ledger.cancel(job) }

            let (named, namedAttempts) = try await settle(sender, store, job: byName)
            #expect(named.status == .abandoned)
            #expect(named.lastError?.contains("10.1.2.3") == true && named.lastError?.contains("private") == true, "\(named)")
            #expect(namedAttempts.count == 1 && namedAttempts[0].statusCode == nil)
            let (loopback, _) = try await settle(sender, store, job: literal)
            #expect(loopback.status == .abandoned)
            #expect(loopback.lastError?.contains("loopback") == true, "\(loopback)")
            #expect(await receiver.received().isEmpty, "nothing connected to the loopback receiver")

            // A name that does not resolve now may later: tried again, not abandoned.
            try await sender.sweep()
            let waiting = try #require(try await store.notification(forJob: unresolved))
            #expect(waiting.0.status == .pending && waiting.0.lastError?.contains("does not resolve") == true, "\(waiting.0)")
            #expect(asked.withLock { $0 }.contains("nowhere.shop.example"))
        }
    }

    @Test func withoutASecretNothingIsSentAndTheRetriesEndAfterTheirWindow() async throws {
        let receiver = try await TestHTTPServer { _, _ in (.serviceUnavailable, [:], []) }
        defer { Task { await receiver.stop() } }
        let secret = Mutex<String?>(nil)
        try await withSender(
            // A window far longer than the first rounds' work, so that a loaded machine still fits
            // three attempts in it: a 2 s window fitted two under a full test run's load, and a 5 s
            // one none after the first when an in-process imaging test stalled the executor for
            // 40 s (CI, 2026-12-05). Waits of up to 1 s keep it to about 60 attempts (the store lists
            // the last 100).
            hosts: HostAllowList(["127.0.0.1:\(receiver.port)"]), policy: Self.slowerPolicy(retryFor: .seconds(60)),
            secret: { secret.withLock { $0 } }
        ) { sender, ledger, store, mediaId in
            let job = UUID()
            try await ledger.insert(NewJob(id: job, mediaId: mediaId, correlationId: "c", notifyURL: "\(receiver.url)/n"))
            _ = try await ledger.cancel(job)
            try await sender.sweep()
            let unsigned = try #require(try await store.notification(forJob: job))
            #expect(unsigned.0.status == .pending && unsigned.0.lastError?.contains("aiImageNotifySecret") == true, "\(unsigned.0)")
            #expect(await receiver.received().isEmpty, "nothing goes out unsigned")

            secret.withLock { $0 = Self.secret }
            // Time enough under a full parallel run's load (the executor stalled for 40 s once); the
            // checks below are what they were.
            let (record, attempts) = try await settle(sender, store, job: job, timeout: .seconds(120))
            #expect(record.status == .abandoned, "a receiver that never takes it: given up after the window")
            #expect(record.lastError?.contains("gave up after") == true && record.lastError?.contains("HTTP 503") == true, "\(record)")
            #expect(attempts.count >= 3 && attempts.count == record.attempts, "\(attempts.count) attempts, \(record.attempts) counted")
            #expect(await receiver.received(path: "/n").count == attempts.count - 1, "every signed attempt reached it")
        }
    }
}
