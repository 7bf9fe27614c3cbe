/// One consumer's state. Owned by the connection's thread.
final class ConsumerState: @unchecked Sendable {
    /// A message whose frames are still arriving.
    struct Assembly {
        var deliveryTag: UInt64
        var redelivered: Bool
        var exchange: String
        var routingKey: String
        var properties = ReceivedProperties()
        var bodySize: UInt64 = 0
        var headerSeen = false
        var body: [UInt8] = []
    }

    let id: Int
    let queue: String
    let prefetch: UInt16
    let continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
    var channel: UInt16?
    var epoch: UInt64 = 0
    var stopped = false
    var unsettled: Set<UInt64> = []
    var assembly: Assembly?
    /// When a stopped consumer's channel closes even if deliveries are still unsettled.
    var closeDeadline: ContinuousClock.Instant?

    init(id: Int, queue: String, prefetch: UInt16, continuation: AsyncThrowingStream<Delivery, any Error>.Continuation) {
        self.id = id
        self.queue = queue
        self.prefetch = prefetch
        self.continuation = continuation
    }

    var consumerTag: String { "cyclorama-\(id)-\(epoch)" }

    /// The channel is gone with the connection: its delivery tags mean nothing any more.
    func channelLost() {
        channel = nil
        unsettled.removeAll()
        assembly = nil
    }
}

extension ConnectionCore {
    func startConsumer(_ consumer: ConsumerState) {
        if exiting {
            consumer.continuation.finish(throwing: AMQPError(.shutDown, "the connection shut down"))
            return
        }
        if drainDeadline != nil {
            consumer.continuation.finish()
            return
        }
        consumers[consumer.id] = consumer
        if session != nil { openConsumer(consumer) }
    }

    /// Opens a channel with the consumer's prefetch and subscribes. A broker refusal (e.g. no such
    /// queue) ends the consumer's sequence with the broker's reason.
    func openConsumer(_ consumer: ConsumerState) {
        guard let session else { return }
        let used = Set(consumers.values.compactMap(\.channel))
        let channel = (3...UInt16.max).first { !used.contains($0) }!
        consumer.epoch = nextEpoch
        nextEpoch += 1
        do throws(SessionFailure) {
            try session.openChannel(channel)
            consumer.channel = channel
            try session.setPrefetch(consumer.prefetch, on: channel)
            try session.consume(queue: consumer.queue, tag: consumer.consumerTag, on: channel)
            logger.debug("consuming", metadata: ["queue": "\(consumer.queue)", "channel": "\(channel)"])
        } catch .channelClosed(_, let code, let text) {
            consumers[consumer.id] = nil
            consumer.continuation.finish(throwing: AMQPError(
                .consumerClosed, "cannot consume '\(consumer.queue)': \(code) \(text)"))
        } catch {
            dropSession(error)
        }
    }

    /// Stops new deliveries. The sequence ends after what it already holds; the channel closes once every
    /// delivery is settled. With `closeChannel` (nobody iterates any more, so buffered deliveries will
    /// never be settled) it closes after `shutdownDrainTimeout` at the latest; the broker requeues the rest.
    func stopConsumer(id: Int, closeChannel: Bool) {
        guard let consumer = consumers[id] else { return }
        if !consumer.stopped {
            consumer.stopped = true
            consumer.continuation.finish()
            if let session, let channel = consumer.channel {
                do throws(SessionFailure) {
                    try session.cancel(tag: consumer.consumerTag, on: channel)
                } catch .channelClosed {
                    consumer.channelLost()
                } catch {
                    dropSession(error)
                    return
                }
            }
        }
        if closeChannel && consumer.closeDeadline == nil {
            consumer.closeDeadline = ContinuousClock.now + configuration.shutdownDrainTimeout
        }
        if consumer.unsettled.isEmpty { closeConsumerChannel(consumer) }
    }

    /// Closes the channels of stopped consumers whose deliveries were abandoned.
    func closeAbandonedConsumers() {
        let now = ContinuousClock.now
        for consumer in consumers.values where consumer.stopped {
            if let deadline = consumer.closeDeadline, deadline <= now { closeConsumerChannel(consumer) }
        }
    }

    private func closeConsumerChannel(_ consumer: ConsumerState) {
        consumers[consumer.id] = nil
        guard let session, let channel = consumer.channel else { return }
        consumer.channelLost()
        do throws(SessionFailure) {
            try session.closeChannel(channel)
        } catch .channelClosed {
            // Already closed by the broker: nothing to do.
        } catch {
            dropSession(error)
        }
    }

