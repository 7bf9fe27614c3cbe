import Synchronization

/// Runs `operation`, giving up after `timeout`: nil on timeout or error.
///
/// A task group: past the timeout `operation` is cancelled and awaited, so this returns late when
/// `operation` ignores cancellation. Where that must not happen, use ``awaitResult(of:atMost:)``.
public func withTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { try? await operation() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Waits for `task` at most `limit`, and never longer: nil when it has not finished by then (or the
/// caller is cancelled first). The task is left as it is either way: cancelling it, or letting it
/// go on in the background, is the caller's choice.
///
/// Unlike a task group, this does not wait for a task that ignores cancellation (a call stuck on a
/// connection that died without a word), which is why it exists.
public func awaitResult<T: Sendable, Failure: Error>(of task: Task<T, Failure>, atMost limit: Duration) async -> Result<T, Failure>? {
    let answer = FirstAnswer<Result<T, Failure>?>()
    let timer = Task {
        // Cancelled (the task finished first): no answer from here.
        do { try await Task.sleep(for: limit) } catch { return }
        answer.give(nil)
    }
    Task {
        let result = await task.result
        answer.give(result)
        timer.cancel()
    }
    return await withTaskCancellationHandler {
        await answer.value()
    } onCancel: {
        timer.cancel()
        answer.give(nil)
    }
}

/// A value given once, by whichever of several tasks gets there first, to one waiter.
public final class FirstAnswer<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, Never>)
        case given(Value)
        case taken
    }

    private let state = Mutex<State>(.empty)

    public init() {}

    /// Gives the answer; ignored once one was given.
    public func give(_ value: Value) {
        let waiter: CheckedContinuation<Value, Never>? = state.withLock { state in
            switch state {
            case .empty:
                state = .given(value)
                return nil
            case .waiting(let continuation):
                state = .taken
                return continuation
            case .given, .taken:
                return nil
            }
        }
        waiter?.resume(returning: value)
    }

    /// The answer, once given (at once when it already was). One waiter only.
    public func value() async -> Value {
        await withCheckedContinuation { continuation in
            let ready: Value? = state.withLock { state in
                switch state {
                case .empty:
                    state = .waiting(continuation)
                    return nil
                case .given(let value):
                    state = .taken
                    return value
                case .waiting, .taken:
                    preconditionFailure("FirstAnswer has one waiter")
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
