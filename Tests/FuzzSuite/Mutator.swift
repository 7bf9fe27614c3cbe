import Foundation
import Shared

/// A small deterministic generator (SplitMix64): a fuzz run is repeated exactly from its seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Turns a valid input into hostile ones: damaged bytes, wrong JSON types, huge and deeply nested
/// values, invalid UTF-8, random documents. Each call picks one strategy; `kind` names it.
public struct Mutator: Sendable {
    public init() {}

    public func mutate(_ seed: [UInt8], using random: inout SeededGenerator) -> (kind: String, bytes: [UInt8]) {
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<8: return ("seed", seed)
        case 8..<22: return ("flipped bytes", flip(seed, using: &random))
        case 22..<30: return ("truncated", Array(seed.prefix(Int.random(in: 0...max(0, seed.count), using: &random))))
        case 30..<38: return ("invalid UTF-8", insert([0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80].shuffled(using: &random), into: seed, using: &random))
        case 38..<70: return ("wrong type", replaceValue(seed, using: &random))
        case 70..<82: return ("random JSON", Array(Self.json(randomValue(depth: 0, using: &random))))
        case 82..<88: return ("deep nesting", deep(Int.random(in: 100...20_000, using: &random), using: &random))
        case 88..<94: return ("huge string", replaceValue(seed, with: .string(String(repeating: "x", count: Int.random(in: 10_000...200_000, using: &random))), using: &random))
        case 94..<97: return ("empty", [])
        default: return ("random bytes", (0..<Int.random(in: 1...512, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
    }

    func flip(_ bytes: [UInt8], using random: inout SeededGenerator) -> [UInt8] {
        guard !bytes.isEmpty else { return [UInt8.random(in: 0...255, using: &random)] }
        var out = bytes
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            out[Int.random(in: 0..<out.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        }
        return out
    }

    func insert(_ junk: [UInt8], into bytes: [UInt8], using random: inout SeededGenerator) -> [UInt8] {
        var out = bytes
        out.insert(contentsOf: junk, at: Int.random(in: 0...out.count, using: &random))
        return out
    }

    func deep(_ depth: Int, using random: inout SeededGenerator) -> [UInt8] {
        let open: UInt8 = Bool.random(using: &random) ? UInt8(ascii: "[") : UInt8(ascii: "{")
        if open == UInt8(ascii: "[") { return [UInt8](repeating: open, count: depth) + [UInt8](repeating: UInt8(ascii: "]"), count: depth) }
        return Array(String(repeating: "{\"a\":", count: depth).utf8) + Array("1".utf8) + [UInt8](repeating: UInt8(ascii: "}"), count: depth)
    }

    /// The seed (a JSON object) with one value, at any depth, replaced by `value` or a random one of
    /// another kind; a seed that is not JSON is flipped instead.
    func replaceValue(_ seed: [UInt8], with value: JSONValue? = nil, using random: inout SeededGenerator) -> [UInt8] {
        guard let document = try? JSONDecoder().decode(JSONValue.self, from: Data(seed)) else { return flip(seed, using: &random) }
        let replacement = value ?? randomValue(depth: 2, using: &random)
        return Array(Self.json(replaceOne(document, with: replacement, using: &random)))
    }

    private func replaceOne(_ value: JSONValue, with replacement: JSONValue, using random: inout SeededGenerator) -> JSONValue {
        switch value {
        case .object(var object) where !object.isEmpty:
            let key = object.keys.sorted()[Int.random(in: 0..<object.count, using: &random)]
            object[key] = Bool.random(using: &random) ? replacement : replaceOne(object[key]!, with: replacement, using: &random)
            return .object(object)
        case .array(var array) where !array.isEmpty:
            let index = Int.random(in: 0..<array.count, using: &random)
            array[index] = Bool.random(using: &random) ? replacement : replaceOne(array[index], with: replacement, using: &random)
            return .array(array)
        default:
            return replacement
        }
    }

    func randomValue(depth: Int, using random: inout SeededGenerator) -> JSONValue {
        let choice = Int.random(in: 0..<(depth > 3 ? 6 : 8), using: &random)
        switch choice {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .int([0, -1, 1, Int.max, Int.min, 999_999_999, Int.random(in: -1000...1000, using: &random)].randomElement(using: &random)!)
        case 3: return .double([0.5, -0.0, 1e308, -1e308, 3.14159, 1e-300].randomElement(using: &random)!)
        case 4: return .string(["", " ", "null", "../../etc/passwd", "<script>", "#GGGGGG", "dramatic", "\u{0}", "ü🙂", String(repeating: "é", count: 300)].randomElement(using: &random)!)
        case 5: return .string(Self.uuid(using: &random).uuidString)
        case 6: return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in randomValue(depth: depth + 1, using: &random) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                object[["background", "shadow", "upscale", "mediaIds", "options", "jobId", "customPrompts", "x", ""].randomElement(using: &random)!] =
                    randomValue(depth: depth + 1, using: &random)
            }
            return .object(object)
        }
    }

    static func uuid(using random: inout SeededGenerator) -> UUID {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    static func json(_ value: JSONValue) -> Data {
        (try? JSONEncoder().encode(value)) ?? Data("null".utf8)
    }
}

/// What a fuzz run tried and what it got.
public struct FuzzReport: Sendable, CustomStringConvertible {
    public var name: String
    public var tried = 0
    /// Outcome (an HTTP status, or `dead-lettered` / `handled`) → count.
    public var outcomes: [String: Int] = [:]
    /// Mutation kind → count.
    public var kinds: [String: Int] = [:]
    /// Inputs that broke a rule, with what happened (at most 20 kept).
    public var failures: [String] = []
    public var failureCount = 0

    public init(name: String) { self.name = name }

    mutating func record(kind: String, outcome: String) {
        tried += 1
        kinds[kind, default: 0] += 1
        outcomes[outcome, default: 0] += 1
    }

    mutating func fail(_ text: String) {
        failureCount += 1
        if failures.count < 20 { failures.append(String(text.prefix(600))) }
    }

    public var description: String {
        var lines = ["\(name): \(tried) inputs, \(failureCount) broke a rule"]
        lines.append("  outcomes: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append("  inputs: " + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        for failure in failures { lines.append("  ✘ " + failure) }
        return lines.joined(separator: "\n")
    }
}
