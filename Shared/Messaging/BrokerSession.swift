import CRabbitMQ
import Foundation
import Timing

/// Why a session call failed, as the connection loop needs to tell it apart.
enum SessionFailure: Error, CustomStringConvertible {
    /// The socket or the protocol state is gone: reconnect.
    case connectionLost(String)
    /// The broker closed one channel (close-ok already sent); the connection is fine.
    case channelClosed(channel: UInt16, code: UInt16, text: String)

    var description: String {
        switch self {
        case .connectionLost(let reason): "connection lost: \(reason)"
        case .channelClosed(let channel, let code, let text): "channel \(channel) closed by broker: \(code) \(text)"
        }
    }
}

/// Method ids from amqp_framing.h (their macros carry casts that Swift does not import).
enum Method {
    static let connectionClose: UInt32 = 0x000A_0032
    static let connectionCloseOK: UInt32 = 0x000A_0033
    static let connectionBlocked: UInt32 = 0x000A_003C
    static let connectionUnblocked: UInt32 = 0x000A_003D
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOK: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicDeliver: UInt32 = 0x003C_003C
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078
}

/// A frame copied out of rabbitmq-c's buffers.
enum IncomingFrame {
    case deliver(channel: UInt16, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
    case header(channel: UInt16, bodySize: UInt64, properties: ReceivedProperties)
    case body(channel: UInt16, bytes: [UInt8])
    case confirm(deliveryTag: UInt64, multiple: Bool, acked: Bool)
    case returned(code: UInt16, text: String)
    case channelClosed(channel: UInt16, code: UInt16, text: String)
    case cancelled(channel: UInt16)
    case blocked(Bool)
    case other
}

/// One rabbitmq-c connection. Not thread-safe: only the connection loop's thread touches it.
final class BrokerSession {
    private let state: amqp_connection_state_t

    private init(state: amqp_connection_state_t) {
        self.state = state
    }

    deinit {
        amqp_destroy_connection(state)
    }

    /// TCP connect and login; blocks up to the configured connect timeout per step.
    static func connect(_ configuration: AMQPConfiguration, to address: BrokerAddress) throws(SessionFailure) -> BrokerSession {
        guard let state = amqp_new_connection() else { throw .connectionLost("amqp_new_connection failed") }
        let session = BrokerSession(state: state)
        guard let socket = amqp_tcp_socket_new(state) else { throw .connectionLost("amqp_tcp_socket_new failed") }
        var timeout = timeval(configuration.connectTimeout)
        let opened = amqp_socket_open_noblock(socket, address.host, Int32(address.port), &timeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw .connectionLost("connect to \(address): \(statusText(opened))")
        }
        _ = amqp_set_handshake_timeout(state, &timeout)
        _ = amqp_set_rpc_timeout(state, &timeout)
        let arena = CArena()
        var properties = arena.table([
            ("connection_name", .string(configuration.connectionName)),
            ("product", .string("cyclorama-messaging")),
        ])
        let reply = CRabbitMQ_login_plain_with_properties(
            state, configuration.vhost, 0, 131_072, Int32(configuration.heartbeat), &properties,
            configuration.user, configuration.password)
        try session.check(reply, channel: 0, doing: "login as '\(configuration.user)' to vhost '\(configuration.vhost)'")
        return session
    }

    var socket: Int32 { amqp_get_sockfd(state) }

    /// Frames rabbitmq-c already holds in memory (so waiting on the socket would stall them).
    var hasBufferedFrames: Bool { amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0 }

    // MARK: RPCs (block until the broker answers or the RPC timeout)

    func openChannel(_ channel: UInt16) throws(SessionFailure) {
        _ = amqp_channel_open(state, channel)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "open channel \(channel)")
    }

    func closeChannel(_ channel: UInt16) throws(SessionFailure) {
        try check(amqp_channel_close(state, channel, 200), channel: channel, doing: "close channel \(channel)")
    }

