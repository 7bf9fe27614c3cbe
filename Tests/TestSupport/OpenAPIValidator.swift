import Foundation

/// A problem with the document itself or with the question asked of it: the path, method, status or
/// content type is not described, a `$ref` does not resolve, a schema is not a JSON object.
///
/// A response the document does not describe is such an error, so a test that validates it fails.
public struct OpenAPIValidationError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// An OpenAPI 3.0 document, for checking real responses against the schemas it gives them.
///
/// Supports the JSON-schema subset the gateway's document uses: `$ref` (to `#/components/...`),
/// `type`, `nullable`, `required`, `properties`, `additionalProperties`, `items`, `enum`,
/// `format` (`uuid`, `date-time`), `oneOf`, `anyOf`, `allOf`, `minimum`/`maximum` (with the 3.0
/// boolean `exclusiveMinimum`/`exclusiveMaximum`), `minLength`/`maxLength`, `pattern`,
/// `minItems`/`maxItems`. Other keywords (`description`, `example`, `default`, ...) are ignored.
public struct OpenAPIDocument: Sendable {
    let root: OpenAPIValue

    /// The HTTP methods an OpenAPI path item may hold, in the order ``operations()`` lists them.
    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    public init(data: Data) throws {
        let value: OpenAPIValue
        do {
            value = try JSONDecoder().decode(OpenAPIValue.self, from: data)
        } catch {
            throw OpenAPIValidationError("the OpenAPI document is not JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw OpenAPIValidationError("the OpenAPI document is not a JSON object")
        }
        guard case .object = members["paths"] else {
            throw OpenAPIValidationError("the OpenAPI document has no `paths` object")
        }
        root = value
    }

    /// The gateway's document, `Services/api-gateway/Resources/openapi.json` in this repository.
    public static func gateway() throws -> OpenAPIDocument {
        try OpenAPIDocument(data: Data(contentsOf: gatewayDocumentURL))
    }

    /// Where the gateway's document lives (this file is in Tests/TestSupport/).
    public static let gatewayDocumentURL: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Services/api-gateway/Resources/openapi.json")

    /// Every operation of the document, by path then method.
    public func operations() -> [(path: String, method: String)] {
        guard case .object(let paths) = root["paths"] else { return [] }
        var result: [(path: String, method: String)] = []
        for path in paths.keys.sorted() {
            guard case .object(let item) = paths[path] else { continue }
            for method in Self.methods where item[method] != nil {
                result.append((path: path, method: method))
            }
        }
        return result
    }

    /// Checks a JSON response body against the schema the document gives that response.
    ///
    /// - Parameters:
    ///   - path: the path template as the document spells it, e.g. `/api/ai-image/status/{jobId}`.
    ///   - method: lower-case, e.g. `get`.
    ///   - status: the HTTP status; the response is `responses["<status>"]`, else `"<N>XX"`, else `default`.
    /// - Returns: the violations, each naming its JSON path (`$.media.width: expected integer, got string`);
    ///   empty when the body conforms.
    /// - Throws: ``OpenAPIValidationError`` when the document does not describe that response with
    ///   `application/json` content, or the document itself is broken.
    public func validate(responseBody: Data, path: String, method: String, status: Int) throws -> [String] {
        let operationName = "\(method.uppercased()) \(path)"
        guard case .object(let paths) = root["paths"], let item = paths[path] else {
            throw OpenAPIValidationError("the document has no path \(path)")
        }
        let pathItem = try resolve(item, where: "paths[\(path)]")
        guard let operation = pathItem[method.lowercased()] else {
            throw OpenAPIValidationError("the document has no operation \(operationName)")
        }
        guard case .object(let responses) = operation["responses"] else {
            throw OpenAPIValidationError("\(operationName) has no responses")
        }
        let statusKey = String(status)
        let rangeKey = "\(status / 100)XX"
        guard let described = responses[statusKey] ?? responses[rangeKey] ?? responses["default"] else {
            throw OpenAPIValidationError(
                "\(operationName) does not describe status \(status) (it describes \(responses.keys.sorted().joined(separator: ", ")))")
        }
        let response = try resolve(described, where: "\(operationName) \(statusKey)")
        guard case .object(let content) = response["content"] else {
            throw OpenAPIValidationError("\(operationName) \(status) has no content in the document")
        }
        guard let mediaType = content["application/json"] else {
            throw OpenAPIValidationError(
                "\(operationName) \(status) has no application/json content (it has \(content.keys.sorted().joined(separator: ", ")))")
        }
        guard let schema = mediaType["schema"] else {
            throw OpenAPIValidationError("\(operationName) \(status) application/json has no schema")
        }
        return try validate(body: responseBody, against: schema)
    }

    /// Checks a JSON value against `#/components/schemas/<name>`, e.g. one `data:` line of an event
    /// stream against `JobEvent`.
    public func validate(json: Data, againstSchema name: String) throws -> [String] {
        guard case .object(let schemas) = root["components"]?["schemas"], let schema = schemas[name] else {
            throw OpenAPIValidationError("the document has no schema #/components/schemas/\(name)")
        }
        return try validate(body: json, against: schema)
    }

    // MARK: Validation

    private func validate(body: Data, against schema: OpenAPIValue) throws -> [String] {
        let value: OpenAPIValue
        do {
            value = try JSONDecoder().decode(OpenAPIValue.self, from: body)
        } catch {
            let preview = String(decoding: body.prefix(200), as: UTF8.self)
            return ["$: the body is not JSON (\(preview.debugDescription))"]
        }
        var violations: [String] = []
        try check(value, against: schema, at: "$", depth: 0, into: &violations)
        return violations
    }

    /// Follows `$ref` chains (`#/...` JSON pointers into this document) to the object they name.
    private func resolve(_ node: OpenAPIValue, where place: String) throws -> OpenAPIValue {
        var current = node
        var seen: Set<String> = []
        while case .string(let reference) = current["$ref"] {
            guard seen.insert(reference).inserted else {
                throw OpenAPIValidationError("\(place): $ref cycle through \(reference)")
            }
            current = try pointer(reference, from: place)
        }
        guard case .object = current else {
            throw OpenAPIValidationError("\(place): expected a JSON object in the document")
        }
        return current
    }

    private func pointer(_ reference: String, from place: String) throws -> OpenAPIValue {
        guard reference.hasPrefix("#/") else {
            throw OpenAPIValidationError("\(place): only local references are supported, not \(reference)")
        }
        var node = root
        for rawPart in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let part = String(rawPart).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = node[part] else {
                throw OpenAPIValidationError("\(place): $ref \(reference) does not resolve")
            }
            node = next
        }
        return node
    }

