import Timing

extension ConnectionCore {
    /// Declares every exchange and queue (idempotent on the broker), on the control channel.
    func declare(_ topology: Topology, on session: BrokerSession) throws(SessionFailure) {
        let channel = Self.controlChannel
        if topology.queues.contains(where: \.deadLetter) {
            try session.declareExchange(ExchangeDeclaration(name: topology.deadLetterExchange, kind: .direct), on: channel)
        }
        for exchange in topology.exchanges {
            try session.declareExchange(exchange, on: channel)
        }
        for queue in topology.queues {
            var arguments: [(String, FieldValue)] = []
            switch queue.kind {
            case .quorum:
                arguments.append(("x-queue-type", .string("quorum")))
                if let limit = queue.deliveryLimit { arguments.append(("x-delivery-limit", .int(Int64(limit)))) }
            case .classic, .temporary:
                arguments.append(("x-queue-type", .string("classic")))
            }
            if queue.deadLetter {
                arguments.append(("x-dead-letter-exchange", .string(topology.deadLetterExchange)))
                arguments.append(("x-dead-letter-routing-key", .string(queue.deadLetterRoutingKey)))
                try session.declareQueue(
                    queue.deadLetterQueueName, durable: true, autoDelete: false,
                    arguments: [("x-queue-type", .string("quorum"))], on: channel)
                try session.bindQueue(
                    queue.deadLetterQueueName, to: topology.deadLetterExchange, routingKey: queue.deadLetterRoutingKey, on: channel)
            }
            let temporary = queue.kind == .temporary
            try session.declareQueue(queue.name, durable: !temporary, autoDelete: temporary, arguments: arguments, on: channel)
            for binding in queue.bindings {
                try session.bindQueue(queue.name, to: binding.exchange, routingKey: binding.routingKey, on: channel)
            }
            for binding in queue.retiredBindings {
                try session.unbindQueue(queue.name, from: binding.exchange, routingKey: binding.routingKey, on: channel)
            }
            for delay in queue.retryDelays {
                // Expired messages dead-letter through the default exchange, which routes by queue name.
                // A durable queue's delay queues are quorum queues too, so that they live on every node
                // of a cluster (a classic queue lives on one, and while that node is down it cannot
                // even be declared); they dead-letter at least once (RabbitMQ 3.10+), never dropping a
                // message whose way back is briefly unavailable.
                let type: [(String, FieldValue)] = temporary
                    ? [("x-queue-type", .string("classic"))]
                    : [("x-queue-type", .string("quorum")), ("x-dead-letter-strategy", .string("at-least-once")),
                       ("x-overflow", .string("reject-publish"))]
                try session.declareQueue(
                    queue.retryQueueName(delay: delay), durable: !temporary, autoDelete: false,
                    arguments: type + [
                        ("x-message-ttl", .int(Int64(max(0, delay.wholeMilliseconds)))),
                        ("x-dead-letter-exchange", .string("")),
                        ("x-dead-letter-routing-key", .string(queue.name)),
                    ], on: channel)
            }
        }
    }

    /// A declaration asked for while running: kept for later reconnections only if the broker accepted it.
    func declareAtRuntime(_ addition: Topology, _ continuation: CheckedContinuation<Void, any Error>) {
        if exiting {
            continuation.resume(throwing: AMQPError(.shutDown, "the connection shut down"))
            return
        }
        guard let session else {
            // Declared with everything else on the next connection.
            mergeTopology(addition)
            continuation.resume()
            return
        }
        do throws(SessionFailure) {
            try declare(addition, on: session)
            mergeTopology(addition)
            continuation.resume()
        } catch .channelClosed(_, let code, let text) {
            reopenControlChannel()
            continuation.resume(throwing: AMQPError(.topologyRejected, "broker rejected the declaration: \(code) \(text)"))
        } catch {
            dropSession(error)
            mergeTopology(addition)
            continuation.resume()
        }
    }

    /// Deletes queues and exchanges (e.g. a test's own); missing ones are fine.
    func delete(queues: [String], exchanges: [String], _ continuation: CheckedContinuation<Void, any Error>) {
        guard let session else {
            continuation.resume(throwing: AMQPError(.notConnected, "cannot delete while disconnected"))
            return
        }
        do throws(SessionFailure) {
            for name in queues { try session.deleteQueue(name, on: Self.controlChannel) }
            for name in exchanges { try session.deleteExchange(name, on: Self.controlChannel) }
            continuation.resume()
        } catch .channelClosed(_, let code, let text) {
            reopenControlChannel()
            continuation.resume(throwing: AMQPError(.topologyRejected, "delete refused: \(code) \(text)"))
        } catch {
            dropSession(error)
            continuation.resume(throwing: AMQPError(.notConnected, "\(error)"))
        }
    }

    private func mergeTopology(_ addition: Topology) {
        topology.merge(addition)
        let merged = topology
        shared.withLock { $0.topology = merged }
    }
}
