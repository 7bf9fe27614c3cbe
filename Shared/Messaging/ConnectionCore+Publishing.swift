/// A publish waiting to be sent or confirmed. Owned by the connection's thread once queued.
final class PendingPublish: @unchecked Sendable {
    let message: OutgoingMessage
    let exchange: String
    let routingKey: String
    let mandatory: Bool
    let deadline: ContinuousClock.Instant
    private var continuation: CheckedContinuation<Void, any Error>?

    init(
        message: OutgoingMessage, exchange: String, routingKey: String, mandatory: Bool,
        deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Void, any Error>
    ) {
        self.message = message
        self.exchange = exchange
        self.routingKey = routingKey
        self.mandatory = mandatory
        self.deadline = deadline
        self.continuation = continuation
    }

    func succeed(core: ConnectionCore) {
        core.confirmedCounter.increment()
        continuation?.resume()
        continuation = nil
    }

    func fail(_ code: PublishError.Code, _ reason: String, core: ConnectionCore) {
        core.publishFailedCounter.increment()
        core.logger.error("publish not confirmed", metadata: [
            "code": "\(code)", "exchange": "\(exchange)", "routingKey": "\(routingKey)",
            "messageId": "\(message.messageID ?? "-")", "reason": "\(reason)",
        ])
        continuation?.resume(throwing: PublishError(
            code, exchange: exchange, routingKey: routingKey, messageID: message.messageID, reason: reason))
        continuation = nil
    }
}

extension ConnectionCore {
    /// Publishes on the confirm channel, or holds the message until the connection is back.
    func send(_ publish: PendingPublish) {
        guard let session else {
            heldPublishes.append(publish)  // sent after reconnecting, or failed at its deadline / shutdown
            return
        }
        do throws(SessionFailure) {
            try session.publish(
                publish.message, exchange: publish.exchange, routingKey: publish.routingKey,
                mandatory: publish.mandatory, on: Self.publishChannel)
            unconfirmed.append((nextPublishTag, publish))
            nextPublishTag += 1
            publishedCounter.increment()
        } catch {
            heldPublishes.append(publish)
            dropSession(error)
        }
    }

    /// basic.ack / basic.nack from the broker; `multiple` settles every tag up to `deliveryTag`.
    func confirm(deliveryTag: UInt64, multiple: Bool, acked: Bool) {
        let returned = pendingReturn
        pendingReturn = nil
        var settled: [(tag: UInt64, publish: PendingPublish)] = []
        unconfirmed.removeAll { entry in
            let matches = multiple ? entry.tag <= deliveryTag : entry.tag == deliveryTag
            if matches { settled.append(entry) }
            return matches
        }
        for (tag, publish) in settled {
            if !acked {
                publish.fail(.nacked, "the broker nacked the message", core: self)
            } else if let returned, tag == deliveryTag {
                // The broker sends basic.return right before the ack of the same message.
                publish.fail(.unroutable, "returned by the broker: \(returned)", core: self)
            } else {
                publish.succeed(core: self)
            }
        }
    }

