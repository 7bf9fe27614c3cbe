import CRabbitMQ
import Foundation

/// The same work as `Messaging` does, with bare rabbitmq-c calls: the baseline for the overhead ratio.
/// Runs on the thread that calls it (the benchmark gives it a dedicated one).
final class RawClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let state: amqp_connection_state_t
    private let publishChannel: amqp_channel_t = 1
    private let consumeChannel: amqp_channel_t = 2
    private var nextTag: UInt64 = 1

    init(host: String, port: Int, user: String, password: String, vhost: String) throws {
        state = amqp_new_connection()
        guard let socket = amqp_tcp_socket_new(state), amqp_socket_open(socket, host, Int32(port)) == 0 else {
            amqp_destroy_connection(state)
            throw Failure(description: "cannot connect to \(host):\(port)")
        }
        try check(CRabbitMQ_login_plain(state, vhost, 0, 131_072, 10, user, password), "login")
        for channel in [publishChannel, consumeChannel] {
            amqp_channel_open(state, channel)
            try check(amqp_get_rpc_reply(state), "channel.open")
        }
        amqp_confirm_select(state, publishChannel)
        try check(amqp_get_rpc_reply(state), "confirm.select")
    }

    deinit {
        amqp_connection_close(state, 200)
        amqp_destroy_connection(state)
    }

    func declareQuorumQueue(_ name: String) throws {
        var entries: [amqp_table_entry_t] = []
        let key = strdup("x-queue-type")!, value = strdup("quorum")!
        defer { free(key); free(value) }
        var field = amqp_field_value_t()
        field.kind = UInt8(ascii: "S")
        field.value.bytes = amqp_cstring_bytes(value)
        entries.append(amqp_table_entry_t(key: amqp_cstring_bytes(key), value: field))
        try name.withCString { cName in
            try entries.withUnsafeMutableBufferPointer { buffer in
                let table = amqp_table_t(num_entries: 1, entries: buffer.baseAddress)
                amqp_queue_declare(state, publishChannel, amqp_cstring_bytes(cName), 0, 1, 0, 0, table)
                try check(amqp_get_rpc_reply(state), "queue.declare")
            }
        }
    }

    func deleteQueue(_ name: String) throws {
        name.withCString { _ = amqp_queue_delete(state, publishChannel, amqp_cstring_bytes($0), 0, 0) }
        try check(amqp_get_rpc_reply(state), "queue.delete")
    }

    func consume(_ queue: String, prefetch: UInt16) throws {
        amqp_basic_qos(state, consumeChannel, 0, prefetch, 0)
        try check(amqp_get_rpc_reply(state), "basic.qos")
        queue.withCString { _ = amqp_basic_consume(state, consumeChannel, amqp_cstring_bytes($0), amqp_empty_bytes, 0, 0, 0, amqp_empty_table) }
        try check(amqp_get_rpc_reply(state), "basic.consume")
    }

    /// Publishes one persistent JSON message to the default exchange; returns its confirm tag.
    @discardableResult
    func publish(_ body: [UInt8], to queue: String) throws -> UInt64 {
        var properties = amqp_basic_properties_t()
        properties._flags = UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG)
        properties.delivery_mode = 2
        let status = "application/json".withCString { contentType in
            properties.content_type = amqp_cstring_bytes(contentType)
            return queue.withCString { routingKey in
                body.withUnsafeBytes { raw in
                    amqp_basic_publish(
                        state, publishChannel, amqp_empty_bytes, amqp_cstring_bytes(routingKey), 1, 0, &properties,
                        amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)))
                }
            }
        }
        guard status == 0 else { throw Failure(description: "publish: \(String(cString: amqp_error_string2(status)))") }
        defer { nextTag += 1 }
        return nextTag
    }

    enum Event {
        case confirmed(upTo: UInt64, multiple: Bool)
        case delivered(tag: UInt64, body: [UInt8])
    }

    /// Blocks for the next confirm or complete delivery.
    func nextEvent() throws -> Event {
        var pending: (tag: UInt64, size: Int, body: [UInt8])?
        while true {
            var frame = amqp_frame_t()
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
            guard status == 0 else { throw Failure(description: "wait frame: \(String(cString: amqp_error_string2(status)))") }
            defer { amqp_maybe_release_buffers(state) }
            switch Int32(frame.frame_type) {
            case AMQP_FRAME_METHOD:
                let id = frame.payload.method.id
                if id == 0x003C_0050 {
                    let ack = frame.payload.method.decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                    return .confirmed(upTo: ack.delivery_tag, multiple: ack.multiple != 0)
                } else if id == 0x003C_003C {
                    let deliver = frame.payload.method.decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
                    pending = (deliver.delivery_tag, 0, [])
                } else if id == 0x003C_0078 {
                    throw Failure(description: "broker nacked a publish")
                }
            case AMQP_FRAME_HEADER:
                pending?.size = Int(frame.payload.properties.body_size)
                if let message = pending, message.size == 0 { return .delivered(tag: message.tag, body: []) }
            case AMQP_FRAME_BODY:
                let fragment = frame.payload.body_fragment
                pending?.body.append(contentsOf: UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len))
                if let message = pending, message.body.count >= message.size {
                    return .delivered(tag: message.tag, body: message.body)
                }
            default:
                continue
            }
        }
    }

    func ack(_ tag: UInt64) throws {
        guard amqp_basic_ack(state, consumeChannel, tag, 0) == 0 else { throw Failure(description: "basic.ack failed") }
    }

    private func check(_ reply: amqp_rpc_reply_t, _ what: String) throws {
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            throw Failure(description: "\(what) failed (reply type \(reply.reply_type.rawValue), library error \(reply.library_error))")
        }
    }
}
