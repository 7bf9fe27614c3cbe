@testable import ApiGateway
import Foundation
import ServiceCore
import ServiceSupport
import Shared
import Testing

/// The gateway's checks of what clients send, without a server.
@Suite("Gateway input")
struct GatewayInputTests {
    func parse(_ json: String) throws -> GenerationOptions { try GenerationRequestBody.parse(Array(json.utf8)) }

    func rejection(_ json: String) -> String? {
        do {
            _ = try parse(json)
            return nil
        } catch let error as APIError {
            return error.status.code == 400 ? error.message : "status \(error.status.code)"
        } catch {
            return "\(error)"
        }
    }

    @Test func acceptsTheSeedBodyAndEmptyBodies() throws {
        let options = try parse(##"{"shadowStyle":"Dramatic","backgroundColor":"#f3f4f6","customInstructions":"keep the cap","removeWatermark":false,"upscale":4}"##)
        #expect(options.shadowStyle == .dramatic)
        #expect(options.backgroundColor?.rawValue == "#F3F4F6")
        #expect(options.customInstructions == "keep the cap")
        #expect(options.removeWatermark == false)
        #expect(options.upscale == .x4)
        #expect(try parse("") == GenerationOptions())
        #expect(try parse("  \n") == GenerationOptions())
        #expect(try parse("{}") == GenerationOptions())
        #expect(try parse(#"{"shadowStyle": null}"#) == GenerationOptions(), "null means the default")
        #expect(try parse(#"{"backgroundColor":"transparent"}"#).backgroundColor == .transparent)
        #expect(try parse(#"{"framing":"amazon"}"#).framing == .preset(.amazon))
        #expect(try parse(#"{"framing":{"aspect":"16:9","align":"bottom","maxSide":1200}}"#).framing
            == .custom(FramingSpec(aspect: .wide, align: .bottom, maxSide: 1200)))
    }

