import Foundation
import Synchronization

/// Wakes tasks of this process that wait for something about a key, instead of having them sleep
/// and look again: the follower of a job waits for its webhook (``BackendWebhookReceived``), jobs
/// waiting for a concurrency slot wait for one to be released.
///
/// Only registered keys ring. A ring while nobody waits is kept (once) for the next wait, so a
/// notice that arrives between two waits is not lost; rings of unregistered keys are dropped.
final class Doorbell<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var registered: Set<Key> = []
        var pending: Set<Key> = []
        var waiters: [Key: [UUID: CheckedContinuation<Bool, Never>]] = [:]
    }

    private let state = Mutex(State())

    func register(_ key: Key) {
        _ = state.withLock { $0.registered.insert(key) }
    }

    /// Forgets `key`; whoever still waits for it returns false.
    func unregister(_ key: Key) {
        let waiters = state.withLock { s in
            s.registered.remove(key)
            s.pending.remove(key)
            return s.waiters.removeValue(forKey: key) ?? [:]
        }
        for waiter in waiters.values { waiter.resume(returning: false) }
    }

    /// Wakes everyone waiting for `key`, or only one of them (`everyone: false`: one free slot
    /// needs one taker, not a stampede); with nobody waiting, the ring is kept for the next wait.
    /// False when `key` is not registered.
    @discardableResult
    func ring(_ key: Key, everyone: Bool = true) -> Bool {
        let (registered, waking) = state.withLock { s -> (Bool, [CheckedContinuation<Bool, Never>]) in
            guard s.registered.contains(key) else { return (false, []) }
            guard let waiting = s.waiters[key], let first = waiting.first else {
                s.pending.insert(key)
                return (true, [])
            }
            if everyone {
                s.waiters[key] = nil
                return (true, Array(waiting.values))
            }
            s.waiters[key]?.removeValue(forKey: first.key)
            return (true, [first.value])
        }
        for waiter in waking { waiter.resume(returning: true) }
        return registered
    }

    /// How many wait for `key` now (for tests and metrics).
    func waiting(for key: Key) -> Int {
        state.withLock { $0.waiters[key]?.count ?? 0 }
    }

    /// Waits until `key` rings (true) or `duration` passes (false).
    func wait(for key: Key, upTo duration: Duration) async throws -> Bool {
        let rang = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.ringing(key) }
            group.addTask {
                try? await Task.sleep(for: duration)
                return false
            }
            var rang = await group.next() ?? false
            group.cancelAll()
            // A ring can reach the waiter after the time ran out but before the cancel removed it:
            // that ring counts (dropping it would lose a webhook notice or a freed slot).
            for await other in group { rang = rang || other }
            return rang
        }
        // A cancelled wait must not look like a timeout: the caller stops instead of carrying on.
        try Task.checkCancellation()
        return rang
    }

    private func ringing(_ key: Key) async -> Bool {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { s in
                    if s.pending.remove(key) != nil { return true }
                    if Task.isCancelled { return false }
                    s.waiters[key, default: [:]][id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters[key]?.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }
}
