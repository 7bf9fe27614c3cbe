/// Hands out at most `size` hiredis connections, one command at a time each.
///
/// A permit is the right to run one command; an idle connection may come with it (or the caller
/// opens a new one). When any command loses its connection, the pool bumps its generation and drops
/// every idle connection: after a server restart they are all dead, and finding that out one
/// command at a time would fail commands that are unsafe to retry.
actor RedisConnectionPool {
    private let size: Int
    private var permits: Int
    private var idle: [RedisConnection] = []
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    /// Waiters about to queue, and those of them cancelled before they were queued (the cancellation
    /// handler can run first).
    private var registering: Set<UInt64> = []
    private var cancelledWaiters: Set<UInt64> = []
    private var nextWaiterID: UInt64 = 0
    private var isShutDown = false
    /// Increases every time a connection is lost; connections from older generations are not reused.
    private(set) var generation = 0

    init(size: Int) {
        self.size = max(1, size)
        self.permits = self.size
    }

    /// Waits for a permit. Returns an idle connection when there is one (the caller opens one when not)
    /// and the generation a new connection belongs to.
    func acquire() async throws -> (connection: RedisConnection?, generation: Int) {
        guard !isShutDown else { throw RedisError(code: .shutdown, message: "the Redis client was shut down") }
        if permits > 0 {
            permits -= 1
        } else {
            let id = nextWaiterID
            nextWaiterID += 1
            registering.insert(id)
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    registering.remove(id)
                    if cancelledWaiters.remove(id) != nil {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        waiters.append((id, continuation))
                    }
                }
            } onCancel: {
                Task { await self.cancelWaiter(id) }
            }
        }
        return (idle.popLast(), generation)
    }

    /// Returns the permit, and the connection unless it was dropped (nil), is from an older generation,
    /// or the pool is shut down.
    func release(_ connection: RedisConnection?) {
        if let connection, connection.generation == generation, !isShutDown {
            idle.append(connection)
        }
        if waiters.isEmpty {
            permits += 1
        } else {
            waiters.removeFirst().continuation.resume()
        }
    }

    /// Called when a command lost its connection: the others are probably dead too.
    func connectionLost() {
        generation += 1
        idle.removeAll()
    }

    /// Refuses new commands, fails the waiting ones and frees the idle connections; busy ones are
    /// freed when they come back.
    func shutdown() {
        isShutDown = true
        idle.removeAll()
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting {
            waiter.continuation.resume(throwing: RedisError(code: .shutdown, message: "the Redis client was shut down"))
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        if let index = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: index).continuation.resume(throwing: CancellationError())
        } else if registering.contains(id) {
            cancelledWaiters.insert(id)
        }
    }
}