    @Test func variationsTakeAFrameForEveryCandidate() throws {
        let (prompts, framing) = try VariationController.parseBody(Array(#"{"customPrompts":["on marble"],"framing":"ebay"}"#.utf8))
        #expect(prompts == ["on marble"] && framing == .preset(.ebay))
        #expect(try VariationController.parseBody([]).framing == nil)
        do {
            _ = try VariationController.parseBody(Array(#"{"framing":{"fill":0.2}}"#.utf8))
            Issue.record("a fill of 0.2 was accepted")
        } catch let error as APIError {
            #expect(error.message == "framing.fill must be a number from 0.5 to 0.95; got 0.2")
        }
    }

    @Test func everyRejectionNamesTheField() {
        let cases: [(String, String)] = [
            (#"{"shadowStyle":"spooky"}"#, "shadowStyle"),
            (#"{"shadowStyle":3}"#, "shadowStyle"),
            (#"{"backgroundColor":"white"}"#, "backgroundColor"),
            (##"{"backgroundColor":"#FFF"}"##, "backgroundColor"),
            (#"{"removeWatermark":"yes"}"#, "removeWatermark"),
            (#"{"upscale":3}"#, "upscale"),
            (#"{"upscale":"2"}"#, "upscale"),
            (#"{"customInstructions":42}"#, "customInstructions"),
            ("{\"customInstructions\":\"\(String(repeating: "a", count: 501))\"}", "customInstructions"),
            (#"{"shadow":"soft"}"#, "shadow"),
            (#"{"framing":"square"}"#, "framing"),
            (#"{"framing":{"fill":1.2}}"#, "framing.fill"),
            (#"{"framing":{"aspect":"1:1","zoom":2}}"#, "framing.zoom"),
            (#"{"framing":{"minSide":30}}"#, "framing.minSide"),
        ]
        for (body, field) in cases {
            let message = rejection(body)
            #expect(message?.hasPrefix(field) == true, "\(body.prefix(60)) → \(message ?? "accepted")")
        }
        #expect(rejection("[1,2]")?.contains("JSON object") == true)
        #expect(rejection("{not json")?.contains("JSON object") == true)
    }

    /// A JSON number in the settings body is written as plain decimals, the only spelling the
    /// settings accept (and the OpenAPI document states): never an exponent.
    @Test func settingsNumbersAreWrittenAsPlainDecimals() throws {
        let cases: [(Double, String)] = [
            (3.5, "3.5"), (2, "2.0"), (0.00001, "0.00001"), (1.5e-7, "0.00000015"), (1e16, "10000000000000000"),
            (1.25e17, "125000000000000000"), (-0.0001, "-0.0001"), (123456.789, "123456.789"),
        ]
        for (number, text) in cases {
            #expect(SettingsController.decimalText(number) == text, "\(number)")
        }
        let parsed = try SettingsController.parse(Array(#"{"aiImageMonthlyBudget": 0.00001, "aiImageGuidance": 3.5, "aiImageMaxConcurrent": 4}"#.utf8))
        #expect(parsed == ["aiImageMonthlyBudget": "0.00001", "aiImageGuidance": "3.5", "aiImageMaxConcurrent": "4"])
        #expect((try? SettingsCatalog.normalize("aiImageMonthlyBudget", parsed["aiImageMonthlyBudget"]!).get()) == "0.00001")
        for body in [#"{"runpodApiKey": 12345}"#, #"{"aiImageBackend": true}"#, #"{"aiImageWebhookUrl": 1}"#] {
            #expect(throws: APIError.self, "\(body)") { try SettingsController.parse(Array(body.utf8)) }
        }
        #expect(try SettingsController.parse(Array(#"{"aiImageEnabled": true, "aiImageBackend": "local"}"#.utf8)).count == 2)
        for spelling in ["1e3", "0x10", "+3", "inf", "nan", ".5", "5.", "3,5", "-1", " 2.5 x"] {
            #expect((try? SettingsCatalog.normalize("aiImageMonthlyBudget", spelling).get()) == nil, "\(spelling)")
        }
    }

    /// A setting is taken exactly as the OpenAPI document spells it; anything else is refused, never
    /// read generously (a blank key would otherwise clear the stored one).
    @Test func settingsAreTakenOnlyAsTheDocumentSpellsThem() {
        let accepted: [(String, String, String)] = [
            ("aiImageEnabled", "false", "false"), ("aiImageBackend", "runpod", "runpod"), ("aiImageInferenceSteps", "20", "20"),
            ("aiImageResolution", "2048", "2048"), ("aiImageGuidance", "2.5", "2.5"), ("aiImageDefaultBackground", "#a1b2c3", "#A1B2C3"),
            ("runpodApiKey", "rpa_ABC123", "rpa_ABC123"), ("runpodApiKey", "", ""),
        ]
        for (key, raw, stored) in accepted {
            #expect((try? SettingsCatalog.normalize(key, raw).get()) == stored, "\(key) \"\(raw)\"")
        }
        let refused: [(String, String)] = [
            ("aiImageEnabled", "TRUE"), ("aiImageEnabled", " true"), ("aiImageEnabled", "1"), ("aiImageBackend", "LOCAL"),
            ("aiImageBackend", "local\n"), ("aiImageDefaultShadow", "Soft"), ("aiImageInferenceSteps", "020"),
            ("aiImageInferenceSteps", "+25"), ("aiImageInferenceSteps", " 25"), ("aiImageResolution", "01024"),
            ("aiImageGuidance", " 2.5"), ("aiImageGuidance", "2.5 "), ("runpodApiKey", "   "), ("runpodApiKey", "rpa_x\n"),
            ("aiImageWebhookUrl", " https://x.example/"),
        ]
        for (key, raw) in refused {
            #expect((try? SettingsCatalog.normalize(key, raw).get()) == nil, "\(key) \"\(raw)\" was taken")
        }
    }

    /// What older clients send and multipart-kit alone would refuse: an ISO-8859-1 file name and
    /// spaces after a boundary. The file's bytes (here every byte value, near-boundaries and a
    /// blank line included) come through unchanged.
    @Test func aLatin1FileNameAndPaddedBoundariesAreRead() throws {
        let content: [UInt8] = Array(0...255) + Array("\r\n--x y--xx\r\n\r\n".utf8) + Array(0...255).reversed()
        func body(_ fileName: [UInt8], padding: String) -> [UInt8] {
            var body = Array("preamble\r\n--xx\(padding)\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\nshoes\r\n--xx\(padding)\r\n".utf8)
            body += Array("Content-Disposition: form-data; name=\"file\"; filename=\"".utf8) + fileName + Array("\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
            return body + content + Array("\r\n--xx--\(padding)\r\n".utf8)
        }
        let latin1: [UInt8] = [0x63, 0x61, 0x66, 0xE9, 0x2E, 0x6A, 0x70, 0x67]  // "café.jpg" in ISO-8859-1
        for (name, padding) in [(latin1, ""), (Array("café.jpg".utf8), " \t "), (latin1, "  ")] {
            let form = try #require(MultipartForm(body: body(name, padding: padding), boundary: "xx"))
            #expect(form.fileName == "café.jpg")
            #expect(form.fileBytes == content)
            #expect(form.fields == ["collection": "shoes"])
        }
        let plain = body(Array("a.jpg".utf8), padding: "")
        #expect(MultipartForm.normalised(plain, boundary: "xx") == plain, "a body with neither comes back as it was")
        #expect(MultipartForm(body: Array("--xx\r\nno end".utf8), boundary: "xx") == nil)
    }
}

@Suite("Signed media links")
struct MediaURLSignerTests {
    let signer = MediaURLSigner(secret: Array("0123456789abcdef0123456789abcdef".utf8))
    let id = UUID()

    func parts(_ path: String) -> (expires: String, signature: String) {
        let query = URLComponents(string: "http://x" + path)?.queryItems ?? []
        return (query.first { $0.name == "expires" }?.value ?? "", query.first { $0.name == "signature" }?.value ?? "")
    }

    @Test func aLinkWorksUntilItExpiresAndOnlyForItsMedia() {
        let now = Date()
        let path = signer.signedPath(mediaId: id, expires: now.addingTimeInterval(60))
        #expect(path.hasPrefix("/media/\(id.uuidString.lowercased())/file?expires="))
        let (expires, signature) = parts(path)
        #expect(signer.isValid(mediaId: id, expires: expires, signature: signature, now: now))
        #expect(!signer.isValid(mediaId: id, expires: expires, signature: signature, now: now.addingTimeInterval(61)), "expired")
        #expect(!signer.isValid(mediaId: UUID(), expires: expires, signature: signature, now: now), "another media")
        #expect(!signer.isValid(mediaId: id, expires: String((Int(expires) ?? 0) + 3600), signature: signature, now: now), "a longer life")
        let flipped = String(signature.dropLast()) + (signature.hasSuffix("0") ? "1" : "0")
        #expect(!signer.isValid(mediaId: id, expires: expires, signature: flipped, now: now), "a tampered signature")
        #expect(!signer.isValid(mediaId: id, expires: expires, signature: "", now: now))
        let other = MediaURLSigner(secret: Array("another-secret-another-secret-xx".utf8))
        #expect(!other.isValid(mediaId: id, expires: expires, signature: signature, now: now), "another secret")
    }

    /// However well signed, a link lives at most 7 days (MEDIA_URL_TTL_SECONDS' ceiling).
    @Test func aLinkThatClaimsToLiveLongerThanSevenDaysIsRefused() {
        let now = Date()
        let week = signer.signedPath(mediaId: id, expires: now.addingTimeInterval(MediaURLSigner.longestLifetime))
        let (weekExpires, weekSignature) = parts(week)
        #expect(signer.isValid(mediaId: id, expires: weekExpires, signature: weekSignature, now: now))
        let year = signer.signedPath(mediaId: id, expires: now.addingTimeInterval(365 * 86_400))
        let (yearExpires, yearSignature) = parts(year)
        #expect(!signer.isValid(mediaId: id, expires: yearExpires, signature: yearSignature, now: now))
        // It works once it is within a week of expiring.
        #expect(signer.isValid(mediaId: id, expires: yearExpires, signature: yearSignature, now: now.addingTimeInterval(360 * 86_400)))
    }

    @Test func theSecretComesFromTheEnvironmentOrAFileAndMustBeLong() throws {
        #expect(throws: ConfigurationError.self) { _ = try MediaURLSigner.fromEnvironment(EnvironmentVariables(["MEDIA_URL_SECRET": "short"])) }
        #expect(throws: ConfigurationError.self) {
            _ = try MediaURLSigner.fromEnvironment(EnvironmentVariables(["MEDIA_URL_SECRET_FILE": "/nonexistent/secret"]))
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try "0123456789abcdef0123456789abcdef\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try MediaURLSigner.fromEnvironment(EnvironmentVariables(["MEDIA_URL_SECRET_FILE": file.path]))
        let (expires, signature) = parts(signer.signedPath(mediaId: id, expires: Date().addingTimeInterval(60)))
        #expect(fromFile.isValid(mediaId: id, expires: expires, signature: signature), "the same secret signs the same")
    }
}

/// The master key is read as every secret is: `CYCLORAMA_MASTER_KEY` or its `_FILE`, base64 of 32 bytes.
@Suite("Master key")
struct MasterKeyTests {
    @Test func theKeyComesFromTheEnvironmentOrAFileAndMustBe32Bytes() throws {
        let key = Data((0..<32).map { UInt8($0 * 7 & 0xFF) }).base64EncodedString()
        let fromValue = try SecretBox.fromEnvironment(EnvironmentVariables(["CYCLORAMA_MASTER_KEY": key]))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("master-\(UUID().uuidString)")
        try "\(key)\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try SecretBox.fromEnvironment(EnvironmentVariables(["CYCLORAMA_MASTER_KEY_FILE": file.path]))
        let sealed = try fromValue.seal("rpa_secret", for: "runpodApiKey")
        #expect(try fromFile.open(sealed, for: "runpodApiKey") == "rpa_secret", "the same key either way")

        let short = Data(repeating: 1, count: 16).base64EncodedString()
        for bad in [short, String(repeating: "!", count: 44), Data(repeating: 1, count: 40).base64EncodedString()] {
            #expect(throws: ConfigurationError.self, "\(bad)") { _ = try SecretBox.fromEnvironment(EnvironmentVariables(["CYCLORAMA_MASTER_KEY": bad])) }
        }
        #expect(throws: ConfigurationError.self) {
            _ = try SecretBox.fromEnvironment(EnvironmentVariables(["CYCLORAMA_MASTER_KEY_FILE": "/nonexistent/master-key"]))
        }
    }

    /// Header parameters as RFC 9110 and RFC 8187 write them: a quoted string may hold `;` and
    /// escaped quotes, and `filename*` (UTF-8 or ISO-8859-1, percent-encoded) wins over `filename`.
    @Test func headerParametersAreReadAsTheRFCsWriteThem() {
        let both = HeaderParameters(#"attachment; filename="fallback.jpg"; FILENAME*=UTF-8''na%C3%AFve%20shoe%3B1.jpg"#)
        #expect(both["filename"] == "naïve shoe;1.jpg", "the extended form wins, whatever the case of its name")
        let quoted = HeaderParameters(#"form-data; name="file"; filename="red; \"sale\".jpg"; size=10"#)
        #expect(quoted["filename"] == #"red; "sale".jpg"#)
        #expect(quoted["name"] == "file" && quoted["size"] == "10")
        #expect(HeaderParameters("attachment; filename*=iso-8859-1'fr'caf%E9.jpg")["filename"] == "café.jpg")
        #expect(HeaderParameters("attachment; filename=plain.jpg; filename*=UTF-8''%ZZ")["filename"] == "plain.jpg", "a broken extended value is ignored")
        #expect(HeaderParameters("attachment; filename*=KOI8-R''%C1")["filename"] == nil, "an unknown charset is not guessed")
        #expect(HeaderParameters("multipart/form-data; boundary=----x=y")["boundary"] == "----x=y")
        #expect(HeaderParameters("attachment")["filename"] == nil)
        #expect(HeaderParameters("attachment; filename=a.jpg; filename=b.jpg")["filename"] == "a.jpg", "the first counts")
        #expect(MultipartForm.boundary(fromContentType: #"multipart/form-data; charset=utf-8; boundary="a;b""#) == "a;b")
        #expect(HeaderParameters("attachment; filename=plain.jpg; filename*=UTF-8''%+A")["filename"] == "plain.jpg", "only hex digits after %")
        #expect(HeaderParameters("attachment; filename=plain.jpg; filename*=UTF-8''")["filename"] == "plain.jpg", "an empty extended value")
        // A part whose only name cannot be read is still the file part.
        let body = Array("--xx\r\nContent-Disposition: form-data; name=\"file\"; filename*=KOI8-R''%C1\r\n\r\nbytes\r\n--xx--\r\n".utf8)
        let form = MultipartForm(body: body, boundary: "xx")
        #expect(form?.fileBytes == Array("bytes".utf8) && form?.fileName == nil && form?.fields.isEmpty == true)
    }
}
