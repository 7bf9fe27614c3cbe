import Foundation
import Messaging
import ServiceSupport
import Shared
import Testing
import TestSupport

/// settings-service answers the settings request from PostgreSQL, over the real broker.
// The limit guards against a hang, not a slow start: in the first minutes of `make test` on two
// cores, dozens of systems start at once and a test here waited over two minutes for its turn.
@Suite("settings-service", .timeLimit(.minutes(6)))
struct SettingsServiceTests {
    /// A virtual host of the test's own: the settings-services of other tests (all consuming
    /// `settings-service.requests`) must not answer this test's requests.
    static func ownVirtualHost() async throws -> (url: String, delete: @Sendable () async -> Void) {
        let vhost = TestEnvironment.uniqueName("settings")
        try #require(await ServerScript.run("vhost", "add", vhost) == 0)
        return (TestServers.shared.amqpBase + vhost, { _ = await ServerScript.run("vhost", "delete", vhost) })
    }

    /// A settings-service on its own virtual host and database, with a probe listening on a reply queue.
    struct Running {
        let broker: (url: String, delete: @Sendable () async -> Void)
        let database: TemporaryDatabase
        let service: ServiceProcess
        let replies: QueueDeclaration
        let probe: BrokerProbe

        static func start() async throws -> Running {
            let broker = try await SettingsServiceTests.ownVirtualHost()
            let database = try await TemporaryDatabase.create()
            let service = try ServiceProcess(
                "settings-service", port: freePort(), environment: ["DATABASE_URL": database.url, "AMQP_URL": broker.url])
            #expect(await service.waitUntilHealthy(timeout: .seconds(45)) == 200, "log:\n\(service.log())")
            let replies = BrokerProbe.replyQueue()
            let probe = try await BrokerProbe(queues: [replies], url: broker.url)
            return Running(broker: broker, database: database, service: service, replies: replies, probe: probe)
        }

        func stop() async {
            await probe.close()
            _ = await service.stop()
            await database.drop()
            await broker.delete()
        }
    }

    @Test func answersTheSettingsRequestWithTheSeededDefaults() async throws {
        let running = try await Running.start()
        let (service, replies, probe) = (running.service, running.replies, running.probe)
        let request = SettingsRequest()
        // Only the keys asked for (unknown ones are left out).
        let narrow = SettingsRequest(keys: ["aiImageBackend", "noSuchKey"])
        try await probe.connection.publish(request, replyTo: replies.name)
        try await probe.connection.publish(narrow, replyTo: replies.name)
        let deliveries = try await probe.collect(2, on: replies.name, timeout: .seconds(15))
        try #require(deliveries.count == 2, "replies missing; log:\n\(service.log())")
        let decoded = try deliveries.map { try MessageDecoder.decode(SettingsReply.self, from: $0.body) }
        let reply = try #require(decoded.first { $0.correlationId == request.correlationId })

        #expect(reply.requestMessageId == request.messageId)
        let expected: [String: String] = [
            "runpodApiKey": "", "aiImageEnabled": "true", "aiImageDefaultShadow": "soft",
            "aiImageDefaultBackground": "#FFFFFF", "aiImageInferenceSteps": "28", "aiImageGuidance": "3.5",
            "aiImageResolution": "1024", "aiImageEnableUpscaling": "false", "aiImageMaxConcurrent": "3",
            "aiImageAbTestEnabled": "false", "aiImageEnableWebhooks": "false", "aiImageWebhookUrl": "",
            "aiImageBackend": "local", "aiImagePricePerMegapixel": "0.03", "aiImageMonthlyBudget": "0",
            "runpodImageDelivery": "auto", "aiImageNotifyUrl": "", "aiImageNotifySecret": "", "aiImageDefaultFraming": "none", "aiImageFidelityMode": "restore",
            "aiImageReviewBeforeReplace": "false",
        ]
        #expect(reply.settings == expected)

        let narrowReply = try #require(decoded.first { $0.correlationId == narrow.correlationId })
        #expect(narrowReply.settings == ["aiImageBackend": "local"])

        await running.stop()
    }

    @Test func requestsItCannotAnswerAreDeadLetteredWithTheReason() async throws {
        let broker = try await Self.ownVirtualHost()
        let service = try ServiceProcess("settings-service", port: freePort(), environment: ["AMQP_URL": broker.url])
        #expect(await service.waitUntilHealthy(timeout: .seconds(45)) == 200, "log:\n\(service.log())")
        let probe = try await BrokerProbe(url: broker.url)

        // Not JSON at all.
        let marker = UUID().uuidString
        try await probe.publish(Array("not json \(marker)".utf8), exchange: Routing.Exchange.commands, routingKey: Routing.Key.settingsRequest)
        let garbage = try #require(try await probe.deadLettered(from: Routing.Queue.settingsRequests, containing: marker))
        #expect(garbage.headers[Routing.Header.reason]?.isEmpty == false)

        // Valid, but with nowhere to send the answer.
        let orphan = SettingsRequest()
        try await probe.connection.publish(orphan)
        let dead = try #require(
            try await probe.deadLettered(from: Routing.Queue.settingsRequests, containing: orphan.messageId.uuidString))
        #expect(dead.headers[Routing.Header.reason]?.contains("reply_to") == true, "\(dead.headers)")

