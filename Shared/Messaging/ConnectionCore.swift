import Foundation
import Logging
import Metrics
import Timing

/// A request from a Swift task to the connection's thread.
enum Command: @unchecked Sendable {
    case publish(PendingPublish)
    case settle(SettlementHandle, Settlement, CheckedContinuation<Void, any Error>)
    case startConsumer(ConsumerState)
    case stopConsumer(id: Int, closeChannel: Bool)
    case declare(Topology, CheckedContinuation<Void, any Error>)
    case delete(queues: [String], exchanges: [String], CheckedContinuation<Void, any Error>)
    /// Tests: cut the TCP connection as a crash or a network failure would.
    case breakConnection
}

/// The thread that owns one rabbitmq-c connection and everything done on it.
///
/// rabbitmq-c is not thread-safe, and its calls block, so one dedicated thread (never Swift's
/// cooperative pool) runs every C call for this connection. Tasks hand it `Command`s through a locked
/// queue and a wake-up pipe; it polls the socket and the pipe, so it sleeps when there is nothing to do.
/// Everything below `// MARK: Thread-only state` is touched by that thread alone.
final class ConnectionCore: @unchecked Sendable {
    struct Shared {
        var commands: [Command] = []
        var connected = false
        var started = false
        var stopRequested = false
        var exited = false
        var exitError: (any Error)?
        var exitWaiters: [CheckedContinuation<Void, any Error>] = []
        var topology: Topology
    }

    let configuration: AMQPConfiguration
    let logger: Logger
    let shared: Locked<Shared>
    private let wakeReader: Int32
    private let wakeWriter: Int32
    let publishedCounter = Counter(label: "messaging_published_total")
    let confirmedCounter = Counter(label: "messaging_confirmed_total")
    let publishFailedCounter = Counter(label: "messaging_publish_failed_total")
    let consumedCounter = Counter(label: "messaging_consumed_total")
    let reconnectCounter = Counter(label: "messaging_reconnects_total")

    // MARK: Thread-only state
    var session: BrokerSession?
    var topology: Topology
    var heldPublishes: [PendingPublish] = []
    var unconfirmed: [(tag: UInt64, publish: PendingPublish)] = []
    var nextPublishTag: UInt64 = 1
    var pendingReturn: String?
    var consumers: [Int: ConsumerState] = [:]
    var nextEpoch: UInt64 = 1
    var failedConnects = 0
    /// The wait before the next connection attempt: doubles from `reconnectDelay` per failure, up to
    /// `maxReconnectDelay`, with jitter.
    lazy var reconnectBackoff = Backoff(initial: configuration.reconnectDelay, maximum: configuration.maxReconnectDelay)
    /// Which of ``AMQPConfiguration/addresses`` the next connection goes to: a random one first, so
    /// the clients of a cluster spread over its nodes, then the next after each failed attempt or
    /// lost connection, so a stopped node is left for a live one.
    lazy var addressIndex = Int.random(in: 0..<configuration.addresses.count)
    var currentAddress: BrokerAddress { configuration.addresses[addressIndex % configuration.addresses.count] }
    var nextConnectAt = ContinuousClock.now
    var drainDeadline: ContinuousClock.Instant?
    /// Set once the loop has ended: commands still arriving fail at once.
    var exiting = false
    static let publishChannel: UInt16 = 1
    static let controlChannel: UInt16 = 2