    private func check(
        _ value: OpenAPIValue, against rawSchema: OpenAPIValue, at path: String, depth: Int, into violations: inout [String]
    ) throws {
        guard depth < 64 else { throw OpenAPIValidationError("\(path): schemas nest deeper than 64 levels (a $ref loop?)") }
        let schema = try resolve(rawSchema, where: "schema at \(path)")

        // `nullable` (OpenAPI 3.0): null is allowed only when it is true.
        if value == .null, schema["nullable"] == .bool(true) { return }

        if case .string(let type) = schema["type"] {
            guard Self.matches(value, type: type) else {
                violations.append("\(path): expected \(type), got \(value.typeName)")
                return
            }
        }

        if case .array(let allowed) = schema["enum"], !allowed.contains(value) {
            let list = allowed.map(\.rendered).joined(separator: ", ")
            violations.append("\(path): \(value.rendered) is not one of [\(list)]")
        }

        switch value {
        case .string(let string): checkString(string, schema: schema, at: path, into: &violations)
        case .number(let number): checkNumber(number, schema: schema, at: path, into: &violations)
        case .array(let elements):
            try checkArray(elements, schema: schema, at: path, depth: depth, into: &violations)
        case .object(let members):
            try checkObject(members, schema: schema, at: path, depth: depth, into: &violations)
        case .null, .bool: break
        }

        if case .array(let all) = schema["allOf"] {
            for subschema in all {
                try check(value, against: subschema, at: path, depth: depth + 1, into: &violations)
            }
        }
        if case .array(let any) = schema["anyOf"] {
            let failures = try any.map { try trial(value, against: $0, at: path, depth: depth + 1) }
            if !failures.contains(where: \.isEmpty) {
                violations.append("\(path): matches none of the anyOf schemas (\(Self.summary(failures)))")
            }
        }
        if case .array(let one) = schema["oneOf"] {
            let failures = try one.map { try trial(value, against: $0, at: path, depth: depth + 1) }
            let matching = failures.filter(\.isEmpty).count
            if matching == 0 {
                violations.append("\(path): matches none of the \(one.count) oneOf schemas (\(Self.summary(failures)))")
            } else if matching > 1 {
                violations.append("\(path): matches \(matching) of the oneOf schemas; exactly one must match")
            }
        }
    }