    func settle(_ handle: SettlementHandle, _ settlement: Settlement, _ continuation: CheckedContinuation<Void, any Error>) {
        guard let session, let consumer = consumers[handle.consumerID], consumer.epoch == handle.epoch,
            let channel = consumer.channel, consumer.unsettled.contains(handle.deliveryTag)
        else {
            continuation.resume(throwing: AMQPError(
                .deliveryStale, "the channel of delivery \(handle.deliveryTag) is gone; the broker redelivers it"))
            return
        }
        do throws(SessionFailure) {
            switch settlement {
            case .ack: try session.ack(handle.deliveryTag, on: channel)
            case .nack(let requeue): try session.nack(handle.deliveryTag, requeue: requeue, on: channel)
            case .reject(let requeue): try session.reject(handle.deliveryTag, requeue: requeue, on: channel)
            }
        } catch {
            dropSession(error)
            continuation.resume(throwing: AMQPError(.deliveryStale, "connection lost while settling: \(error)"))
            return
        }
        consumer.unsettled.remove(handle.deliveryTag)
        continuation.resume()
        if consumer.stopped && consumer.unsettled.isEmpty { closeConsumerChannel(consumer) }
    }

    // MARK: Frames

    /// Reads and dispatches every frame available without waiting.
    func readFrames() {
        while let session {
            let frame: IncomingFrame?
            do throws(SessionFailure) {
                frame = try session.nextFrame()
            } catch {
                dropSession(error)
                return
            }
            guard let frame else { return }
            dispatch(frame)
        }
    }

    private func dispatch(_ frame: IncomingFrame) {
        switch frame {
        case .deliver(let channel, let tag, let redelivered, let exchange, let routingKey):
            guard let consumer = consumer(on: channel) else { return }
            consumer.assembly = .init(deliveryTag: tag, redelivered: redelivered, exchange: exchange, routingKey: routingKey)
        case .header(let channel, let bodySize, let properties):
            guard let consumer = consumer(on: channel), consumer.assembly != nil else { return }
            consumer.assembly?.properties = properties
            consumer.assembly?.bodySize = bodySize
            consumer.assembly?.headerSeen = true
            consumer.assembly?.body.reserveCapacity(Int(min(bodySize, 64 << 20)))
            completeIfReady(consumer)
        case .body(let channel, let bytes):
            guard let consumer = consumer(on: channel), consumer.assembly != nil else { return }
            consumer.assembly?.body.append(contentsOf: bytes)
            completeIfReady(consumer)
        case .confirm(let tag, let multiple, let acked):
            confirm(deliveryTag: tag, multiple: multiple, acked: acked)
        case .returned(let code, let text):
            pendingReturn = "\(code) \(text)"
        case .channelClosed(let channel, let code, let text):
            channelClosed(channel, code: code, text: text)
        case .cancelled(let channel):
            guard let consumer = consumer(on: channel) else { return }
            logger.warning("broker cancelled consumer", metadata: ["queue": "\(consumer.queue)"])
            consumer.stopped = true
            consumer.continuation.finish(throwing: AMQPError(
                .consumerClosed, "the broker cancelled the consumer of '\(consumer.queue)' (queue deleted?)"))
            closeConsumerChannel(consumer)
        case .blocked(let blocked):
            logger.warning(blocked ? "broker blocked publishing (resource alarm)" : "broker unblocked publishing")
        case .other:
            break
        }
    }

    private func consumer(on channel: UInt16) -> ConsumerState? {
        guard channel > Self.controlChannel else { return nil }
        return consumers.values.first { $0.channel == channel }
    }

    private func completeIfReady(_ consumer: ConsumerState) {
        guard let assembly = consumer.assembly, assembly.headerSeen, UInt64(assembly.body.count) >= assembly.bodySize else {
            return
        }
        consumer.assembly = nil
        guard !consumer.stopped, consumer.channel != nil else {
            // Raced with basic.cancel: hand it straight back.
            if let session, let channel = consumer.channel {
                do throws(SessionFailure) {
                    try session.nack(assembly.deliveryTag, requeue: true, on: channel)
                } catch {
                    dropSession(error)
                }
            }
            return
        }
        consumer.unsettled.insert(assembly.deliveryTag)
        consumedCounter.increment()
        let handle = SettlementHandle(
            connection: self, consumerID: consumer.id, epoch: consumer.epoch, deliveryTag: assembly.deliveryTag)
        consumer.continuation.yield(Delivery(
            body: assembly.body, queue: consumer.queue, exchange: assembly.exchange, routingKey: assembly.routingKey,
            redelivered: assembly.redelivered, properties: assembly.properties, handle: handle))
    }

    private func channelClosed(_ channel: UInt16, code: UInt16, text: String) {
        logger.warning("broker closed channel", metadata: ["channel": "\(channel)", "code": "\(code)", "text": "\(text)"])
        if channel == Self.publishChannel {
            publishChannelClosed(code: code, text: text)
        } else if channel == Self.controlChannel {
            reopenControlChannel()
        } else if let consumer = consumer(on: channel) {
            consumers[consumer.id] = nil
            consumer.channelLost()
            consumer.stopped = true
            consumer.continuation.finish(throwing: AMQPError(
                .consumerClosed, "the broker closed the consumer channel of '\(consumer.queue)': \(code) \(text)"))
        }
    }

    func reopenControlChannel() {
        guard let session else { return }
        do throws(SessionFailure) {
            try session.openChannel(Self.controlChannel)
        } catch {
            dropSession(error)
        }
    }
}
