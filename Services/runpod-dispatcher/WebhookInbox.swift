import Foundation
import Synchronization

/// Wakes the follower of a job in this process when the job's webhook was called
/// (``BackendWebhookReceived``, which every dispatcher instance hears).
///
/// A follower registers its job, then waits between two `/status` calls with ``wait(for:upTo:)``
/// instead of sleeping. A notice that arrives while it is not waiting (it is calling `/status`) is
/// kept until its next wait; notices for jobs not followed here are dropped.
final class WebhookInbox: Sendable {
    private struct Waiter {
        var id: UUID
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var followed: Set<UUID> = []
        var pending: Set<UUID> = []
        var waiters: [UUID: Waiter] = [:]
    }

    private let state = Mutex(State())

    func register(_ jobId: UUID) {
        _ = state.withLock { $0.followed.insert(jobId) }
    }

    func unregister(_ jobId: UUID) {
        let waiter = state.withLock { s in
            s.followed.remove(jobId)
            s.pending.remove(jobId)
            return s.waiters.removeValue(forKey: jobId)
        }
        waiter?.continuation.resume(returning: false)
    }

    /// Hands a notice to the job's follower. False when no follower in this process has the job.
    @discardableResult
    func deliver(_ jobId: UUID) -> Bool {
        let (followed, waiter) = state.withLock { s -> (Bool, Waiter?) in
            guard s.followed.contains(jobId) else { return (false, nil) }
            if let waiter = s.waiters.removeValue(forKey: jobId) { return (true, waiter) }
            s.pending.insert(jobId)
            return (true, nil)
        }
        waiter?.continuation.resume(returning: true)
        return followed
    }

    /// Waits until a notice for `jobId` arrives (true) or `duration` passes (false).
    func wait(for jobId: UUID, upTo duration: Duration) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { await self.notice(for: jobId) }
            group.addTask {
                try await Task.sleep(for: duration)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }

    private func notice(for jobId: UUID) async -> Bool {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { s in
                    if s.pending.remove(jobId) != nil { return true }
                    if Task.isCancelled { return false }
                    s.waiters[jobId] = Waiter(id: id, continuation: continuation)
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard s.waiters[jobId]?.id == id else { return nil }
                return s.waiters.removeValue(forKey: jobId)
            }
            waiter?.continuation.resume(returning: false)
        }
    }
}