    /// The violations `value` would have against `schema`, without recording them.
    private func trial(_ value: OpenAPIValue, against schema: OpenAPIValue, at path: String, depth: Int) throws -> [String] {
        var found: [String] = []
        try check(value, against: schema, at: path, depth: depth, into: &found)
        return found
    }

    private static func summary(_ failures: [[String]]) -> String {
        failures.enumerated().map { "#\($0.offset + 1): \($0.element.joined(separator: "; "))" }.joined(separator: " | ")
    }

    private static func matches(_ value: OpenAPIValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("number", .number): true
        case ("integer", .number(let number)): number.isFinite && number.rounded(.towardZero) == number
        default: false
        }
    }

    private func checkString(_ string: String, schema: OpenAPIValue, at path: String, into violations: inout [String]) {
        let length = string.unicodeScalars.count
        if let minimum = schema["minLength"]?.numberValue, Double(length) < minimum {
            violations.append("\(path): length \(length) is below minLength \(Self.format(minimum))")
        }
        if let maximum = schema["maxLength"]?.numberValue, Double(length) > maximum {
            violations.append("\(path): length \(length) is above maxLength \(Self.format(maximum))")
        }
        if case .string(let pattern) = schema["pattern"] {
            if let expression = try? NSRegularExpression(pattern: pattern) {
                let range = NSRange(string.startIndex..<string.endIndex, in: string)
                if expression.firstMatch(in: string, options: [], range: range) == nil {
                    violations.append("\(path): \(string.debugDescription) does not match pattern \(pattern)")
                }
            } else {
                violations.append("\(path): the document's pattern \(pattern) is not a valid regular expression")
            }
        }
        if case .string(let format) = schema["format"] {
            switch format {
            case "uuid" where !Self.isUUID(string):
                violations.append("\(path): \(string.debugDescription) is not a uuid")
            case "date-time" where !Self.isDateTime(string):
                violations.append("\(path): \(string.debugDescription) is not an RFC 3339 date-time")
            default: break
            }
        }
    }

    private func checkNumber(_ number: Double, schema: OpenAPIValue, at path: String, into violations: inout [String]) {
        if let minimum = schema["minimum"]?.numberValue {
            let exclusive = schema["exclusiveMinimum"] == .bool(true)
            if exclusive ? number <= minimum : number < minimum {
                violations.append("\(path): \(Self.format(number)) is below the \(exclusive ? "exclusive " : "")minimum \(Self.format(minimum))")
            }
        }
        if let maximum = schema["maximum"]?.numberValue {
            let exclusive = schema["exclusiveMaximum"] == .bool(true)
            if exclusive ? number >= maximum : number > maximum {
                violations.append("\(path): \(Self.format(number)) is above the \(exclusive ? "exclusive " : "")maximum \(Self.format(maximum))")
            }
        }
    }

    private func checkArray(
        _ elements: [OpenAPIValue], schema: OpenAPIValue, at path: String, depth: Int, into violations: inout [String]
    ) throws {
        if let minimum = schema["minItems"]?.numberValue, Double(elements.count) < minimum {
            violations.append("\(path): \(elements.count) items, fewer than minItems \(Self.format(minimum))")
        }
        if let maximum = schema["maxItems"]?.numberValue, Double(elements.count) > maximum {
            violations.append("\(path): \(elements.count) items, more than maxItems \(Self.format(maximum))")
        }
        if let items = schema["items"] {
            for (index, element) in elements.enumerated() {
                try check(element, against: items, at: "\(path)[\(index)]", depth: depth + 1, into: &violations)
            }
        }
    }

    private func checkObject(
        _ members: [String: OpenAPIValue], schema: OpenAPIValue, at path: String, depth: Int, into violations: inout [String]
    ) throws {
        if case .array(let required) = schema["required"] {
            for case .string(let name) in required where members[name] == nil {
                violations.append("\(Self.member(path, name)): required property missing")
            }
        }
        var properties: [String: OpenAPIValue] = [:]
        if case .object(let declared) = schema["properties"] { properties = declared }
        for name in members.keys.sorted() {
            guard let member = members[name] else { continue }
            let memberPath = Self.member(path, name)
            if let propertySchema = properties[name] {
                try check(member, against: propertySchema, at: memberPath, depth: depth + 1, into: &violations)
                continue
            }
            switch schema["additionalProperties"] {
            case .bool(false)?:
                violations.append("\(memberPath): unexpected property (additionalProperties is false)")
            case .object(let extra)?:
                try check(member, against: .object(extra), at: memberPath, depth: depth + 1, into: &violations)
            default:
                break  // absent or true: anything goes
            }
        }
    }

    // MARK: Formats and paths

    /// `$.media.width`, or `$["content-type"]` for names that are not plain identifiers.
    private static func member(_ path: String, _ name: String) -> String {
        let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "_")
        }
        return plain ? "\(path).\(name)" : "\(path)[\(name.debugDescription)]"
    }

    /// 8-4-4-4-12 hexadecimal digits, either case.
    static func isUUID(_ string: String) -> Bool {
        let groups = string.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// RFC 3339 `date-time`: `YYYY-MM-DDThh:mm:ss`, optional fraction, then `Z` or `±hh:mm`.
    static func isDateTime(_ string: String) -> Bool {
        let scalars = Array(string.unicodeScalars)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= scalars.count else { return nil }
            var value = 0
            for scalar in scalars[start..<(start + count)] {
                guard ("0"..."9").contains(scalar) else { return nil }
                value = value * 10 + Int(scalar.value - 48)
            }
            return value
        }
        func char(_ index: Int, _ allowed: String) -> Bool {
            index < scalars.count && allowed.unicodeScalars.contains(scalars[index])
        }
        guard digits(0, 4) != nil, char(4, "-"), let month = digits(5, 2), char(7, "-"), let day = digits(8, 2),
            char(10, "Tt"), let hour = digits(11, 2), char(13, ":"), let minute = digits(14, 2), char(16, ":"),
            let second = digits(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return false }
        var index = 19
        if char(index, ".") {
            index += 1
            let start = index
            while digits(index, 1) != nil { index += 1 }
            guard index > start else { return false }
        }
        if char(index, "Zz") { return index + 1 == scalars.count }
        guard char(index, "+-"), let offsetHour = digits(index + 1, 2), char(index + 3, ":"),
            let offsetMinute = digits(index + 4, 2), offsetHour < 24, offsetMinute < 60
        else { return false }
        return index + 6 == scalars.count
    }

    private static func format(_ number: Double) -> String {
        if number.isFinite, number.rounded(.towardZero) == number, abs(number) < 1e15 { return String(Int64(number)) }
        return String(number)
    }
}

/// Any JSON value. Numbers are kept as `Double`; `integer` means a number without a fractional part,
/// as in JSON Schema.
enum OpenAPIValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([OpenAPIValue])
    case object([String: OpenAPIValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([OpenAPIValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: OpenAPIValue].self))
        }
    }

    subscript(key: String) -> OpenAPIValue? {
        switch self {
        case .object(let members): members[key]
        case .array(let elements): Int(key).flatMap { elements.indices.contains($0) ? elements[$0] : nil }
        default: nil
        }
    }

    var numberValue: Double? {
        if case .number(let value) = self { value } else { nil }
    }

    /// The JSON-schema type name of this value, for messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let value): value.isFinite && value.rounded(.towardZero) == value ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// A short JSON-ish rendering, for messages.
    var rendered: String {
        switch self {
        case .null: "null"
        case .bool(let value): String(value)
        case .number(let value):
            value.isFinite && value.rounded(.towardZero) == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .string(let value): value.debugDescription
        case .array(let elements): "[" + elements.map(\.rendered).joined(separator: ", ") + "]"
        case .object: "{...}"
        }
    }
}
