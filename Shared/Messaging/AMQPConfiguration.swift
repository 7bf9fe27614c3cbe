/// How to reach the broker and how patient to be with it.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `addresses` | [BrokerAddress] | `127.0.0.1:5672` | the broker's nodes, tried in turn: a lost or failed connection goes on with the next (a cluster's nodes; one for a single broker) |
/// | `host` / `port` | String / Int | | the first address |
/// | `user` / `password` | String | `guest` / `guest` | PLAIN credentials |
/// | `vhost` | String | `/` | virtual host |
/// | `heartbeat` | Int (s) | `10` | AMQP heartbeat; a silent peer is declared dead after two missed beats |
/// | `connectionName` | String | — | shown by `rabbitmqctl list_connections client_properties` |
/// | `publishTimeout` | Duration | 30 s | how long `publish` waits for a connection plus the broker's confirm |
/// | `connectTimeout` | Duration | 5 s | TCP connect + login + topology declaration per attempt |
/// | `reconnectDelay` | Duration | 100 ms | first reconnection delay; doubles per failure, with jitter |
/// | `maxReconnectDelay` | Duration | 5 s | the cap on the reconnection delay |
/// | `shutdownDrainTimeout` | Duration | 5 s | on graceful shutdown, how long to wait for outstanding confirms |
/// | `failoverDelay` | Duration | 3 s | with several addresses, how long after a lost connection the next node is tried (the queues' leader elections first) |
public struct AMQPConfiguration: Sendable {
    /// The nodes to connect to, in order; never empty.
    public var addresses: [BrokerAddress]
    /// The first address's host.
    public var host: String {
        get { addresses[0].host }
        set { addresses[0].host = newValue }
    }
    /// The first address's port.
    public var port: Int {
        get { addresses[0].port }
        set { addresses[0].port = newValue }
    }
    public var user: String
    public var password: String
    public var vhost: String
    public var heartbeat: Int
    public var connectionName: String
    public var publishTimeout: Duration
    public var connectTimeout: Duration
    public var reconnectDelay: Duration
    public var maxReconnectDelay: Duration
    public var shutdownDrainTimeout: Duration
    public var failoverDelay: Duration = .seconds(3)

    /// Creates a configuration from explicit values.
    public init(
        host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: String = "guest",
        vhost: String = "/", heartbeat: Int = 10, connectionName: String,
        publishTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(5),
        reconnectDelay: Duration = .milliseconds(100), maxReconnectDelay: Duration = .seconds(5),
        shutdownDrainTimeout: Duration = .seconds(5)
    ) {
        self.addresses = [BrokerAddress(host: host, port: port)]
        self.user = user
        self.password = password
        self.vhost = vhost
        self.heartbeat = heartbeat
        self.connectionName = connectionName
        self.publishTimeout = publishTimeout
        self.connectTimeout = connectTimeout
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.shutdownDrainTimeout = shutdownDrainTimeout
    }

    /// Parses `amqp://user:password@host:port/vhost`, or for a cluster
    /// `amqp://user:password@host1:port1,host2:port2,host3:port3/vhost` (every node, tried in turn).
    ///
    /// Missing parts take the defaults above (a node without a port: 5672); an empty path
    /// (`amqp://host/` or `amqp://host`) means the vhost `/`, and a percent-encoded path (`/%2F`) is
    /// decoded. Only the `amqp` scheme is supported.
    public init(url: String, connectionName: String) throws(AMQPError) {
        self.init(connectionName: connectionName)
        guard let schemeEnd = url.range(of: "://") else {
            throw AMQPError(.invalidURL, "missing scheme in '\(url)'; expected amqp://user:pass@host:port/vhost")
        }
        let scheme = url[url.startIndex..<schemeEnd.lowerBound].lowercased()
        guard scheme == "amqp" else {
            throw AMQPError(.invalidURL, "unsupported scheme '\(scheme)' (only amqp is supported)")
        }
        var rest = url[schemeEnd.upperBound...]
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try Self.decode(credentials[..<colon], in: url)
                password = try Self.decode(credentials[credentials.index(after: colon)...], in: url)
            } else {
                user = try Self.decode(credentials, in: url)
            }
        }
        var addresses: [BrokerAddress] = []
        for var node in rest.split(separator: ",", omittingEmptySubsequences: false) {
            var address = BrokerAddress(host: "127.0.0.1", port: 5672)
            if let colon = node.lastIndex(of: ":") {
                guard let port = Int(node[node.index(after: colon)...]), (1...65535).contains(port) else {
                    throw AMQPError(.invalidURL, "invalid port in '\(url)'")
                }
                address.port = port
                node = node[..<colon]
            }
            if !node.isEmpty {
                address.host = String(node)
            } else if rest.contains(",") {
                throw AMQPError(.invalidURL, "a node without a host in '\(url)'")
            }
            addresses.append(address)
        }
        self.addresses = addresses
        vhost = path.isEmpty ? "/" : try Self.decode(path, in: url)
    }

    private static func decode(_ part: Substring, in url: String) throws(AMQPError) -> String {
        guard let decoded = String(part).removingPercentEncodingIfValid() else {
            throw AMQPError(.invalidURL, "invalid percent-encoding in '\(url)'")
        }
        return decoded
    }
}

/// One node of the broker: where a connection is opened.
public struct BrokerAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

extension String {
    /// Percent-decoding without Foundation; nil on a malformed escape or invalid UTF-8.
    fileprivate func removingPercentEncodingIfValid() -> String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
