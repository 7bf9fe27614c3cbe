import Foundation
import Shared
import TestSupport

/// Messages no consumer can use, one on every queue: what another system's bug or an attacker
/// with broker access would publish. Each must end in its queue's dead-letter queue with a reason,
/// and touch no job.
public enum Poison {
    /// Marks every poison message, so the checker can tell them from real jobs' messages.
    public static let marker = "cyclorama-fault-suite-poison"

    public static func publish(to system: CycloramaSystem) async throws {
        let probe = try await BrokerProbe(url: system.amqpURL)
        let notJSON = Array("\(marker): this is not JSON".utf8)
        func json(_ fields: String) -> [UInt8] { Array(#"{"poison": "\#(marker)", \#(fields)}"#.utf8) }
        // A request whose options are invalid, for a job nobody accepted.
        let badRequest = json(#""type": "cyclorama.generation.request", "schemaVersion": 1, "messageId": "\#(UUID())", "correlationId": "x", "occurredAt": "2026-01-01T00:00:00Z", "jobId": "\#(UUID())", "mediaId": "\#(UUID())", "kind": "single", "options": {"shadowStyle": "spooky"}"#)
        let sends: [(exchange: String, key: String, body: [UInt8])] = [
            (Routing.Exchange.commands, Routing.Key.generationRequest, notJSON),
            (Routing.Exchange.commands, Routing.Key.generationRequest, badRequest),
            (Routing.Exchange.commands, Routing.Key.dispatchRequest, json(#""type": "cyclorama.dispatch.request", "schemaVersion": 1"#)),
            (Routing.Exchange.commands, Routing.Key.settingsRequest, json(#""type": "cyclorama.settings.request", "schemaVersion": 99"#)),
            (Routing.Exchange.events, Routing.Key.generationRendered, json(#""type": "cyclorama.generation.rendered", "schemaVersion": 1"#)),
            (Routing.Exchange.events, Routing.Key.generationCompleted, json(#""type": "cyclorama.generation.completed", "schemaVersion": 1"#)),
            (Routing.Exchange.events, Routing.Key.generationFailed, notJSON),
            (Routing.Exchange.events, Routing.Key.backendWebhook, json(#""type": "cyclorama.backend.webhook", "jobId": "nope""#)),
        ]
        for send in sends {
            try await probe.publish(send.body, exchange: send.exchange, routingKey: send.key)
        }
        await probe.close()
    }
}
