import Foundation
import Logging
import Messaging
import Timing

/// broker-bench: publish-with-confirm throughput and publish-to-consume latency for 1 KB persistent
/// messages into a quorum queue, through `Messaging` and through bare rabbitmq-c, in the same run.
///
/// Usage: broker-bench [--count N] [--latency-samples N] [--window N]   (AMQP_URL overrides the broker)
@main
struct BrokerBench {
    struct Options {
        var count = 5_000
        var latencySamples = 1_000
        var window = 64
    }

    static func main() async throws {
        let options: Options
        do {
            options = try parse(CommandLine.arguments.dropFirst())
        } catch {
            // A malformed command line: why, and EX_USAGE, not a trap with a backtrace.
            FileHandle.standardError.write(Data("broker-bench: \(error)\n".utf8))
            exit(64)
        }
        // AMQP_URL, else the broker's admin as scripts/servers.sh wrote it (run from the repository).
        let url = ProcessInfo.processInfo.environment["AMQP_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.contents(atPath: ".var/secrets/amqp-cyclorama-admin.url")
                .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            ?? "amqp://guest:guest@127.0.0.1:5672/"
        let configuration = try AMQPConfiguration(url: url, connectionName: "broker-bench")
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1024)
        let prefix = "bench.\(UUID().uuidString.prefix(8).lowercased())"
        print("broker-bench: \(options.count) msgs/throughput run, \(options.latencySamples) latency samples, "
            + "1 KB persistent, quorum queue, window \(options.window), \(configuration.host):\(configuration.port)")

        let raw = try await onDedicatedThread {
            try rawRun(configuration, options: options, body: body, prefix: prefix + ".raw")
        }
        let wrapped = try await messagingRun(configuration, options: options, body: body, prefix: prefix + ".msg")

        func row(_ name: String, _ raw: Double, _ wrapped: Double, _ unit: String) -> String {
            let ratio = raw > 0 ? wrapped / raw : .nan
            return "| \(name.padding(toLength: 38, withPad: " ", startingAt: 0)) | "
                + "\(String(format: "%10.1f", raw)) | \(String(format: "%10.1f", wrapped)) | \(String(format: "%6.2f", ratio)) | \(unit)"
        }
        print("")
        print("| measurement                            | rabbitmq-c |  Messaging |  ratio | unit")
        print("|----------------------------------------|------------|------------|--------|------")
        print(row("publish+confirm, 1 in flight", raw.sequential, wrapped.sequential, "msg/s"))
        print(row("publish+confirm, \(options.window) in flight", raw.pipelined, wrapped.pipelined, "msg/s"))
        print(row("publish->consume latency p50", raw.p50, wrapped.p50, "ms"))
        print(row("publish->consume latency p99", raw.p99, wrapped.p99, "ms"))
        print("(ratio = Messaging / rabbitmq-c: above 1 is slower for latency, below 1 is slower for throughput)")
    }

    struct Figures {
        var sequential = 0.0
        var pipelined = 0.0
        var p50 = 0.0
        var p99 = 0.0
    }

    // MARK: Bare rabbitmq-c

    static func rawRun(_ configuration: AMQPConfiguration, options: Options, body: [UInt8], prefix: String) throws -> Figures {
        let client = try RawClient(
            host: configuration.host, port: configuration.port, user: configuration.user,
            password: configuration.password, vhost: configuration.vhost)
        var figures = Figures()
        let queue = prefix + ".throughput"
        try client.declareQuorumQueue(queue)
        defer { try? client.deleteQueue(queue) }

        var start = ContinuousClock.now
        for _ in 0..<options.count {
            let tag = try client.publish(body, to: queue)
            while case .confirmed(let upTo, let multiple) = try client.nextEvent(), multiple ? upTo < tag : upTo != tag {}
        }
        figures.sequential = Double(options.count) / (ContinuousClock.now - start).timeInterval

        start = ContinuousClock.now
        var outstanding = Set<UInt64>()
        var sent = 0
        var confirmed = 0
        while confirmed < options.count {
            while sent < options.count && outstanding.count < options.window {
                outstanding.insert(try client.publish(body, to: queue))
                sent += 1
            }
            if case .confirmed(let upTo, let multiple) = try client.nextEvent() {
                let before = outstanding.count
                if multiple { outstanding = outstanding.filter { $0 > upTo } } else { outstanding.remove(upTo) }
                confirmed += before - outstanding.count
            }
        }
        figures.pipelined = Double(options.count) / (ContinuousClock.now - start).timeInterval

        let latencyQueue = prefix + ".latency"
        try client.declareQuorumQueue(latencyQueue)
        defer { try? client.deleteQueue(latencyQueue) }
        try client.consume(latencyQueue, prefetch: 10)
        var samples: [Double] = []
        for _ in 0..<options.latencySamples {
            let sent = ContinuousClock.now
            try client.publish(body, to: latencyQueue)
            var delivered = false
            var confirmed = false
            while !(delivered && confirmed) {
                switch try client.nextEvent() {
                case .confirmed: confirmed = true
                case .delivered(let tag, _):
                    samples.append((ContinuousClock.now - sent).timeInterval * 1000)
                    try client.ack(tag)
                    delivered = true
                }
            }
        }
        (figures.p50, figures.p99) = percentiles(samples)
        return figures
    }