    /// The broker closed the confirm channel, typically for a missing exchange (a requester's
    /// `replyTo` names one that does not exist) or one this user may not write to. The publishes to
    /// the exchange the broker names fail; the others are re-sent on a fresh channel (at-least-once:
    /// one the broker had taken before the failing one may arrive twice). The name is read from the
    /// broker's text exactly, since it is whatever a requester chose; when the text was cut short
    /// (long names) it is matched by its start, and when it cannot be read the culprit is the first
    /// publish in flight to an exchange this connection does not declare (the broker stops at the
    /// first publish it cannot take). For any other reason everything in flight fails.
    func publishChannelClosed(code: UInt16, text: String) {
        guard let session else { return }
        let inFlight = unconfirmed.map(\.publish)
        unconfirmed.removeAll()
        pendingReturn = nil
        var culprits: [PendingPublish] = []
        if let refused = Self.topicRefused(inClose: code, text) {
            // A routing key this user may not publish with (RabbitMQ topic permissions).
            culprits = inFlight.filter { $0.exchange == refused.exchange && $0.routingKey == refused.routingKey }
        } else if let named = Self.exchangeNamed(inClose: code, text) {
            culprits = inFlight.filter { named.whole ? $0.exchange == named.name : $0.exchange.hasPrefix(named.name) }
            if culprits.isEmpty, let first = inFlight.first(where: { !declares(exchange: $0.exchange) }) { culprits = [first] }
        }
        for publish in inFlight {
            if culprits.isEmpty || culprits.contains(where: { $0 === publish }) {
                publish.fail(.channelClosed, "\(code) \(text)", core: self)
            } else {
                heldPublishes.append(publish)
            }
        }
        do throws(SessionFailure) {
            try session.openChannel(Self.publishChannel)
            try session.selectConfirms(on: Self.publishChannel)
            nextPublishTag = 1
        } catch {
            dropSession(error)
            return
        }
        let held = heldPublishes
        heldPublishes.removeAll()
        for publish in held { send(publish) }
    }

    /// The exchange a channel closure names: 404 `NOT_FOUND - no exchange 'X' in vhost 'V'` or 403
    /// `ACCESS_REFUSED - access to exchange 'X' in vhost 'V' refused for user 'U'`. `whole` is false
    /// when the text was cut short before the name ended (AMQP's reply text holds 255 bytes). Nil for
    /// any other closure, or a name that would be empty.
    static func exchangeNamed(inClose code: UInt16, _ text: String) -> (name: String, whole: Bool)? {
        let prefix: String
        switch code {
        case 404: prefix = "NOT_FOUND - no exchange '"
        case 403: prefix = "ACCESS_REFUSED - access to exchange '"
        default: return nil
        }
        guard text.hasPrefix(prefix) else { return nil }
        let rest = text.dropFirst(prefix.count)
        // The vhost is ours, so the last "' in vhost '" ends the name, whatever the name holds.
        if let end = rest.range(of: "' in vhost '", options: .backwards) {
            let name = String(rest[..<end.lowerBound])
            return name.isEmpty ? nil : (name, true)
        }
        return rest.isEmpty ? nil : (String(rest), false)
    }

    /// The exchange and routing key of a topic permission refusal: 403 `ACCESS_REFUSED - write
    /// access to topic 'K' in exchange 'X' in vhost 'V' refused for user 'U'`. Nil for any other
    /// closure, or a text cut short before the exchange's name ended.
    static func topicRefused(inClose code: UInt16, _ text: String) -> (exchange: String, routingKey: String)? {
        let prefix = "ACCESS_REFUSED - write access to topic '"
        guard code == 403, text.hasPrefix(prefix) else { return nil }
        let rest = text.dropFirst(prefix.count)
        guard let vhost = rest.range(of: "' in vhost '", options: .backwards),
              let exchange = rest[..<vhost.lowerBound].range(of: "' in exchange '", options: .backwards)
        else { return nil }
        return (String(rest[exchange.upperBound..<vhost.lowerBound]), String(rest[..<exchange.lowerBound]))
    }

    /// Whether the exchange is one this connection declares (or the broker's own: the default
    /// exchange and `amq.*`), so a publish to it cannot close the channel for a missing exchange.
    private func declares(exchange: String) -> Bool {
        exchange.isEmpty || exchange.hasPrefix("amq.") || exchange == topology.deadLetterExchange
            || topology.exchanges.contains { $0.name == exchange }
    }

    /// Fails publishes whose time is up, whether still waiting for a connection or for a confirm.
    func expireDeadlines() {
        let now = ContinuousClock.now
        heldPublishes.removeAll { publish in
            guard publish.deadline <= now else { return false }
            publish.fail(.timeout, "no broker connection within the publish timeout", core: self)
            return true
        }
        unconfirmed.removeAll { entry in
            guard entry.publish.deadline <= now else { return false }
            entry.publish.fail(.timeout, "no confirm from the broker within the publish timeout", core: self)
            return true
        }
    }
}
