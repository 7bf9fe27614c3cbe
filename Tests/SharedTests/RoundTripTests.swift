import Foundation
import Shared
import Testing

@Suite struct RoundTripTests {
    @Test("encode → decode gives the same message", arguments: Samples.golden.map(\.file))
    func roundTrip(file: String) throws {
        let message = try #require(Samples.golden.first { $0.file == file }).message
        let bytes = try MessageCoding.encode(message.message)
        #expect(try MessageDecoder.decode(bytes) == message)
        // Stable bytes: encoding the decoded message again changes nothing.
        #expect(try MessageCoding.encode(MessageDecoder.decode(bytes).message) == bytes)
    }

    @Test func freshMessagesRoundTripWithMillisecondDates() throws {
        let request = RequestGeneration(jobId: UUID(), mediaId: UUID(), kind: .variation, variationName: "Soft Shadow (Recommended)")
        let decoded = try MessageDecoder.decode(RequestGeneration.self, from: MessageCoding.encode(request))
        #expect(decoded.jobId == request.jobId)
        #expect(decoded.correlationId == request.jobId.uuidString)
        #expect(abs(decoded.occurredAt.timeIntervalSince(request.occurredAt)) < 0.001)
        #expect(decoded.options == GenerationOptions())
    }

    @Test func timestampsWithAndWithoutFractions() throws {
        #expect(MessageCoding.parseTimestamp("2026-11-29T10:15:30Z") != nil)
        let fraction = try #require(MessageCoding.parseTimestamp("2026-11-29T10:15:30.123Z"))
        #expect(MessageCoding.formatTimestamp(fraction) == "2026-11-29T10:15:30.123Z")
        let offset = try #require(MessageCoding.parseTimestamp("2026-11-29T12:15:30.123+02:00"))
        #expect(offset == fraction)
        #expect(MessageCoding.parseTimestamp("29/11/2026") == nil)
    }

    @Test func minimalRequestTakesDefaults() throws {
        let json = """
            {"type": "cyclorama.generation.request", "schemaVersion": 1,
             "messageId": "0b8f2c3e-7a1d-4c5e-9f00-1234567890ab", "correlationId": "job-1",
             "occurredAt": "2026-11-29T10:15:30Z",
             "jobId": "5f0c6a1e-1111-4a2b-8c3d-abcdefabcdef", "mediaId": "6a1d7b2f-2222-4b3c-9d4e-bcdefabcdef0",
             "kind": "single", "futureField": {"ignored": true}}
            """
        let request = try MessageDecoder.decode(RequestGeneration.self, from: Array(json.utf8))
        #expect(request.mediaId == UUID(uuidString: "6A1D7B2F-2222-4B3C-9D4E-BCDEFABCDEF0"))
        let resolved = request.options.resolved(with: GenerationDefaults(settings: ["aiImageDefaultShadow": "dramatic"]))
        #expect(resolved == ResolvedGenerationOptions(
            shadowStyle: .dramatic, backgroundColor: .white, removeWatermark: true, upscale: .x1))
        // aiImageEnableUpscaling makes 2x the default; a request's own factor still wins.
        let upscaling = GenerationDefaults(settings: ["aiImageEnableUpscaling": "true"])
        #expect(request.options.resolved(with: upscaling).upscale == .x2)
        #expect(GenerationOptions(upscale: .x1).resolved(with: upscaling).upscale == .x1)
        #expect(GenerationDefaults(settings: ["aiImageEnableUpscaling": "false"]).upscale == .x1)
    }

    @Test func encodingIsFlatWithSortedKeys() throws {
        let text = String(decoding: try MessageCoding.encode(Samples.generationSubmitted), as: UTF8.self)
        #expect(text.hasPrefix(#"{"backend":"local","backendJobId":"#))
        #expect(text.contains(#""type":"cyclorama.generation.submitted""#))
        #expect(text.contains(#""schemaVersion":1"#))
    }

    @Test func jsonValueKeepsArbitraryInput() throws {
        let input: JSONValue = ["a": [1, 2.5, "x", true, nil], "b": ["nested": ["deep": -1]]]
        let bytes = try MessageCoding.makeEncoder().encode(input)
        #expect(try MessageCoding.makeDecoder().decode(JSONValue.self, from: bytes) == input)
        #expect(input["b"]?["nested"]?["deep"]?.intValue == -1)
    }

    @Test func routesOfEveryMessage() {
        #expect(RequestGeneration.route == ReplyAddress(exchange: "cyclorama.commands", routingKey: "generation.request"))
        #expect(GenerationCompleted.route == ReplyAddress(exchange: "cyclorama.events", routingKey: "generation.completed"))
        #expect(GenerationRendered.route == ReplyAddress(exchange: "cyclorama.events", routingKey: "generation.rendered"))
        #expect(SettingsReply.route == nil)
        for type in MessageType.allCases where type != .settingsReply {
            #expect(type.route != nil)
        }
        #expect(Routing.Queue.deadLetter(for: Routing.Queue.jobEvents) == "api-gateway.job-events.dlq")
    }

    @Test func secretsAreMasked() {
        #expect(SecretSettings.mask("") == "")
        #expect(SecretSettings.mask("rpa_ABCDEFGHIJKLMNOP1234") == "rpa_…1234")
        #expect(SecretSettings.mask("short") == "rpa_…")
        let masked = SecretSettings.masking(["runpodApiKey": "rpa_ABCDEFGHIJKLMNOP1234", "aiImageResolution": "1024"])
        #expect(masked == ["runpodApiKey": "rpa_…1234", "aiImageResolution": "1024"])
    }
}
