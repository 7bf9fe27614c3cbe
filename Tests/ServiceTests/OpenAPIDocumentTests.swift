import Foundation
@testable import ApiGateway
import Shared
import Testing

/// The OpenAPI document states what the server enforces, so a generated client or a fuzzer that
/// takes it literally is not surprised (issue 19): checked against the code's own constants and
/// functions, so neither can change without the other.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    typealias Object = [String: Any]

    static func document() throws -> Object {
        let bytes = try #require(OpenAPIRoute.bytes)
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? Object)
    }

    /// Every operation: (path, method, operation).
    static func operations(_ document: Object) -> [(String, String, Object)] {
        let paths = document["paths"] as? [String: Object] ?? [:]
        return paths.sorted { $0.key < $1.key }.flatMap { path, item in
            item.compactMap { method, value in
                ["get", "post", "put", "delete", "patch"].contains(method) ? (path, method, value as? Object ?? [:]) : nil
            }
        }
    }

    /// Resolves a local `$ref` (`#/components/...`).
    static func resolve(_ value: Any?, in document: Object) -> Object? {
        guard let object = value as? Object else { return nil }
        guard let ref = object["$ref"] as? String else { return object }
        var node: Any? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = (node as? Object)?[String(part)] }
        return node as? Object
    }

    @Test func everyOperationDeclaresTheAnswersEveryRouteCanGive() throws {
        let document = try Self.document()
        #expect(Self.operations(document).count >= 25, "the document's operations were read")
        for (path, method, operation) in Self.operations(document) {
            let responses = operation["responses"] as? Object ?? [:]
            let name = "\(method.uppercased()) \(path)"
            if operation["requestBody"] != nil {
                #expect(responses["413"] != nil, "\(name) reads a body, which past its limit is 413")
            }
            guard path.hasPrefix("/api/"), path != "/api/openapi.json" else { continue }
            #expect(responses["429"] != nil, "\(name): rate-limited")
            #expect(responses["503"] != nil, "\(name): answers 503 while the database is away")
            guard method == "post", !path.hasPrefix("/api/ai-image/webhook") else { continue }
            // IdempotencyMiddleware runs on every POST under /api.
            let parameters = (operation["parameters"] as? [Any] ?? []).compactMap { Self.resolve($0, in: document) }
            #expect(parameters.contains { $0["name"] as? String == "Idempotency-Key" }, "\(name) takes Idempotency-Key")
            #expect(responses["409"] != nil, "\(name): a reused or running Idempotency-Key is 409")
            for (code, response) in responses where code.hasPrefix("2") {
                let headers = Self.resolve(response, in: document)?["headers"] as? Object ?? [:]
                #expect(headers["Idempotent-Replayed"] != nil, "\(name) \(code) may be a replay")
            }
        }
    }

    @Test func theCollectionPatternIsTheOneTheServerApplies() throws {
        let document = try Self.document()
        let upload = try #require((document["paths"] as? [String: Object])?["/api/media"]?["post"] as? Object)
        let parameter = try #require((upload["parameters"] as? [Object])?.first { $0["name"] as? String == "collection" })
        let schema = try #require(parameter["schema"] as? Object)
        let pattern = try #require(schema["pattern"] as? String)
        let multipart = (((upload["requestBody"] as? Object)?["content"] as? Object)?["multipart/form-data"] as? Object)?["schema"] as? Object
        #expect(((multipart?["properties"] as? Object)?["collection"] as? Object)?["pattern"] as? String == pattern)
        let regex = try NSRegularExpression(pattern: pattern)
        for sample in ["PRODUCTS", "banners", "A_1", String(repeating: "x", count: 32), String(repeating: "x", count: 33),
                       "with space", "dash-ed", "ümlaut", "a.b", "", "__", "0"] {
            let documented = regex.firstMatch(in: sample, range: NSRange(sample.startIndex..., in: sample)) != nil
            let served = (try? MediaController.givenCollection(sample)) != nil
            #expect(documented == served, "\"\(sample)\": document \(documented), server \(served)")
        }
    }

    @Test func aBatchHoldsAtMostWhatTheServerTakes() throws {
        let document = try Self.document()
        let batch = try #require(Self.resolve(["$ref": "#/components/schemas/BatchRequest"], in: document))
        let ids = try #require((batch["properties"] as? Object)?["mediaIds"] as? Object)
        #expect(ids["maxItems"] as? Int == BatchController.maxItems)
        #expect(ids["minItems"] as? Int == 1)
    }

    /// Each id an operation creates links to the operations that take it, by names they declare.
    @Test func linksLeadFromWhatCreatesAnIdToWhatTakesIt() throws {
        let document = try Self.document()
        let byId = Dictionary(uniqueKeysWithValues: Self.operations(document).compactMap { path, _, operation in
            (operation["operationId"] as? String).map { ($0, (path, operation)) }
        })
        var seen = 0
        for (path, method, operation) in Self.operations(document) {
            for (code, response) in operation["responses"] as? Object ?? [:] {
                for (name, value) in (Self.resolve(response, in: document)?["links"] as? Object) ?? [:] {
                    seen += 1
                    let link = try #require(value as? Object)
                    let target = try #require(byId[link["operationId"] as? String ?? ""], "\(method) \(path) \(code) \(name)")
                    let pathLevel = ((document["paths"] as? [String: Object])?[target.0]?["parameters"] as? [Any]) ?? []
                    let declared = Set((((target.1["parameters"] as? [Any]) ?? []) + pathLevel).compactMap {
                        Self.resolve($0, in: document)?["name"] as? String
                    })
                    for parameter in (link["parameters"] as? Object ?? [:]).keys {
                        #expect(declared.contains(parameter), "\(name): \(target.0) has no parameter \(parameter)")
                    }
                }
            }
        }
        for creator in ["uploadMedia", "generate", "createBatch", "createVariations"] {
            let operation = try #require(byId[creator]?.1)
            let links = (operation["responses"] as? Object ?? [:]).values.compactMap { ($0 as? Object)?["links"] as? Object }
            #expect(!links.isEmpty, "\(creator) links to what takes its id")
        }
        #expect(seen >= 10)
    }

    /// `PUT /api/ai-image/settings` names every setting and its rule, as the settings-service
    /// checks it, and no other key.
    @Test func theSettingsBodyIsTheCatalog() throws {
        let document = try Self.document()
        let put = try #require((document["paths"] as? [String: Object])?["/api/ai-image/settings"]?["put"] as? Object)
        let schema = try #require(((((put["requestBody"] as? Object)?["content"] as? Object)?["application/json"] as? Object)?["schema"]) as? Object)
        #expect(schema["additionalProperties"] as? Bool == false)
        let properties = try #require(schema["properties"] as? [String: Object])
        #expect(Set(properties.keys) == Set(SettingsCatalog.rules.keys))
        func forms(_ property: Object) -> [Object] { (property["oneOf"] as? [Object]) ?? [property] }
        func form(_ property: Object, _ type: String) -> Object? { forms(property).first { $0["type"] as? String == type } }
        for (key, rule) in SettingsCatalog.rules {
            let property = try #require(properties[key], "\(key)")
            switch rule {
            case .boolean:
                #expect(form(property, "boolean") != nil && form(property, "string")?["enum"] as? [String] == ["true", "false"], "\(key)")
            case .oneOf(let choices):
                #expect(form(property, "string")?["enum"] as? [String] == choices, "\(key)")
            case .integer(let range):
                let number = form(property, "integer")
                #expect(number?["minimum"] as? Int == range.lowerBound && number?["maximum"] as? Int == range.upperBound, "\(key)")
                #expect(form(property, "string")?["enum"] as? [String] == range.map(String.init), "\(key)")
            case .integerIn(let choices):
                #expect(form(property, "integer")?["enum"] as? [Int] == choices, "\(key)")
                #expect(form(property, "string")?["enum"] as? [String] == choices.map(String.init), "\(key)")
            case .decimal(let range):
                let number = form(property, "number")
                #expect(number?["minimum"] as? Double == range.lowerBound && number?["maximum"] as? Double == range.upperBound, "\(key)")
                // The string form's pattern states the range too: it matches exactly what the server takes.
                let text = try #require(form(property, "string"), "\(key)")
                let regex = try NSRegularExpression(pattern: try #require(text["pattern"] as? String))
                let (low, high) = (range.lowerBound, range.upperBound)
                let edges = [low, high, low + 0.5, high - 0.25, low - 0.5, high + 0.01, (low + high) / 2].map { SettingsController.decimalText($0) }
                let samples = edges + ["\(Int(high))", "\(Int(high)).000", "\(Int(high) + 1)", "0\(Int(high))", "1e2", "+3", "", "abc", "3.", ".5", "0x2"]
                for sample in samples {
                    let documented = regex.firstMatch(in: sample, range: NSRange(sample.startIndex..., in: sample)) != nil
                    let served = (try? SettingsCatalog.normalize(key, sample).get()) != nil
                    #expect(documented == served, "\(key) \"\(sample)\": document \(documented), server \(served)")
                }
            case .hexColor, .optionalURL, .secret:
                let text = try #require(form(property, "string"), "\(key)")
                let regex = try NSRegularExpression(pattern: try #require(text["pattern"] as? String))
                let samples: [String] = switch rule {
                case .hexColor: ["#FFFFFF", "#a1b2c3", "#FFF", "white", "#GGGGGG", "transparent"]
                case .optionalURL:
                    [
                        "", "https://shop.example.com/hook", "http://x.example", "ftp://x", "not a url", "HtTpS://\u{23A}6_",
                        "http://[::1]/", "http://user@x.example/", "https://shop.example.com:8443/h?x=[1]#y", "http://x.example/a b",
                        "http://x.example:123456/", "http://x.example/é", "http://user:p%40ss@x.example:8080/h", "https://[2001:db8::1]:8443/h",
                        "http://[::1", "http://[x]/", "http://@x.example/", "http://a b@x.example/",
                    ]
                default: ["rpa_ABC123", "", "with space", "tab\there", "ü", "rpa_…7Q2Z", "rpa_…", "rpa_…12345", "   ",
                          "whsec_…7Q2Z", "whsec_…", "whsec_…12345", "whsec_abc"]
                }
                for sample in samples {
                    let documented = regex.firstMatch(in: sample, range: NSRange(sample.startIndex..., in: sample)) != nil
                    // A secret's masked value, read back, means "unchanged": the server takes it too.
                    let served = (try? SettingsCatalog.normalize(key, sample).get()) != nil
                        || (rule == .secret && SecretSettings.isMasked(sample, key: key))
                    #expect(documented == served, "\(key) \"\(sample)\": document \(documented), server \(served)")
                }
            }
        }
    }

    /// A media item's new name: the document's pattern and length take exactly what the server does.
    /// A custom prompt needs a character that is not white space: the document's class is exactly
    /// Unicode's White_Space, which the server trims (ECMAScript's `\S` differs: U+0085, U+FEFF).
    @Test func aPromptsWhiteSpaceIsTheServersWhiteSpace() throws {
        let document = try Self.document()
        var node: Any? = document
        for key in ["paths", "/api/ai-image/variations/{mediaId}", "post", "requestBody", "content", "application/json", "schema",
                    "properties", "customPrompts", "items", "pattern"] {
            node = (node as? Object)?[key]
        }
        let pattern = try #require(node as? String)
        // \s and \S mean different sets in ECMAScript (the document's dialect), Python and ICU.
        #expect(!pattern.contains("\\s") && !pattern.contains("\\S"), "a shorthand class: \(pattern)")
        let regex = try NSRegularExpression(pattern: "^" + pattern + "$")
        var disagreements: [String] = []
        for value in 0...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = String(scalar)
            let matched = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            if matched == scalar.properties.isWhitespace { disagreements.append(String(format: "U+%04X", value)) }
        }
        #expect(disagreements.isEmpty, "the pattern and White_Space disagree on \(disagreements.prefix(10))")
    }

    @Test func theNameRuleIsTheOneTheServerApplies() throws {
        let document = try Self.document()
        let patch = try #require((document["paths"] as? [String: Object])?["/api/media/{id}"]?["patch"] as? Object)
        let body = try #require(((((patch["requestBody"] as? Object)?["content"] as? Object)?["application/json"] as? Object)?["schema"]) as? Object)
        #expect(body["additionalProperties"] as? Bool == false && body["required"] as? [String] == ["originalName"])
        let name = try #require((body["properties"] as? [String: Object])?["originalName"])
        let regex = try NSRegularExpression(pattern: try #require(name["pattern"] as? String))
        let maxLength = try #require(name["maxLength"] as? Int)
        let samples = [
            "sneaker.jpg", "Red sneaker, side view", " padded ", "été.png", "a", "", "   ", "a/b", "a\\b", "tab\there", "nul\u{0}",
            "c1\u{85}", "newline at the end\n", "soft\u{AD}hyphen", "\u{2028}", String(repeating: "x", count: 255), String(repeating: "x", count: 256), "😀",
        ]
        for sample in samples {
            // ECMA-262's `$` is the end of the input; ICU's would also match before a final line
            // terminator (U+0085 included), so the match must cover the whole sample.
            let whole = NSRange(sample.startIndex..., in: sample)
            let documented = sample.unicodeScalars.count <= maxLength && sample.unicodeScalars.count >= 1
                && regex.firstMatch(in: sample, range: whole)?.range == whole
            let served = MediaController.displayName(sample) != nil
            #expect(documented == served, "\"\(sample.prefix(20))\": document \(documented), server \(served)")
        }
    }

    /// Where a limit applies, its answers say so (`RateLimit-*`): every answer of the webhook route,
    /// and every 401 and 429 (the failed-token limit).
    @Test func limitedAnswersDeclareTheirRateLimitHeaders() throws {
        let document = try Self.document()
        #expect(Self.operations(document).contains { $0.0.hasPrefix("/api/ai-image/webhook") }, "the webhook route was read")
        for (path, _, operation) in Self.operations(document) {
            for (code, response) in operation["responses"] as? Object ?? [:]
            where path.hasPrefix("/api/ai-image/webhook") || code == "401" || code == "429" {
                let headers = Self.resolve(response, in: document)?["headers"] as? Object ?? [:]
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    #expect(headers[name] != nil, "\(path) \(code) lacks \(name)")
                }
            }
        }
    }
}
