/// Waits until `condition` holds, checking every `every`; throws ``FixtureError`` naming `what`
/// after `timeout`. The one way tests wait for something to happen: a wait for a condition, never a
/// fixed sleep.
public func eventually(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(60), every: Duration = .milliseconds(100),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw FixtureError(message: "not within \(timeout): \(what())") }
        try await Task.sleep(for: every)
    }
}
