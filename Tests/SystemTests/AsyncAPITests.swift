import Foundation
import Shared
import Testing
import TestSupport

extension SystemSuites {
    /// docs/asyncapi.yaml, the broker contract for other systems (issue 19), cannot drift from the
    /// code: its examples are the golden files, its fields are what the decoders require, its
    /// channels are where the code publishes; and an independent AMQP client (pika) that takes it
    /// literally gets the answers docs/messages.md documents.
    @Suite("AsyncAPI document", .timeLimit(.minutes(15)))
    struct AsyncAPITests {
        static let goldenFolder = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/SharedTests/Golden")

        /// The checker's report (Tests/Python/asyncapi_check.py): examples equal the golden files and
        /// validate against their schemas; plus what the document says of each message and channel.
        static func report() async throws -> [String: Any] {
            let outcome = try await PythonTool.run(
                "python", [PythonTool.script("asyncapi_check.py"), TestEnvironment.repositoryRoot.path, "--self-test"],
                deadline: .seconds(120))
            #expect(outcome.status == 0, "\(outcome.output)")
            let report = try #require(outcome.report, "\(outcome.output)")
            #expect(report["ok"] as? Bool == true, "\(report["errors"] ?? "")")
            return report
        }

        @Test func theDocumentSaysWhatTheCodeDoes() async throws {
            let report = try await Self.report()
            let messages = try #require(report["messages"] as? [String: [String: Any]])
            // One message per type, each with the code's type string.
            let types = Dictionary(uniqueKeysWithValues: messages.compactMap { name, fields in (fields["type"] as? String).map { ($0, name) } })
            #expect(Set(types.keys) == Set(MessageType.allCases.map(\.rawValue)), "\(types.keys.sorted())")

            // Each message on the exchange and routing key the code publishes it to.
            let channels = try #require(report["channels"] as? [[String: Any]])
            for type in MessageType.allCases {
                let name = try #require(types[type.rawValue], "\(type)")
                let carriers = channels.filter { ($0["messages"] as? [String])?.contains(name) == true }
                if let route = type.route {
                    #expect(
                        carriers.contains { $0["exchange"] as? String == route.exchange && $0["routingKey"] as? String == route.routingKey },
                        "\(name) is published to \(route.exchange) / \(route.routingKey): \(carriers)")
                } else {
                    #expect(carriers.contains { $0["exchange"] as? String == "" }, "\(name) goes through the default exchange: \(carriers)")
                }
            }

            // `required` is exactly what the decoder needs: removing a field the document requires makes
            // the golden message unreadable or invalid, removing any other leaves it valid.
            let files = try FileManager.default.contentsOfDirectory(atPath: Self.goldenFolder.path).filter { $0.hasSuffix(".json") }
            #expect(files.count >= MessageType.allCases.count)
            var removals = 0
            for file in files {
                let bytes = Array(try Data(contentsOf: Self.goldenFolder.appendingPathComponent(file)))
                guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else {
                    Issue.record("\(file) is not an object")
                    continue
                }
                let type = try #require(object["type"]?.stringValue)
                let fields = try #require(messages[types[type] ?? ""], "\(file): no message for \(type)")
                let required = Set(fields["required"] as? [String] ?? [])
                let documented = Set(fields["properties"] as? [String] ?? [])
                #expect(Set(object.keys).isSubset(of: documented), "\(file): fields the document does not name: \(Set(object.keys).subtracting(documented))")
                for key in object.keys where key != "type" {
                    var smaller = object
                    smaller[key] = nil
                    let readable = (try? MessageDecoder.decode(Array(JSONValue.object(smaller).encodedText.utf8))) != nil
                    #expect(readable != required.contains(key), "\(file) without \(key): the decoder \(readable ? "accepts" : "refuses") it, the document \(required.contains(key) ? "requires" : "does not require") it")
                    removals += 1
                }
            }
            #expect(removals > 50)
        }

        @Test func anotherSystemGetsTheDocumentedAnswers() async throws {
            try await CycloramaSystem.run(overrides: ["local-engine": ["LOCAL_ENGINE_SIMULATE_MS": "300"]]) { system in
                let mediaId = try await system.upload(try Samples.bytes("dev05", "input.jpg"))
                let outcome = try await PythonTool.run(
                    "python", [PythonTool.script("asyncapi_publish.py"), TestEnvironment.repositoryRoot.path],
                    environment: ["AMQP_URL": system.amqpURL, "GATEWAY_URL": system.gatewayURL, "TOKEN": system.token, "MEDIA_ID": mediaId],
                    deadline: .seconds(400))
                #expect(outcome.status == 0, "\(outcome.output.suffix(4000))\n\(system.logs())")
                let report = try #require(outcome.report, "\(outcome.output.suffix(4000))")
                #expect(report["ok"] as? Bool == true, "\(report["errors"] ?? "")")
                let checked = Set((report["checked"] as? [String: Any] ?? [:]).keys)
                let examples = try FileManager.default.contentsOfDirectory(atPath: Self.goldenFolder.path)
                    .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
                #expect(checked.isSuperset(of: examples), "not checked: \(Set(examples).subtracting(checked))")
                // One backend run for the request published twice, none for the forged dispatch.
                let health = try await system.engineHealth().json()
                let jobs = health["jobs"] as? [String: Int] ?? [:]
                #expect(jobs.values.reduce(0, +) == 1, "the engine ran \(jobs)")
            }
        }
    }
}
