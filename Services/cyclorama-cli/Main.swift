import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `cyclorama`: the command line over the gateway's public HTTP API (README.md, "The command line").
@main
struct Cyclorama: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cyclorama",
        abstract: "Turn product photos into studio shots with a Cyclorama gateway.",
        subcommands: [ProcessCommand.self, StatusCommand.self, SettingsCommand.self, MediaCommand.self])
}

/// Where the gateway is and the token to call it with.
struct Connection: ParsableArguments {
    @Option(name: .long, help: "The gateway's base URL (else CYCLORAMA_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(name: .long, help: "An admin API token (else CYCLORAMA_TOKEN, else the file .var/admin-token).")
    var token: String?

    /// Runs `body` with a client, shut down afterwards whatever happens.
    func withClient<T>(_ body: (GatewayClient) async throws -> T) async throws -> T {
        let environment = ProcessInfo.processInfo.environment
        var base = url ?? environment["CYCLORAMA_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        while base.hasSuffix("/") { base.removeLast() }
        let fromFile = FileManager.default.contents(atPath: ".var/admin-token")
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        guard let token = token ?? environment["CYCLORAMA_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) ?? fromFile, !token.isEmpty else {
            throw ValidationError("no token: pass --token, set CYCLORAMA_TOKEN, or run where .var/admin-token is (make up writes it)")
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        // Every followed batch holds a connection for its event stream (ProcessRun follows at most
        // `ProcessRun.followedAtOnce`), and downloads and uploads need theirs beside them.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = ProcessRun.followedAtOnce + 16
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(GatewayClient(base: base, token: token, http: http))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}

/// Prints a JSON value, pretty and with sorted keys.
func printJSON(_ value: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// What the API said, as a command-line failure (exit 1).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a job or a batch.")

    @OptionGroup var connection: Connection
    @Argument(help: "A job id or a batch id.") var id: String
    @Flag(name: .long, help: "Print the API's answer as JSON.") var json = false

    func run() async throws {
        let answer: GatewayClient.Object = try await connection.withClient { client in
            do {
                return try await client.json(.GET, "/api/ai-image/status/\(id)")
            } catch let failure as GatewayClient.Failure where failure.status == 404 {
                return try await client.json(.GET, "/api/ai-image/batch/\(id)")
            }
        }
        if json { return printJSON(answer) }
        if let batch = answer["batchId"] as? String {
            let counts = (answer["counts"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key.lowercased()) \($0.value)" }
            print("batch \(batch): \(answer["status"] as? String ?? "?"), \(answer["total"] as? Int ?? 0) items (\(counts.joined(separator: ", "))), cost $\(answer["cost"] ?? 0)")
        } else {
            var line = "job \(answer["jobId"] as? String ?? id): \(answer["status"] as? String ?? "?") (media \(answer["mediaId"] as? String ?? "?"), \(answer["backend"] as? String ?? "?"))"
            if let error = answer["error"] as? GatewayClient.Object { line += ": \(error["message"] as? String ?? "")" }
            print(line)
        }
    }
}

struct SettingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings", abstract: "Read or change the settings.", subcommands: [Get.self, Set.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the settings (or only the keys named).")
        @OptionGroup var connection: Connection
        @Argument(help: "Setting names; none: all.") var keys: [String] = []
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let answer = try await connection.withClient { try await $0.json(.GET, "/api/ai-image/settings") }
            var settings = answer["settings"] as? [String: String] ?? [:]
            if !keys.isEmpty {
                let unknown = keys.filter { settings[$0] == nil }
                guard unknown.isEmpty else { throw CommandFailure(description: "no such setting: \(unknown.joined(separator: ", "))") }
                settings = settings.filter { keys.contains($0.key) }
            }
            if json { return printJSON(settings) }
            for (key, value) in settings.sorted(by: { $0.key < $1.key }) { print("\(key)=\(value)") }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change settings: key=value ... (all or none are applied).")
        @OptionGroup var connection: Connection
        @Argument(help: "key=value pairs, e.g. aiImageDefaultShadow=dramatic.") var pairs: [String]

        func validate() throws {
            guard !pairs.isEmpty else { throw ValidationError("name at least one key=value") }
            for pair in pairs where !pair.contains("=") { throw ValidationError("\"\(pair)\" is not key=value") }
        }

        func run() async throws {
            var updates: [String: Any] = [:]
            for pair in pairs {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                updates[String(parts[0])] = String(parts[1])
            }
            let answer = try await connection.withClient { try await $0.json(.PUT, "/api/ai-image/settings", body: updates) }
            let settings = answer["settings"] as? [String: String] ?? [:]
            for key in updates.keys.sorted() { print("\(key)=\(settings[key] ?? "")") }
        }
    }
}

struct MediaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "media", abstract: "The media library.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List media items (newest first unless --sort says otherwise), or the trash.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this collection.") var collection: String?
        @Option(help: "Only names containing this, whatever the case.") var search: String?
        @Option(help: "Only items in this state: unprocessed, processed, inProgress, awaitingReview or failed.") var state: String?
        @Option(help: "newest, oldest, name, name_desc, largest or smallest.") var sort: String?
        @Flag(help: "List the trash (deleted items) instead.") var trash = false
        @Option(help: "The page (from 1).") var page = 1
        @Option(name: .customLong("page-size"), help: "Items a page (1-100).") var pageSize = 50
        @Flag(name: .long, help: "Print the API's answer as JSON.") var json = false

        func run() async throws {
            var query = "page=\(page)&pageSize=\(pageSize)"
            for (name, value) in [("collection", collection), ("q", search), ("state", state), ("sort", sort), ("trash", trash ? "true" : nil)] {
                if let value, let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                    query += "&\(name)=\(encoded)"
                }
            }
            let answer = try await connection.withClient { try await $0.json(.GET, "/api/media?\(query)") }
            if json { return printJSON(answer) }
            let items = answer["items"] as? [GatewayClient.Object] ?? []
            for item in items {
                let size = "\(item["width"] as? Int ?? 0)x\(item["height"] as? Int ?? 0)"
                let erases = (item["erasesAt"] as? String).map { ", erased \($0)" } ?? ""
                let state = (item["deletedAt"] as? String).map { "deleted \($0)\(erases)" } ?? item["state"] as? String ?? ""
                print("\(item["id"] as? String ?? "?")  \(size)  \(item["mimeType"] as? String ?? "")  \(state)  \(item["originalName"] as? String ?? "")")
            }
            print("page \(page): \(items.count) of \(answer["total"] as? Int ?? items.count)")
        }
    }
}