        await probe.close()
        _ = await service.stop()
        await broker.delete()
    }

    /// A request that fails validation but says where to answer gets its refusal as a reply at once
    /// (the gateway shows it as a 400); it is not dead-lettered, and nothing is stored.
    @Test func anInvalidRequestWithAReplyQueueIsAnsweredWithItsRefusal() async throws {
        let running = try await Running.start()
        let (service, replies, probe) = (running.service, running.replies, running.probe)

        // An update with an empty key (what schemathesis sent as {"": 2.0}), as raw JSON: our own
        // publisher would refuse to send it.
        let correlationId = UUID().uuidString
        let body = #"{"type": "cyclorama.settings.request", "schemaVersion": 1, "messageId": "\#(UUID().uuidString)", "#
            + #""correlationId": "\#(correlationId)", "occurredAt": "2026-12-04T10:00:00.000Z", "updates": {"": "2.0"}}"#
        try await probe.publish(
            Array(body.utf8), exchange: Routing.Exchange.commands, routingKey: Routing.Key.settingsRequest, replyTo: replies.name)
        let answers = try await probe.collect(1, on: replies.name, timeout: .seconds(15))
        let reply = try MessageDecoder.decode(SettingsReply.self, from: try #require(answers.first, "log:\n\(service.log())").body)
        #expect(reply.correlationId == correlationId)
        #expect(reply.errors?["updates"] == "must not be empty", "\(reply.errors ?? [:])")
        #expect(reply.settings["aiImageDefaultShadow"] == "soft", "the settings as they are")
        #expect(try await probe.deadLettered(from: Routing.Queue.settingsRequests, containing: correlationId, timeout: .seconds(2)) == nil)

        await running.stop()
    }

    @Test func anUpdateThatComesAfterItsRequesterStoppedWaitingIsNotApplied() async throws {
        let running = try await Running.start()
        let (service, replies, probe) = (running.service, running.replies, running.probe)

        // The gateway answered 503 at notAfter; the request reached the settings-service only later.
        let late = Self.gateway.signed(SettingsRequest(updates: ["aiImageDefaultShadow": "dramatic"], notAfter: Date().addingTimeInterval(-1)))
        try await probe.connection.publish(late, replyTo: replies.name)
        // In time, an update is applied. It changes another key: the service handles the two at once,
        // in either order. (One wait for both replies: the reply queue goes with its consumer.)
        let timely = Self.gateway.signed(SettingsRequest(updates: ["aiImageMaxConcurrent": "3"], notAfter: Date().addingTimeInterval(30)))
        try await probe.connection.publish(timely, replyTo: replies.name)
        let replies2 = try await probe.collect(2, on: replies.name, timeout: .seconds(15))
            .map { try MessageDecoder.decode(SettingsReply.self, from: $0.body) }
        let lateReply = try #require(replies2.first { $0.correlationId == late.correlationId }, "log:\n\(service.log())")
        #expect(lateReply.errors?["aiImageDefaultShadow"]?.contains("not applied") == true, "\(lateReply.errors ?? [:])")
        #expect(lateReply.settings["aiImageDefaultShadow"] == "soft", "nothing was written")
        let reply = try #require(replies2.first { $0.correlationId == timely.correlationId })
        #expect(reply.errors == nil)
        #expect(reply.settings["aiImageMaxConcurrent"] == "3")
        // Whichever came first, the late change was never made.
        #expect(reply.settings["aiImageDefaultShadow"] == "soft")

        await running.stop()
    }

    /// A form sends every field back. A value stored before a rule became stricter, sent back
    /// unchanged, does not block saving the field the user did change; changed to another value
    /// that fails the rule, it is refused.
    @Test func aStoredValueSentBackUnchangedIsNoChange() async throws {
        let running = try await Running.start()
        let (service, replies, probe) = (running.service, running.replies, running.probe)
        let old = "http://shop.example/hooks/a b"  // a space: today's URL rule refuses it
        try await SystemDatabase.updateSettings(running.database.url, ["aiImageWebhookUrl": old])
        let soon = Date().addingTimeInterval(30)
        let save = Self.gateway.signed(SettingsRequest(updates: ["aiImageWebhookUrl": old, "aiImageMaxConcurrent": "4"], notAfter: soon))
        let changed = Self.gateway.signed(SettingsRequest(updates: ["aiImageWebhookUrl": old + "c"], notAfter: soon))
        try await probe.connection.publish(save, replyTo: replies.name)
        try await probe.connection.publish(changed, replyTo: replies.name)
        // (One wait for both replies: the reply queue goes with its consumer. Either order.)
        let answers = try await probe.collect(2, on: replies.name, timeout: .seconds(15))
            .map { try MessageDecoder.decode(SettingsReply.self, from: $0.body) }
        let saved = try #require(answers.first { $0.correlationId == save.correlationId }, "log:\n\(service.log())")
        #expect(saved.errors == nil, "\(saved.errors ?? [:])")
        #expect(saved.settings["aiImageMaxConcurrent"] == "4")
        #expect(saved.settings["aiImageWebhookUrl"] == old)
        let refused = try #require(answers.first { $0.correlationId == changed.correlationId })
        #expect(refused.errors?["aiImageWebhookUrl"]?.contains("URL") == true, "\(refused.errors ?? [:])")
        #expect(refused.settings["aiImageWebhookUrl"] == old, "nothing was written")

        await running.stop()
    }

    /// What the gateway signs changes with (the test systems' key).
    static let gateway = SettingsAuthority(secret: Array(TestEnvironment.settingsAuthorityKey.utf8))

    /// Only the gateway and the settings-service hold the settings authority key. A change anyone
    /// else publishes on the broker — unsigned, signed with another key, altered after signing,
    /// authorized for too long, or without notAfter — is answered with the refusal, changes
    /// nothing and is dead-lettered with the reason; the gateway's own change goes through.
    @Test func aChangeWithoutTheGatewaysAuthorizationChangesNothingAndIsDeadLettered() async throws {
        let running = try await Running.start()
        let (service, replies, probe) = (running.service, running.replies, running.probe)
        let intruder = SettingsAuthority(secret: Array(String(repeating: "i", count: 40).utf8))
        let change = ["aiImageDefaultShadow": "dramatic"]
        let soon = Date().addingTimeInterval(30)
        var altered = Self.gateway.signed(SettingsRequest(updates: change, notAfter: soon))
        altered.updates = ["aiImageDefaultShadow": "minimal"]
        var reused = Self.gateway.signed(SettingsRequest(updates: change, notAfter: soon))
        reused.messageId = UUID()
        let forged: [(SettingsRequest, String)] = [
            (SettingsRequest(updates: change, notAfter: soon), "has none"),
            (intruder.signed(SettingsRequest(updates: change, notAfter: soon)), "does not match"),
            (altered, "does not match"),
            (reused, "does not match"),
            (Self.gateway.signed(SettingsRequest(updates: change, notAfter: Date().addingTimeInterval(3600))), "short time"),
            (Self.gateway.signed(SettingsRequest(updates: change)), "notAfter"),
        ]
        // The gateway's own change (of another key) goes through beside them.
        let genuine = Self.gateway.signed(SettingsRequest(updates: ["aiImageMaxConcurrent": "3"], notAfter: soon))
        for request in forged.map(\.0) + [genuine] { try await probe.connection.publish(request, replyTo: replies.name) }
        // (One wait for every reply: the reply queue goes with its consumer.)
        let answers = try await probe.collect(forged.count + 1, on: replies.name, timeout: .seconds(15))
            .map { try MessageDecoder.decode(SettingsReply.self, from: $0.body) }
        try #require(answers.count == forged.count + 1, "log:\n\(service.log())")
        let deadLetters = QueueDeclaration(name: Routing.Queue.settingsRequests).deadLetterQueueName
        let dead = try await probe.collect(forged.count, on: deadLetters, timeout: .seconds(15))
        #expect(dead.count == forged.count, "dead-lettered: \(dead.count) of \(forged.count)")
        for (request, reason) in forged {
            let reply = try #require(answers.first { $0.correlationId == request.correlationId })
            #expect(reply.errors?["authorization"]?.contains(reason) == true, "\(reply.errors ?? [:])")
            #expect(reply.settings["aiImageDefaultShadow"] == "soft", "nothing was written")
            let letter = dead.first { String(decoding: $0.body, as: UTF8.self).contains(request.correlationId) }
            #expect(letter?.headers[Routing.Header.reason]?.contains(reason) == true, "not dead-lettered with the reason: \(reason)")
        }

        let reply = try #require(answers.first { $0.correlationId == genuine.correlationId })
        #expect(reply.errors == nil, "\(reply.errors ?? [:])")
        #expect(reply.settings["aiImageMaxConcurrent"] == "3")
        #expect(reply.settings["aiImageDefaultShadow"] == "soft")

        await running.stop()
    }
}