    init(configuration: AMQPConfiguration, topology: Topology, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.topology = topology
        self.shared = Locked(Shared(topology: topology))
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fatalError("pipe() failed: \(errno)") }  // only out of file descriptors
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        (wakeReader, wakeWriter) = (fds[0], fds[1])
    }

    deinit {
        close(wakeReader)
        close(wakeWriter)
    }

    // MARK: Called from tasks

    /// Queues a command for the thread; false when the thread has exited (the caller fails the command).
    func enqueue(_ command: Command) -> Bool {
        let accepted = shared.withLock { state -> Bool in
            guard !state.exited else { return false }
            state.commands.append(command)
            return true
        }
        if accepted { wake() }
        return accepted
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriter, &byte, 1)  // a full pipe already means "wake up"
    }

    func start() throws(AMQPError) {
        let first = shared.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { throw AMQPError(.shutDown, "run() was already called on this connection") }
        let thread = Thread { [self] in threadMain() }
        thread.name = "amqp \(configuration.connectionName)"
        thread.start()
    }

    func requestStop() {
        shared.withLock { $0.stopRequested = true }
        wake()
    }

    func waitUntilExited() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, any Error>? = shared.withLock { state in
                guard state.exited else {
                    state.exitWaiters.append(continuation)
                    return nil
                }
                return state.exitError.map { .failure($0) } ?? .success(())
            }
            if let result { continuation.resume(with: result) }
        }
    }

    // MARK: The thread

    private func threadMain() {
        logger.info("AMQP connection thread started", metadata: ["hosts": "\(configuration.addresses.map(\.description).joined(separator: ","))"])
        var fatal: (any Error)?
        while true {
            let (commands, stopRequested) = shared.withLock { state in
                defer { state.commands.removeAll() }
                return (state.commands, state.stopRequested)
            }
            if stopRequested && drainDeadline == nil { beginDrain() }
            for command in commands { handle(command) }
            expireDeadlines()
            closeAbandonedConsumers()
            if let drainDeadline, isDrained || ContinuousClock.now >= drainDeadline || session == nil { break }
            if session == nil {
                if ContinuousClock.now >= nextConnectAt {
                    do throws(AMQPError) {
                        try establishSession()
                    } catch {
                        fatal = error
                        break
                    }
                    continue
                }
                waitForWork(socket: nil, until: nextConnectAt)
            } else {
                readFrames()
                if let session, !session.hasBufferedFrames {
                    waitForWork(socket: session.socket, until: ContinuousClock.now + .milliseconds(250))
                }
            }
        }
        finishThread(fatal: fatal)
    }

    private var isDrained: Bool {
        heldPublishes.isEmpty && unconfirmed.isEmpty && consumers.values.allSatisfy { $0.unsettled.isEmpty }
    }

    /// Graceful shutdown: no new deliveries; outstanding confirms and acks get `shutdownDrainTimeout`.
    private func beginDrain() {
        drainDeadline = ContinuousClock.now + configuration.shutdownDrainTimeout
        logger.info("AMQP connection draining before shutdown")
        for id in Array(consumers.keys) { stopConsumer(id: id, closeChannel: false) }
    }

    private func finishThread(fatal: (any Error)?) {
        exiting = true
        if let session {
            session.close()
            self.session = nil
        }
        let remaining = shared.withLock { state -> [Command] in
            state.exited = true
            state.connected = false
            state.exitError = fatal
            defer { state.commands.removeAll() }
            return state.commands
        }
        for command in remaining { handle(command) }  // with no session: each fails fast
        let reason = fatal.map { "\($0)" } ?? "the connection shut down"
        for publish in heldPublishes + unconfirmed.map(\.publish) { publish.fail(.shutDown, reason, core: self) }
        heldPublishes.removeAll()
        unconfirmed.removeAll()
        for consumer in consumers.values {
            consumer.continuation.finish(throwing: fatal)
        }
        consumers.removeAll()
        let waiters = shared.withLock { state in
            defer { state.exitWaiters.removeAll() }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume(with: fatal.map { .failure($0) } ?? .success(())) }
        if let fatal {
            logger.error("AMQP connection stopped", metadata: ["error": "\(fatal)"])
        } else {
            logger.info("AMQP connection closed")
        }
    }

    /// Sleeps until the socket is readable, a command arrives, or `deadline` (capped by publish deadlines).
    private func waitForWork(socket: Int32?, until deadline: ContinuousClock.Instant) {
        var wakeAt = deadline
        for publish in heldPublishes + unconfirmed.map(\.publish) where publish.deadline < wakeAt { wakeAt = publish.deadline }
        if let drainDeadline, drainDeadline < wakeAt { wakeAt = drainDeadline }
        let milliseconds = max(0, min(250, (wakeAt - ContinuousClock.now).wholeMilliseconds))
        var fds = [pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0)]
        if let socket { fds.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0)) }
        _ = poll(&fds, nfds_t(fds.count), Int32(milliseconds))
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wakeReader, &sink, sink.count) > 0 {}
    }

    private func handle(_ command: Command) {
        switch command {
        case .publish(let publish): send(publish)
        case .settle(let handle, let settlement, let continuation): settle(handle, settlement, continuation)
        case .startConsumer(let consumer): startConsumer(consumer)
        case .stopConsumer(let id, let closeChannel): stopConsumer(id: id, closeChannel: closeChannel)
        case .declare(let topology, let continuation): declareAtRuntime(topology, continuation)
        case .delete(let queues, let exchanges, let continuation): delete(queues: queues, exchanges: exchanges, continuation)
        case .breakConnection: if let session { _ = shutdown(session.socket, Int32(SHUT_RDWR)) }
        }
    }

    // MARK: Connection life cycle

    /// Connects, declares the topology and re-opens channels and consumers. Throws only for
    /// fatal errors (the broker rejected the topology); transient failures schedule a retry.
    private func establishSession() throws(AMQPError) {
        do throws(SessionFailure) {
            let session = try BrokerSession.connect(configuration, to: currentAddress)
            try session.openChannel(Self.controlChannel)
            try declare(topology, on: session)
            try session.openChannel(Self.publishChannel)
            try session.selectConfirms(on: Self.publishChannel)
            self.session = session
            nextPublishTag = 1
            pendingReturn = nil
        } catch .channelClosed(_, let code, let text) {
            throw AMQPError(.topologyRejected, "broker rejected the topology: \(code) \(text)")
        } catch {
            scheduleReconnect(after: error)
            return
        }
        if failedConnects > 0 { reconnectCounter.increment() }
        logger.info("AMQP connected", metadata: ["host": "\(currentAddress)", "attempts": "\(failedConnects + 1)"])
        failedConnects = 0
        reconnectBackoff.reset()
        shared.withLock { $0.connected = true }
        for consumer in consumers.values.sorted(by: { $0.id < $1.id }) where !consumer.stopped {
            openConsumer(consumer)
            guard session != nil else { return }
        }
        let held = heldPublishes
        heldPublishes.removeAll()
        for publish in held { send(publish) }
    }

    /// The next attempt waits as `reconnectBackoff` says, at the next address.
    private func scheduleReconnect(after error: SessionFailure) {
        failedConnects += 1
        addressIndex += 1
        let delay = reconnectBackoff.next()
        nextConnectAt = ContinuousClock.now + delay
        logger.warning("AMQP connection failed; retrying", metadata: [
            "error": "\(error)", "attempt": "\(failedConnects)", "retryInMs": "\(delay.wholeMilliseconds)",
        ])
    }

    /// The connection is gone: everything in flight is re-sent or re-subscribed after reconnecting.
    func dropSession(_ failure: SessionFailure) {
        guard session != nil else { return }
        session = nil
        shared.withLock { $0.connected = false }
        logger.warning("AMQP connection lost", metadata: ["error": "\(failure)"])
        // Unconfirmed messages may or may not have reached a queue: re-send them (at-least-once).
        heldPublishes = unconfirmed.map(\.publish) + heldPublishes
        unconfirmed.removeAll()
        pendingReturn = nil
        for consumer in consumers.values { consumer.channelLost() }
        for (id, consumer) in consumers where consumer.stopped { consumers[id] = nil }
        scheduleReconnect(after: failure)
        if configuration.addresses.count > 1 {
            // A cluster node went away: its quorum queues elect new leaders first. A consumer that
            // subscribes during the election was seen to get nothing afterwards (RabbitMQ 3.10), so
            // the next node is tried only once the election has had its time.
            nextConnectAt = max(nextConnectAt, ContinuousClock.now + configuration.failoverDelay)
        }
    }
}
