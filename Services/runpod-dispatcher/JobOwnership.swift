import Foundation
import Logging
import Redis
import ServiceCore
import ServiceSupport
import Timing

/// What the dispatcher remembers about a job in Redis (``JobKeys/dispatch(_:)``), so that whichever
/// instance gets the dispatch message next — after a crash, a restart, a redelivery — re-attaches to
/// the backend job instead of submitting it again.
struct DispatchRecord: Codable, Sendable, Equatable {
    /// Wall-clock start, so the deadline survives restarts.
    var startedAt: Date
    var attempt: Int
    var backendJobId: String?
    var resubmits = 0
    /// A terminal event was published: a redelivery has nothing left to do.
    var finished = false
    /// When the current submission was sent with a webhook (nil: without one): until
    /// ``DispatcherConfiguration/webhookWait`` after it the follower waits for the webhook instead of polling.
    var webhookSince: Date?
    /// Set (and saved) just before `/run` is sent for ``attempt``, cleared once the backend's job id is
    /// known. A follower that finds it set without an id cannot know whether that submission reached
    /// the backend: it resolves it (``JobFollower``) instead of submitting blindly.
    var submittingSince: Date?
    /// How many times the job's record was saved, this save included: every save, by whichever
    /// follower, counts one more (nil in records from before it was kept). Of Redis's record and
    /// the ledger's copy, the one saved last is the truth.
    var saves: Int?

    /// The idempotency key of the current attempt's submission: the same for every try of one attempt.
    func submissionKey(for jobId: UUID) -> String { "\(jobId.uuidString.lowercased()):\(attempt)" }

    /// How far the job got: the later save; between records of the same save count (records from
    /// before saves were counted), in the order a follower moves a job — the attempt, its
    /// resubmissions, then nothing sent / a submission that may be out / one the backend accepted /
    /// finished.
    private var progress: (Int, Int, Int, Int) {
        let stage = finished ? 3 : backendJobId != nil ? 2 : submittingSince != nil ? 1 : 0
        return (saves ?? 0, attempt, resubmits, stage)
    }

    /// This record (the ledger's copy) is later than `other` (what Redis holds), which missed
    /// a save — Redis lost its data, or a save reached the ledger and not Redis. A save that
    /// reached Redis and not the ledger leaves Redis's record the later one: an intent cleared after
    /// a refused `/run` stays cleared (nothing was sent).
    func isFurther(than other: DispatchRecord) -> Bool {
        progress > other.progress
    }

    func json() throws -> String { String(decoding: try Self.encoder.encode(self), as: UTF8.self) }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()
    fileprivate static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

extension DispatchRecord {
    /// A record from ``json()``; nil when the text is not one.
    init?(json: String) {
        guard let record = try? Self.decoder.decode(DispatchRecord.self, from: Data(json.utf8)) else { return nil }
        self = record
    }
}

/// The follower of a job lost its ownership to another one: it must stop acting for the job.
struct OwnershipLost: Error, CustomStringConvertible {
    var jobId: UUID
    var description: String { "another follower owns job \(jobId) now" }
}

/// Who follows a job right now: a Redis key with the follower's token and a short lifetime, renewed
/// while it follows, so a dead follower's job is taken over within ``lifetime``. The job's record is
/// only written by its owner (``save(_:for:owner:)`` checks it in the same step), so a follower that
/// stalled and lost its job can never submit it or change its record behind its successor's back.
struct JobOwnership: Sendable {
    static let lifetime: Duration = .seconds(10)
    let redis: RedisClient
    /// How long a record is kept (the job's deadline and a day).
    let recordLifetime: Duration

    func claim(_ jobId: UUID, _ owner: String) async throws -> Bool {
        try await redis.set(JobKeys.owner(jobId), owner, expiration: Self.lifetime, onlyIfAbsent: true)
    }

    /// Extends the lifetime while `owner` still holds it. False once it does not: another follower
    /// took it, or it lapsed (the follower stalled past ``lifetime``). A lapsed ownership is never
    /// taken again here — meanwhile a successor may have followed the job and even finished it, and
    /// this follower's view of the job is stale: it must stop and start again from the record.
    func renew(_ jobId: UUID, _ owner: String) async throws -> Bool {
        let result = try await redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
            keys: [JobKeys.owner(jobId)], arguments: [owner, String(Self.lifetime.wholeMilliseconds)])
        return result.intValue == 1
    }

    func release(_ jobId: UUID, _ owner: String) async {
        _ = try? await redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            keys: [JobKeys.owner(jobId)], arguments: [owner])
    }

    /// While `owner` follows the job: renews the ownership every third of its lifetime; throws ``OwnershipLost`` as soon as this
    /// follower does not hold it any more. A Redis that does not answer proves nothing: it keeps trying.
    func keep(_ jobId: UUID, _ owner: String, logger: Logger) async throws {
        while true {
            try await Task.sleep(for: JobOwnership.lifetime / 3)
            do {
                if try await !renew(jobId, owner) { throw OwnershipLost(jobId: jobId) }
            } catch let error where Outage.isOutage(error) {
                logger.debug("could not renew the ownership (Redis away)", metadata: ["error": "\(error)"])
            }
        }
    }

    func record(of jobId: UUID) async throws -> DispatchRecord? {
        guard let text = try await redis.get(JobKeys.dispatch(jobId)) else { return nil }
        return DispatchRecord(json: text)
    }

    /// Writes the record if `owner` still owns the job; throws ``OwnershipLost`` otherwise.
    func save(_ record: DispatchRecord, for jobId: UUID, owner: String) async throws {
        let text = try record.json()
        let written = try await redis.eval("""
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
            redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
            return 1
            """, keys: [JobKeys.owner(jobId), JobKeys.dispatch(jobId)],
            arguments: [owner, text, String(recordLifetime.wholeMilliseconds)])
        guard written.intValue == 1 else { throw OwnershipLost(jobId: jobId) }
    }
}
