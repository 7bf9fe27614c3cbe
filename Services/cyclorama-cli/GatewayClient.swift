import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The public HTTP API of a Cyclorama gateway (docs/api.md), as the command line uses it.
struct GatewayClient: Sendable {
    let base: String
    let token: String
    let http: HTTPClient

    /// An answer that is not what was asked for: the API's `{"error": {code, message}}` or a
    /// transport failure, said in one line.
    struct Failure: Error, CustomStringConvertible {
        var status: Int?
        var code: String
        var message: String
        var description: String { status.map { "\($0) \(code): \(message)" } ?? "\(code): \(message)" }
    }

    typealias Object = [String: Any]

    func request(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json",
        headers extra: [(String, String)] = [], timeout: TimeAmount = .seconds(60)
    ) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw Failure(code: "unreachable", message: "\(base) did not answer: \(error)")
        }
        let collected = try await response.body.collect(upTo: 256 * 1024 * 1024)
        return (Int(response.status.code), response.headers, Array(buffer: collected))
    }

    /// The JSON object of a 2xx answer, or the API's error as a ``Failure``.
    func json(_ method: HTTPMethod, _ path: String, body: Object? = nil, headers: [(String, String)] = []) async throws -> Object {
        // Keys sorted: the same request sent again (a resume, with an Idempotency-Key) must be the
        // same bytes, and a dictionary's order differs from one process to the next.
        let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])) }
        let answer = try await request(method, path, body: bytes, headers: headers)
        return try Self.object(answer.status, answer.body)
    }

    static func object(_ status: Int, _ body: [UInt8]) throws -> Object {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? Object
        guard (200..<300).contains(status), let object else {
            let error = object?["error"] as? Object
            throw Failure(
                status: status, code: error?["code"] as? String ?? "http_\(status)",
                message: error?["message"] as? String ?? String(decoding: body.prefix(200), as: UTF8.self))
        }
        return object
    }

    // MARK: Media

    /// Uploads a photo; with `key` (an Idempotency-Key), the same upload sent again — after a crash
    /// lost its answer — gets the first answer back instead of a second copy.
    func upload(_ bytes: [UInt8], name: String, collection: String?, key: String? = nil) async throws -> Object {
        // With a key, the boundary comes from it: the upload sent again must be the same bytes, or
        // the gateway takes it for another request under the same key (409 idempotency_conflict).
        let boundary = "cyclorama-" + (key.map { ProcessRun.digest($0) + ProcessRun.digest("boundary" + $0) } ?? UUID().uuidString)
        var body = Array("--\(boundary)\r\n".utf8)
        if let collection {
            body += Array("Content-Disposition: form-data; name=\"collection\"\r\n\r\n\(collection)\r\n--\(boundary)\r\n".utf8)
        }
        let quoted = name.replacingOccurrences(of: "\"", with: "%22").replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
        body += Array("Content-Disposition: form-data; name=\"file\"; filename=\"\(quoted)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        let answer = try await request(
            .POST, "/api/media", body: body, contentType: "multipart/form-data; boundary=\(boundary)",
            headers: key.map { [("Idempotency-Key", $0)] } ?? [], timeout: .seconds(300))
        return try Self.object(answer.status, answer.body)["media"] as? Object ?? [:]
    }

    /// The current file of a media item and its type.
    func file(of mediaId: String) async throws -> (bytes: [UInt8], type: String) {
        try await file(at: "/api/media/\(mediaId)/file")
    }

    /// The file at `path` (a media item's, or a result held for review) and its type.
    func file(at path: String) async throws -> (bytes: [UInt8], type: String) {
        let answer = try await request(.GET, path, timeout: .seconds(300))
        guard answer.status == 200 else { _ = try Self.object(answer.status, answer.body); throw Failure(status: answer.status, code: "download", message: "no file") }
        return (answer.body, answer.headers.first(name: "Content-Type") ?? "application/octet-stream")
    }

    // MARK: Events

    /// One Server-Sent Event.
    struct Event: Sendable {
        var name: String
        var data: String
    }

    /// The events of `query` (`batchId=…` or `jobId=…`) until the server ends the stream.
    func events(_ query: String) -> AsyncThrowingStream<Event, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var request = HTTPClientRequest(url: base + "/api/ai-image/events?" + query)
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Accept", value: "text/event-stream")
                    let response = try await http.execute(request, timeout: .hours(24))
                    guard response.status == .ok else {
                        let body = try await response.body.collect(upTo: 64 * 1024)
                        _ = try Self.object(Int(response.status.code), Array(buffer: body))
                        throw Failure(status: Int(response.status.code), code: "events", message: "no event stream")
                    }
                    var parser = EventParser()
                    for try await buffer in response.body {
                        for event in parser.feed(Array(buffer: buffer)) { continuation.yield(event) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// `text/event-stream` framing: `event:` and `data:` lines, an empty line ends an event; comments
/// (`:`) and other fields are skipped.
struct EventParser {
    private var line: [UInt8] = []
    private var name = ""
    private var data: [String] = []

    mutating func feed(_ bytes: [UInt8]) -> [GatewayClient.Event] {
        var events: [GatewayClient.Event] = []
        for byte in bytes {
            guard byte == 10 else {
                line.append(byte)
                continue
            }
            if line.last == 13 { line.removeLast() }
            let text = String(decoding: line, as: UTF8.self)
            line.removeAll(keepingCapacity: true)
            if text.isEmpty {
                if !data.isEmpty || !name.isEmpty { events.append(.init(name: name.isEmpty ? "message" : name, data: data.joined(separator: "\n"))) }
                name = ""
                data = []
            } else if text.hasPrefix("event:") {
                name = String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            } else if text.hasPrefix("data:") {
                var value = text.dropFirst(5)
                if value.first == " " { value = value.dropFirst() }
                data.append(String(value))
            }
        }
        return events
    }
}
