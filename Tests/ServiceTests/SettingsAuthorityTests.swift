import Foundation
import ServiceSupport
import Shared
import Testing

/// The settings authority's signature is a public contract (docs/messages.md spells out the text
/// signed): the documented example must verify, and any change to what is signed must not.
@Suite("Settings authority")
struct SettingsAuthorityTests {
    static let example = SettingsAuthority(secret: Array("example-settings-authority-key-0123456789".utf8))
    static let documented = "2f4ecb9dab49440036bcef593bca6c0e4716698f332d16cac6baf7f055572b86"

    static func request(notAfter: String = "2026-11-29T09:30:12.500Z", updates: [String: String] = ["aiImageDefaultShadow": "dramatic"]) -> SettingsRequest {
        SettingsRequest(
            messageId: UUID(uuidString: "C4E2A981-0B7D-4F3E-9A56-1D8C7B2E4F90")!,
            occurredAt: MessageCoding.parseTimestamp("2026-11-29T09:30:07.500Z")!, updates: updates,
            notAfter: MessageCoding.parseTimestamp(notAfter)!)
    }

    static let before = MessageCoding.parseTimestamp("2026-11-29T09:30:08.000Z")!

    @Test func theDocumentedExampleSignsAndVerifiesAfterCrossingTheBroker() throws {
        let signed = Self.example.signed(Self.request())
        #expect(signed.authorization == Self.documented)
        // Encoded and decoded as every message is: the timestamp's milliseconds survive exactly.
        let decoded = try MessageDecoder.decode(SettingsRequest.self, from: Array(try MessageCoding.makeEncoder().encode(signed)))
        #expect(Self.example.refusal(of: decoded, now: Self.before) == nil)
        // Upper-case hex is the same MAC.
        var upper = decoded
        upper.authorization = Self.documented.uppercased()
        #expect(Self.example.refusal(of: upper, now: Self.before) == nil)
    }

    @Test func anyChangeToWhatIsSignedIsRefused() {
        let signed = Self.example.signed(Self.request())
        var variants: [SettingsRequest] = []
        var other = signed
        other.updates = ["aiImageDefaultShadow": "soft"]
        variants.append(other)
        other = signed
        other.updates = ["aiImageDefaultShadow": "dramatic", "aiImageEnabled": "false"]
        variants.append(other)
        other = signed
        other.notAfter = signed.notAfter!.addingTimeInterval(0.001)
        variants.append(other)
        other = signed
        other.messageId = UUID()
        variants.append(other)
        other = signed
        other.authorization = String(Self.documented.dropLast()) + "0"
        variants.append(other)
        other = signed
        other.authorization = "not hex"
        variants.append(other)
        for variant in variants {
            #expect(Self.example.refusal(of: variant, now: Self.before)?.contains("does not match") == true)
        }
        // Keys and values are length-prefixed: moving characters between them changes the text.
        let a = Self.example.signed(Self.request(updates: ["ab": "c"])).authorization
        let b = Self.example.signed(Self.request(updates: ["a": "bc"])).authorization
        #expect(a != b)
    }

    @Test func readsNeedNoAuthorizationAndChangesNeedAShortWindow() {
        #expect(Self.example.refusal(of: SettingsRequest(keys: ["aiImageBackend"])) == nil)
        #expect(Self.example.refusal(of: SettingsRequest(updates: ["aiImageBackend": "local"], notAfter: Date()))?.contains("has none") == true)
        let far = Self.example.signed(Self.request(notAfter: "2026-11-29T09:40:00.000Z"))
        #expect(Self.example.refusal(of: far, now: Self.before)?.contains("short time") == true)
        var unbounded = Self.request()
        unbounded.notAfter = nil
        #expect(Self.example.refusal(of: Self.example.signed(unbounded), now: Self.before)?.contains("notAfter") == true)
    }
}
