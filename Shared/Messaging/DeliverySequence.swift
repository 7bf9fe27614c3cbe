/// The deliveries of one consumer, as an `AsyncSequence`.
///
/// For graceful shutdown in a service: `for try await d in connection.consume(...).cancelOnGracefulShutdown()`,
/// or call `stop()`.
public struct DeliverySequence: AsyncSequence, Sendable {
    public typealias Element = Delivery
    public typealias AsyncIterator = AsyncThrowingStream<Delivery, any Error>.Iterator

    let stream: AsyncThrowingStream<Delivery, any Error>
    let core: ConnectionCore
    let consumerID: Int

    public func makeAsyncIterator() -> AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Stops taking new deliveries: the broker stops sending, the sequence ends after the deliveries
    /// it already holds, and the channel closes once those are settled (unsettled ones are requeued
    /// by the broker if the connection closes first).
    public func stop() {
        _ = core.enqueue(.stopConsumer(id: consumerID, closeChannel: false))
    }
}
