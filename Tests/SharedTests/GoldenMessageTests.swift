import Foundation
import Shared
import Testing

/// The golden files are the contract: each decodes to the Swift value, the Swift value encodes to
/// it, and docs/messages.md shows the same JSON under the message's heading.
@Suite struct GoldenMessageTests {
    static let goldenFiles = Samples.golden.map(\.file)

    static func goldenBytes(_ file: String) throws -> [UInt8] {
        let folder = try #require(Bundle.module.url(forResource: "Golden", withExtension: nil))
        return Array(try Data(contentsOf: folder.appendingPathComponent("\(file).json")))
    }

    static func message(for file: String) throws -> AnyMessage {
        try #require(Samples.golden.first { $0.file == file }).message
    }

    @Test("golden file decodes to the documented message", arguments: goldenFiles)
    func decodesGolden(file: String) throws {
        let decoded = try MessageDecoder.decode(Self.goldenBytes(file))
        let expected = try Self.message(for: file)
        #expect(decoded == expected)
    }

    @Test("the message encodes to the golden JSON", arguments: goldenFiles)
    func encodesToGolden(file: String) throws {
        let encoded = try MessageCoding.encode(Self.message(for: file).message)
        let golden = try DocJSON.parse(Self.goldenBytes(file))
        #expect(try DocJSON.parse(encoded) == golden)
    }

    @Test("docs/messages.md shows the golden JSON under the message's heading", arguments: goldenFiles)
    func documentedVerbatim(file: String) throws {
        let name = String(file.prefix { $0 != "." })
        let found = try DocJSON.section(named: name)
        let section = try #require(found, "no '## \(name)' section in docs/messages.md")
        let golden = try DocJSON.parse(Self.goldenBytes(file))
        let examples = try DocJSON.jsonBlocks(in: section).map { try DocJSON.parse(Array($0.utf8)) }
        #expect(examples.contains(golden), "docs/messages.md '## \(name)' lacks the JSON of Golden/\(file).json")
    }

    @Test("every message example in docs/messages.md decodes and validates")
    func everyDocumentedMessageIsValid() throws {
        let blocks = try DocJSON.jsonBlocks(in: DocJSON.document())
        var checked = 0
        for block in blocks {
            guard case .object(let object) = try DocJSON.parse(Array(block.utf8)),
                  object["type"]?.stringValue?.hasPrefix("cyclorama.") == true, object["messageId"] != nil
            else { continue }
            checked += 1
            #expect(throws: Never.self, "\(block)") { try MessageDecoder.decode(Array(block.utf8)) }
        }
        #expect(checked >= Samples.golden.count)
    }

    @Test("every message type has a golden file")
    func everyTypeCovered() throws {
        let covered = Set(Samples.golden.map(\.message.type))
        #expect(covered == Set(MessageType.allCases))
    }

    @Test("docs/messages.md names every exchange, routing key, queue and header")
    func routingNamesDocumented() throws {
        let doc = try DocJSON.document()
        let names = Routing.Exchange.all + Routing.bindings.map(\.queue) + Routing.bindings.flatMap(\.keys)
            + MessageType.allCases.map(\.rawValue) + [Routing.Header.reason]
        for name in names {
            #expect(doc.contains("`\(name)`"), "docs/messages.md does not mention `\(name)`")
        }
    }
}

/// Reading docs/messages.md and comparing JSON by meaning, not by formatting.
enum DocJSON {
    static func document() throws -> String {
        // Tests/SharedTests/GoldenMessageTests.swift → the package root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("docs/messages.md"), encoding: .utf8)
    }

    /// The text from `## <name>` (the heading's first word) to the next level-2 heading.
    static func section(named name: String) throws -> String? {
        var lines: [Substring]?
        for line in try document().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                if lines != nil { break }
                let title = line.dropFirst(3).prefix { $0.isLetter || $0.isNumber }
                if title == name { lines = [] }
            } else {
                lines?.append(line)
            }
        }
        return lines?.joined(separator: "\n")
    }

    /// The contents of every ```json fenced block.
    static func jsonBlocks(in text: String) throws -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```json" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// Parsed JSON with numbers normalised, so `0` and `0.0` compare equal.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        normalised(try JSONDecoder().decode(JSONValue.self, from: Data(bytes)))
    }

    private static func normalised(_ value: JSONValue) -> JSONValue {
        switch value {
        case .int(let number): .double(Double(number))
        case .array(let items): .array(items.map(normalised))
        case .object(let members): .object(members.mapValues(normalised))
        default: value
        }
    }
}
