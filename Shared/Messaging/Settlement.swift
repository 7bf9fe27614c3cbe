/// How a delivery is settled.
enum Settlement: Sendable {
    case ack
    case nack(requeue: Bool)
    case reject(requeue: Bool)
}

/// Ties a `Delivery` to the channel it came on. Shared by copies of the delivery, so settling twice is caught.
final class SettlementHandle: Sendable {
    let connection: ConnectionCore
    let consumerID: Int
    /// Identifies one opening of the consumer's channel: tags from an older one are meaningless.
    let epoch: UInt64
    let deliveryTag: UInt64
    private let settled = Locked(false)

    init(connection: ConnectionCore, consumerID: Int, epoch: UInt64, deliveryTag: UInt64) {
        self.connection = connection
        self.consumerID = consumerID
        self.epoch = epoch
        self.deliveryTag = deliveryTag
    }

    func ensureUnsettled() throws(AMQPError) {
        if settled.withLock({ $0 }) {
            throw AMQPError(.alreadySettled, "delivery \(deliveryTag) was already settled")
        }
    }

    func settle(_ settlement: Settlement) async throws {
        let first = settled.withLock { wasSettled in
            defer { wasSettled = true }
            return !wasSettled
        }
        guard first else { throw AMQPError(.alreadySettled, "delivery \(deliveryTag) was already settled") }
        do {
            try await connection.settle(self, settlement)
        } catch let error as AMQPError where error.code == .sendFailed {
            // Nothing reached the broker: let the caller try another settlement.
            settled.withLock { $0 = false }
            throw error
        }
    }
}
