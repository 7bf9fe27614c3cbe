import Foundation
import Shared
import Testing

/// Messages that decode but make no sense are rejected with the field and a readable reason.
@Suite struct ValidationTests {
    /// The golden RequestGeneration as a mutable JSON object.
    static func request(_ change: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
        var object = try #require(JSONDecoder().decode(
            JSONValue.self, from: MessageCoding.encode(Samples.requestGeneration).data).objectValue)
        change(&object)
        return Array(try JSONEncoder().encode(JSONValue.object(object)))
    }

    static func options(_ change: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
        try request { object in
            var options = object["options"]?.objectValue ?? [:]
            change(&options)
            object["options"] = .object(options)
        }
    }

    static func rejection(_ bytes: [UInt8]) -> MessageDecodingError? {
        do {
            _ = try MessageDecoder.decode(RequestGeneration.self, from: bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func rejectsUnknownShadowStyle() throws {
        let error = try #require(Self.rejection(Self.options { $0["shadowStyle"] = "spooky" }))
        #expect(error.code == .invalidValue)
        #expect(error.field == "options.shadowStyle")
        #expect(error.description == #"options.shadowStyle: must be one of minimal, soft, dramatic, none; got "spooky""#)
    }

    @Test(arguments: ["#12345", "FFFFFF", "#GGGGGG", "#FFFFFFF", "white", "", "#FFF"])
    func rejectsBadHexColour(colour: String) throws {
        let error = try #require(Self.rejection(Self.options { $0["backgroundColor"] = .string(colour) }))
        #expect(error.code == .invalidValue)
        #expect(error.field == "options.backgroundColor")
        #expect(error.reason.hasPrefix(##"must be "#RRGGBB" (hex) or "transparent"; got "##))
    }

    @Test func acceptsColourInAnyCaseAndNormalises() throws {
        let lower = try MessageDecoder.decode(
            RequestGeneration.self, from: Self.options { $0["backgroundColor"] = "#ab12cd" })
        #expect(lower.options.backgroundColor?.rawValue == "#AB12CD")
        let transparent = try MessageDecoder.decode(
            RequestGeneration.self, from: Self.options { $0["backgroundColor"] = "Transparent" })
        #expect(transparent.options.backgroundColor == .transparent)
    }

    @Test func rejectsOverlongCustomInstructions() throws {
        let text = String(repeating: "a", count: 501)
        let error = try #require(Self.rejection(Self.options { $0["customInstructions"] = .string(text) }))
        #expect(error.code == .invalidValue)
        #expect(error.description == "options.customInstructions: must be at most 500 characters; got 501")
        // The limit counts after trimming.
        let padded = "   " + String(repeating: "a", count: 500) + "\n\n"
        #expect(Self.rejection(try Self.options { $0["customInstructions"] = .string(padded) }) == nil)
    }

    @Test func framingIsAPresetOrAnExplicitFrame() throws {
        let preset = try MessageDecoder.decode(RequestGeneration.self, from: Self.options { $0["framing"] = "shopify" })
        #expect(preset.options.framing == .preset(.shopify))
        let explicit = try MessageDecoder.decode(
            RequestGeneration.self, from: Self.options { $0["framing"] = ["aspect": "4:5", "fill": 0.7, "later": true] })
        #expect(explicit.options.framing == .custom(FramingSpec(aspect: .portrait, fill: 0.7)), "absent fields default, unknown ones are ignored")
        #expect(explicit.options.resolved().framing == FramingSpec(aspect: .portrait, fill: 0.7, align: .center))
        let amazonByDefault = GenerationDefaults(settings: ["aiImageDefaultFraming": "amazon"])
        #expect(GenerationOptions().resolved(with: amazonByDefault).framing == FramingPreset.amazon.spec)
        #expect(GenerationOptions(framing: .preset(.none)).resolved(with: amazonByDefault).framing == nil, "none asked for beats the default")
        #expect(GenerationOptions().resolved().framing == nil, "no framing unless asked for")
        // A minimum above the maximum is not an error (OpenAPI cannot state that rule): the maximum wins.
        let crossed = try MessageDecoder.decode(RequestGeneration.self, from: Self.options { $0["framing"] = ["minSide": 2000, "maxSide": 1000] })
        #expect(crossed.options.framing == .custom(FramingSpec(minSide: 2000, maxSide: 1000)))
        // Presets are sent spelled out, and read back the same.
        let spec = try #require(FramingPreset.google.spec)
        #expect(try JSONDecoder().decode(FramingSpec.self, from: JSONEncoder().encode(spec)) == spec)
        #expect(try JSONDecoder().decode(Framing.self, from: JSONEncoder().encode(Framing.preset(.ebay))) == .preset(.ebay))
    }

    @Test func framingRejectionsNameTheField() throws {
        let cases: [(JSONValue, String, String)] = [
            ("square", "options.framing", #"must be one of none, amazon, google, shopify, ebay or an object; got "square""#),
            (5, "options.framing", "must be one of none, amazon, google, shopify, ebay or an object; got a number"),
            (["fill": 0.99], "options.framing.fill", "must be a number from 0.5 to 0.95; got 0.99"),
            (["fill": "big"], "options.framing.fill", #"must be a number from 0.5 to 0.95; got "big""#),
            (["aspect": "2:1"], "options.framing.aspect", #"must be one of 1:1, 4:5, 3:4, 16:9, original; got "2:1""#),
            (["align": "top"], "options.framing.align", #"must be one of center, bottom; got "top""#),
            (["minSide": 50], "options.framing.minSide", "must be an integer from 100 to 10000; got 50"),
        ]
        for (value, field, reason) in cases {
            let error = try #require(Self.rejection(Self.options { $0["framing"] = value }), "\(value.jsonText) was accepted")
            #expect(error.code == .invalidValue)
            #expect(error.field == field && error.reason == reason, "\(value.jsonText): \(error.description)")
        }
    }

    @Test func rejectsMissingMediaId() throws {
        let error = try #require(Self.rejection(Self.request { $0["mediaId"] = nil }))
        #expect(error.code == .missingField)
        #expect(error.description == "mediaId: required field is missing")
    }

    @Test func rejectsMediaIdThatIsNotAUUID() throws {
        let error = try #require(Self.rejection(Self.request { $0["mediaId"] = "media-42" }))
        #expect(error.description == "mediaId: must be a UUID string")
        let number = try #require(Self.rejection(Self.request { $0["mediaId"] = 42 }))
        #expect(number.code == .wrongType)
        #expect(number.description.hasPrefix("mediaId: expected a string"))
        let null = try #require(Self.rejection(Self.request { $0["mediaId"] = .null }))
        #expect(null.code == .wrongType)
    }

    @Test func rejectsUnknownUpscaleAndKind() throws {
        let upscale = try #require(Self.rejection(Self.options { $0["upscale"] = 3 }))
        #expect(upscale.description == "options.upscale: must be one of 1, 2, 4; got 3")
        let kind = try #require(Self.rejection(Self.request { $0["kind"] = "bulk" }))
        #expect(kind.description == #"kind: must be one of single, batchItem, variation; got "bulk""#)
    }

    @Test func batchIdAndVariationNameFollowTheKind() throws {
        let noBatch = try #require(Self.rejection(Self.request { $0["kind"] = "batchItem" }))
        #expect(noBatch.description == "batchId: is required when kind is batchItem")
        let noName = try #require(Self.rejection(Self.request { $0["kind"] = "variation" }))
        #expect(noName.description == "variationName: is required when kind is variation")
        let stray = try #require(Self.rejection(Self.request { $0["batchId"] = .string(UUID().uuidString) }))
        #expect(stray.field == "batchId")
        let batch = try MessageDecoder.decode(RequestGeneration.self, from: Self.request {
            $0["kind"] = "batchItem"
            $0["batchId"] = .string(UUID().uuidString)
        })
        #expect(batch.kind == .batchItem)
    }

    @Test func rejectsReplyToTheCommandsExchange() throws {
        let error = try #require(Self.rejection(Self.request {
            $0["replyTo"] = ["exchange": "cyclorama.commands", "routingKey": "generation.request"]
        }))
        #expect(error.field == "replyTo.exchange")
    }

    @Test func unknownTypeAndNewerSchemaAreClearErrors() throws {
        let unknown = try #require(Self.rejection(Self.request { $0["type"] = "cyclorama.teleport" }))
        #expect(unknown.code == .unknownType)
        #expect(unknown.description.hasPrefix(#"type: unknown message type "cyclorama.teleport"; known: "#))
        let newer = try #require(Self.rejection(Self.request { $0["schemaVersion"] = 2 }))
        #expect(newer.code == .unsupportedSchemaVersion)
        #expect(newer.description == "schemaVersion: version 2 is newer than this consumer supports (1)")
        let missing = try #require(Self.rejection(Self.request { $0["type"] = nil }))
        #expect(missing.description == "type: required field is missing")
    }

    @Test func typeMustMatchTheExpectedMessage() throws {
        let bytes = try MessageCoding.encode(Samples.generationFailed)
        do {
            _ = try MessageDecoder.decode(RequestGeneration.self, from: bytes)
            Issue.record("a GenerationFailed decoded as RequestGeneration")
        } catch {
            #expect(error.code == .unexpectedType)
            #expect(error.description == "type: expected cyclorama.generation.request; got cyclorama.generation.failed")
        }
    }

    @Test(arguments: ["", "not json", "[1,2]", "\"text\"", "{\"type\": 5, \"schemaVersion\": 1}"])
    func malformedBodiesAreRejectedNotCrashed(body: String) throws {
        #expect(throws: MessageDecodingError.self) { try MessageDecoder.decode(Array(body.utf8)) }
    }

    @Test func badTimestampIsNamed() throws {
        let error = try #require(Self.rejection(Self.request { $0["occurredAt"] = "yesterday" }))
        #expect(error.field == "occurredAt")
        #expect(error.reason.contains("ISO-8601"))
    }

    @Test func otherMessagesValidateTheirFields() throws {
        var dispatch = Samples.dispatchGeneration
        dispatch.attempt = 0
        #expect(throws: ValidationError(field: "attempt", reason: "must be at least 1; got 0")) { try dispatch.validate() }
        dispatch = Samples.dispatchGeneration
        dispatch.input = "not an object"
        #expect(throws: ValidationError(field: "input", reason: "must be a JSON object")) { try dispatch.validate() }

        var updated = Samples.mediaUpdated
        updated.sha256 = "XYZ"
        #expect(throws: ValidationError.self) { try updated.validate() }

        var rendered = Samples.generationRendered
        rendered.outputUrl = "file:///etc/passwd"
        #expect(throws: ValidationError.self) { try rendered.validate() }
        var completed = Samples.generationCompleted
        completed.outputUrl = "file:///etc/passwd"
        #expect(throws: ValidationError.self) { try completed.validate() }

        var reply = Samples.settingsReply
        reply.settings["runpodApiKey"] = "rpa_THISISTHEWHOLEKEY1234"
        let leak = #expect(throws: ValidationError.self) { try reply.validate() }
        #expect(leak?.field == "settings.runpodApiKey")
    }

    /// A job's `source` names a file the ingestor reads (and may paste pixels from): only a path
    /// inside the media store, as the store writes them, is accepted.
    @Test(arguments: ["/etc/passwd", "../secrets/key.png", "ab/../../etc/passwd", "ab//cd.png", "ab/./cd.png", "ab/cd/", "ab\\..\\cd.png", "ab/c\u{0}d.png", " ", ""])
    func aSourceOutsideTheStoreIsRefused(path: String) throws {
        var dispatch = Samples.dispatchGeneration
        dispatch.source?.path = path
        let refused = #expect(throws: ValidationError.self) { try dispatch.validate() }
        #expect(refused?.field == "source.path", "\(path): \(String(describing: refused))")
        var rendered = Samples.generationRendered
        rendered.source?.path = path
        #expect(throws: ValidationError.self) { try rendered.validate() }
    }

    @Test func aSourceHasAPathInsideTheStoreAndASize() throws {
        var dispatch = Samples.dispatchGeneration
        try dispatch.validate()
        dispatch.source = nil
        try dispatch.validate()
        dispatch.source = JobSource(path: "ab/cd/abcd.png", width: 0, height: 10)
        #expect(throws: ValidationError(field: "source.width", reason: "must be at least 1; got 0")) { try dispatch.validate() }
        dispatch.source = JobSource(path: "ab/cd/abcd.png", width: 10, height: -1)
        #expect(throws: ValidationError(field: "source.height", reason: "must be at least 1; got -1")) { try dispatch.validate() }
    }
}

extension Array where Element == UInt8 {
    var data: Data { Data(self) }
}