    func selectConfirms(on channel: UInt16) throws(SessionFailure) {
        _ = amqp_confirm_select(state, channel)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "confirm.select")
    }

    func declareExchange(_ exchange: ExchangeDeclaration, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_exchange_declare(
            state, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.rawValue),
            0, 1, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "declare exchange '\(exchange.name)'")
    }

    func declareQueue(
        _ name: String, durable: Bool, autoDelete: Bool, arguments: [(String, FieldValue)], on channel: UInt16
    ) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_queue_declare(
            state, channel, arena.bytes(name), 0, durable ? 1 : 0, 0, autoDelete ? 1 : 0, arena.table(arguments))
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "declare queue '\(name)'")
    }

    func bindQueue(_ queue: String, to exchange: String, routingKey: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_queue_bind(
            state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_empty_table)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "bind '\(queue)' to '\(exchange)' by '\(routingKey)'")
    }

    func unbindQueue(_ queue: String, from exchange: String, routingKey: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_queue_unbind(
            state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_empty_table)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "unbind '\(queue)' from '\(exchange)' by '\(routingKey)'")
    }

    func setPrefetch(_ count: UInt16, on channel: UInt16) throws(SessionFailure) {
        _ = amqp_basic_qos(state, channel, 0, count, 0)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "basic.qos \(count)")
    }

    func consume(queue: String, tag: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_basic_consume(state, channel, arena.bytes(queue), arena.bytes(tag), 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "consume '\(queue)'")
    }

    /// basic.cancel; deliveries that raced with it stay queued in rabbitmq-c and are read later.
    func cancel(tag: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_basic_cancel(state, channel, arena.bytes(tag))
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "cancel consumer '\(tag)'")
    }

    func deleteQueue(_ name: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "delete queue '\(name)'")
    }

    func deleteExchange(_ name: String, on channel: UInt16) throws(SessionFailure) {
        let arena = CArena()
        _ = amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try check(amqp_get_rpc_reply(state), channel: channel, doing: "delete exchange '\(name)'")
    }

    /// Ends a graceful connection; errors are irrelevant as the session is dropped next.
    func close() {
        _ = amqp_connection_close(state, 200)
    }

    // MARK: Asynchronous methods (no reply)

    func publish(
        _ message: OutgoingMessage, exchange: String, routingKey: String, mandatory: Bool, on channel: UInt16
    ) throws(SessionFailure) {
        let arena = CArena()
        var properties = amqp_basic_properties_t()
        var flags = UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG)
        properties.content_type = arena.bytes(message.contentType)
        properties.delivery_mode = 2
        func set(_ value: String?, _ flag: Int32, _ field: WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>) {
            guard let value else { return }
            properties[keyPath: field] = arena.bytes(value)
            flags |= UInt32(flag)
        }
        set(message.messageID, AMQP_BASIC_MESSAGE_ID_FLAG, \.message_id)
        set(message.correlationID, AMQP_BASIC_CORRELATION_ID_FLAG, \.correlation_id)
        set(message.type, AMQP_BASIC_TYPE_FLAG, \.type)
        set(message.replyTo, AMQP_BASIC_REPLY_TO_FLAG, \.reply_to)
        set(message.expiration.map { String(max(0, $0.wholeMilliseconds)) }, AMQP_BASIC_EXPIRATION_FLAG, \.expiration)
        if let timestamp = message.timestamp {
            properties.timestamp = timestamp
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if !message.headers.isEmpty {
            properties.headers = arena.table(message.headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        properties._flags = flags
        let status = message.body.withUnsafeBytes { body in
            let bytes = amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
            return amqp_basic_publish(
                state, channel, arena.bytes(exchange), arena.bytes(routingKey), mandatory ? 1 : 0, 0, &properties, bytes)
        }
        try checkStatus(status, doing: "publish")
    }

    func ack(_ deliveryTag: UInt64, on channel: UInt16) throws(SessionFailure) {
        try checkStatus(amqp_basic_ack(state, channel, deliveryTag, 0), doing: "basic.ack")
    }

    func nack(_ deliveryTag: UInt64, requeue: Bool, on channel: UInt16) throws(SessionFailure) {
        try checkStatus(amqp_basic_nack(state, channel, deliveryTag, 0, requeue ? 1 : 0), doing: "basic.nack")
    }

    func reject(_ deliveryTag: UInt64, requeue: Bool, on channel: UInt16) throws(SessionFailure) {
        try checkStatus(amqp_basic_reject(state, channel, deliveryTag, requeue ? 1 : 0), doing: "basic.reject")
    }

    // MARK: Reading

    /// The next frame if one can be read without waiting; nil when none is ready. Also services heartbeats.
    func nextFrame() throws(SessionFailure) -> IncomingFrame? {
        var frame = amqp_frame_t()
        var noWait = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &noWait)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        try checkStatus(status, doing: "read frame")
        defer { amqp_maybe_release_buffers(state) }
        return try decode(frame)
    }

    private func decode(_ frame: amqp_frame_t) throws(SessionFailure) -> IncomingFrame {
        let channel = frame.channel
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_HEADER:
            var properties = ReceivedProperties()
            if let raw = frame.payload.properties.decoded {
                let decoded = raw.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
                func get(_ flag: Int32, _ bytes: amqp_bytes_t) -> String? {
                    decoded._flags & UInt32(flag) != 0 ? bytes.string : nil
                }
                properties.contentType = get(AMQP_BASIC_CONTENT_TYPE_FLAG, decoded.content_type)
                properties.messageID = get(AMQP_BASIC_MESSAGE_ID_FLAG, decoded.message_id)
                properties.correlationID = get(AMQP_BASIC_CORRELATION_ID_FLAG, decoded.correlation_id)
                properties.type = get(AMQP_BASIC_TYPE_FLAG, decoded.type)
                properties.replyTo = get(AMQP_BASIC_REPLY_TO_FLAG, decoded.reply_to)
                if decoded._flags & UInt32(AMQP_BASIC_HEADERS_FLAG) != 0 { properties.headers = decoded.headers.stringHeaders }
                if decoded._flags & UInt32(AMQP_BASIC_TIMESTAMP_FLAG) != 0 { properties.timestamp = decoded.timestamp }
            }
            return .header(channel: channel, bodySize: frame.payload.properties.body_size, properties: properties)
        case AMQP_FRAME_BODY:
            return .body(channel: channel, bytes: frame.payload.body_fragment.array)
        case AMQP_FRAME_METHOD:
            break
        default:
            return .other
        }
        let method = frame.payload.method
        guard let decoded = method.decoded else { return .other }
        switch method.id {
        case Method.basicDeliver:
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            return .deliver(
                channel: channel, deliveryTag: deliver.delivery_tag, redelivered: deliver.redelivered != 0,
                exchange: deliver.exchange.string, routingKey: deliver.routing_key.string)
        case Method.basicAck:
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .confirm(deliveryTag: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case Method.basicNack:
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .confirm(deliveryTag: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case Method.basicReturn:
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            return .returned(code: returned.reply_code, text: returned.reply_text.string)
        case Method.basicCancel:
            return .cancelled(channel: channel)
        case Method.channelClose:
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            sendCloseOK(channel: channel)
            return .channelClosed(channel: channel, code: close.reply_code, text: close.reply_text.string)
        case Method.connectionClose:
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            sendCloseOK(channel: 0)
            throw .connectionLost("broker closed the connection: \(close.reply_code) \(close.reply_text.string)")
        case Method.connectionBlocked: return .blocked(true)
        case Method.connectionUnblocked: return .blocked(false)
        default: return .other
        }
    }

    // MARK: Errors

    private func sendCloseOK(channel: UInt16) {
        if channel == 0 {
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(state, 0, Method.connectionCloseOK, &ok)
        } else {
            var ok = amqp_channel_close_ok_t()
            _ = amqp_send_method(state, channel, Method.channelCloseOK, &ok)
        }
    }

    private func check(_ reply: amqp_rpc_reply_t, channel: UInt16, doing what: String) throws(SessionFailure) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == Method.channelClose, let raw = reply.reply.decoded {
                let close = raw.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                sendCloseOK(channel: channel)
                throw .channelClosed(channel: channel, code: close.reply_code, text: "\(what): \(close.reply_text.string)")
            }
            if reply.reply.id == Method.connectionClose, let raw = reply.reply.decoded {
                let close = raw.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                sendCloseOK(channel: 0)
                throw .connectionLost("\(what): broker closed the connection: \(close.reply_code) \(close.reply_text.string)")
            }
            throw .connectionLost("\(what): unexpected server method \(reply.reply.id)")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw .connectionLost("\(what): \(Self.statusText(reply.library_error))")
        default:
            throw .connectionLost("\(what): no reply")
        }
    }

    private func checkStatus(_ status: Int32, doing what: String) throws(SessionFailure) {
        guard status < 0 else { return }
        throw .connectionLost("\(what): \(Self.statusText(status))")
    }

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }
}

extension timeval {
    init(_ duration: Duration) {
        let microseconds = max(0, duration.wholeMilliseconds) * 1000
        self.init(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }
}
