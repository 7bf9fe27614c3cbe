import CRabbitMQ
import Foundation

/// A value in an AMQP field table that this library writes.
enum FieldValue {
    case string(String)
    case int(Int64)
    case bool(Bool)
}

/// Owns C copies of Swift strings and tables for the duration of one rabbitmq-c call.
///
/// rabbitmq-c takes `amqp_bytes_t` / `amqp_table_t` that point at caller memory; this keeps that memory
/// alive until the arena is released, so no pointer escapes a `withUnsafe...` scope.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ source: [UInt8]) -> amqp_bytes_t {
        guard !source.isEmpty, let pointer = malloc(source.count) else { return amqp_empty_bytes }
        allocations.append(pointer)
        source.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: source.count) }
        return amqp_bytes_t(len: source.count, bytes: pointer)
    }

    func cString(_ string: String) -> UnsafePointer<CChar> {
        let pointer = strdup(string)!
        allocations.append(UnsafeMutableRawPointer(pointer))
        return UnsafePointer(pointer)
    }

    func table(_ entries: [(String, FieldValue)]) -> amqp_table_t {
        guard !entries.isEmpty else { return amqp_empty_table }
        let size = MemoryLayout<amqp_table_entry_t>.stride * entries.count
        let raw = calloc(1, size)!
        allocations.append(raw)
        let typed = raw.bindMemory(to: amqp_table_entry_t.self, capacity: entries.count)
        for (index, (key, value)) in entries.enumerated() {
            var field = amqp_field_value_t()
            switch value {
            case .string(let string):
                field.kind = UInt8(ascii: "S")
                field.value.bytes = bytes(string)
            case .int(let number):
                field.kind = UInt8(ascii: "l")
                field.value.i64 = number
            case .bool(let flag):
                field.kind = UInt8(ascii: "t")
                field.value.boolean = flag ? 1 : 0
            }
            typed[index] = amqp_table_entry_t(key: bytes(key), value: field)
        }
        return amqp_table_t(num_entries: Int32(entries.count), entries: typed)
    }
}

extension amqp_bytes_t {
    /// A Swift copy of the bytes (rabbitmq-c reuses its buffers).
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    var string: String { String(decoding: array, as: UTF8.self) }
}

extension amqp_table_t {
    /// Scalar entries rendered as strings; nested tables and arrays (e.g. `x-death`) are skipped.
    var stringHeaders: [String: String] {
        var result: [String: String] = [:]
        guard num_entries > 0, let entries else { return result }
        for index in 0..<Int(num_entries) {
            let entry = entries[index]
            let value = entry.value
            let rendered: String?
            switch value.kind {
            case UInt8(ascii: "S"), UInt8(ascii: "x"): rendered = value.value.bytes.string
            case UInt8(ascii: "t"): rendered = value.value.boolean != 0 ? "true" : "false"
            case UInt8(ascii: "b"): rendered = String(value.value.i8)
            case UInt8(ascii: "B"): rendered = String(value.value.u8)
            case UInt8(ascii: "s"): rendered = String(value.value.i16)
            case UInt8(ascii: "u"): rendered = String(value.value.u16)
            case UInt8(ascii: "I"): rendered = String(value.value.i32)
            case UInt8(ascii: "i"): rendered = String(value.value.u32)
            case UInt8(ascii: "l"): rendered = String(value.value.i64)
            case UInt8(ascii: "L"), UInt8(ascii: "T"): rendered = String(value.value.u64)
            case UInt8(ascii: "f"): rendered = String(value.value.f32)
            case UInt8(ascii: "d"): rendered = String(value.value.f64)
            default: rendered = nil
            }
            if let rendered { result[entry.key.string] = rendered }
        }
        return result
    }
}