    // MARK: Through Messaging

    static func messagingRun(_ configuration: AMQPConfiguration, options: Options, body: [UInt8], prefix: String) async throws -> Figures {
        var logger = Logger(label: "broker-bench")
        logger.logLevel = .warning
        let throughputQueue = QueueDeclaration(name: prefix + ".throughput", deadLetter: false, retryDelays: [], deliveryLimit: nil)
        let latencyQueue = QueueDeclaration(name: prefix + ".latency", deadLetter: false, retryDelays: [], deliveryLimit: nil)
        let connection = AMQPConnection(
            configuration: configuration, topology: Topology(queues: [throughputQueue, latencyQueue]), logger: logger)
        let running = Task { try await connection.run() }
        try await connection.waitUntilConnected()
        var figures = Figures()
        let message = OutgoingMessage(body: body)

        var start = ContinuousClock.now
        for _ in 0..<options.count {
            try await connection.publish(message, to: "", routingKey: throughputQueue.name)
        }
        figures.sequential = Double(options.count) / (ContinuousClock.now - start).timeInterval

        start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<options.window {
                group.addTask {
                    for _ in stride(from: worker, to: options.count, by: options.window) {
                        try await connection.publish(message, to: "", routingKey: throughputQueue.name)
                    }
                }
            }
            try await group.waitForAll()
        }
        figures.pipelined = Double(options.count) / (ContinuousClock.now - start).timeInterval

        let (arrivals, arrived) = AsyncStream<ContinuousClock.Instant>.makeStream()
        let consumer = Task {
            for try await delivery in connection.consume(queue: latencyQueue.name, prefetch: 10) {
                arrived.yield(ContinuousClock.now)
                try await delivery.ack()
            }
        }
        var samples: [Double] = []
        var iterator = arrivals.makeAsyncIterator()
        for _ in 0..<options.latencySamples {
            let sent = ContinuousClock.now
            try await connection.publish(message, to: "", routingKey: latencyQueue.name)
            guard let at = await iterator.next() else { break }
            samples.append((at - sent).timeInterval * 1000)
        }
        (figures.p50, figures.p99) = percentiles(samples)

        try await connection.delete(queues: [throughputQueue.name, latencyQueue.name])
        connection.shutdown()
        consumer.cancel()
        try await running.value
        return figures
    }

    // MARK: Helpers

    static func percentiles(_ samples: [Double]) -> (Double, Double) {
        guard !samples.isEmpty else { return (.nan, .nan) }
        let sorted = samples.sorted()
        func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))] }
        return (at(0.50), at(0.99))
    }

    static func onDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    static func parse(_ arguments: ArraySlice<String>) throws -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next().flatMap(Int.init), value > 0 else {
                throw UsageError(message: "\(flag) needs a positive number")
            }
            switch flag {
            case "--count": options.count = min(value, 1_000_000)
            case "--latency-samples": options.latencySamples = min(value, 100_000)
            case "--window": options.window = min(value, 10_000)
            default: throw UsageError(message: "unknown option \(flag); use --count, --latency-samples, --window")
            }
        }
        return options
    }

    struct UsageError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
