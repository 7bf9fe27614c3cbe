/// How to reach the broker and how patient to be with it.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `host` | String | `127.0.0.1` | broker host |
/// | `port` | Int | `5672` | broker port |
/// | `user` / `password` | String | `guest` / `guest` | PLAIN credentials |
/// | `vhost` | String | `/` | virtual host |
/// | `heartbeat` | Int (s) | `10` | AMQP heartbeat; a silent peer is declared dead after two missed beats |
/// | `connectionName` | String | — | shown by `rabbitmqctl list_connections client_properties` |
/// | `publishTimeout` | Duration | 30 s | how long `publish` waits for a connection plus the broker's confirm |
/// | `connectTimeout` | Duration | 5 s | TCP connect + login + topology declaration per attempt |
/// | `reconnectDelay` | Duration | 100 ms | first reconnection delay; doubles per failure, with jitter |
/// | `maxReconnectDelay` | Duration | 5 s | the cap on the reconnection delay |
/// | `shutdownDrainTimeout` | Duration | 5 s | on graceful shutdown, how long to wait for outstanding confirms |
public struct AMQPConfiguration: Sendable {
    public var host: String
    public var port: Int
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

    /// Creates a configuration from explicit values.
    public init(
        host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: String = "guest",
        vhost: String = "/", heartbeat: Int = 10, connectionName: String,
        publishTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(5),
        reconnectDelay: Duration = .milliseconds(100), maxReconnectDelay: Duration = .seconds(5),
        shutdownDrainTimeout: Duration = .seconds(5)
    ) {
        self.host = host
        self.port = port
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

    /// Parses `amqp://user:password@host:port/vhost`.
    ///
    /// Missing parts take the defaults above; an empty path (`amqp://host/` or `amqp://host`) means
    /// the vhost `/`, and a percent-encoded path (`/%2F`) is decoded. Only the `amqp` scheme is supported.
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
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw AMQPError(.invalidURL, "invalid port in '\(url)'")
            }
            self.port = port
            rest = rest[..<colon]
        }
        if !rest.isEmpty { host = String(rest) }
        vhost = path.isEmpty ? "/" : try Self.decode(path, in: url)
    }

    private static func decode(_ part: Substring, in url: String) throws(AMQPError) -> String {
        guard let decoded = String(part).removingPercentEncodingIfValid() else {
            throw AMQPError(.invalidURL, "invalid percent-encoding in '\(url)'")
        }
        return decoded
    }
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
