import Testing
@testable import Messaging

@Suite struct AMQPConfigurationTests {
    @Test func parsesAFullURL() throws {
        let configuration = try AMQPConfiguration(url: "amqp://alice:s%40cret@broker.local:5673/prod", connectionName: "t")
        #expect(configuration.user == "alice")
        #expect(configuration.password == "s@cret")
        #expect(configuration.host == "broker.local")
        #expect(configuration.port == 5673)
        #expect(configuration.vhost == "prod")
        #expect(configuration.connectionName == "t")
    }

    @Test func defaultsTheVhostAndCredentials() throws {
        let bare = try AMQPConfiguration(url: "amqp://127.0.0.1", connectionName: "t")
        #expect(bare.vhost == "/")
        #expect(bare.user == "guest")
        #expect(bare.port == 5672)
        let encodedRoot = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/%2F", connectionName: "t")
        #expect(encodedRoot.vhost == "/")
    }

    @Test func readsEveryNodeOfACluster() throws {
        let cluster = try AMQPConfiguration(url: "amqp://u:p@node-1:5701,node-2:5702,node-3/prod", connectionName: "t")
        #expect(cluster.addresses == [
            BrokerAddress(host: "node-1", port: 5701), BrokerAddress(host: "node-2", port: 5702), BrokerAddress(host: "node-3", port: 5672),
        ])
        #expect(cluster.host == "node-1" && cluster.port == 5701 && cluster.vhost == "prod" && cluster.user == "u")
    }

    @Test(arguments: ["amqp://node-1:5701,:5702/", "amqp://node-1:5701,node-2:x/", "amqp://node-1,,node-3/"])
    func rejectsAClusterWithABadNode(url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url, connectionName: "t") }
    }

    @Test(arguments: ["127.0.0.1:5672", "http://host/", "amqp://host:notaport/", "amqp://host:70000/", "amqp://u:%zz@host/"])
    func rejectsMalformedURLs(url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url, connectionName: "t") }
    }

    @Test func namesRetryAndDeadLetterQueues() {
        let queue = QueueDeclaration(name: "work", retryDelays: [.milliseconds(1500)])
        #expect(queue.deadLetterQueueName == "work.dlq")
        #expect(queue.retryQueueName(delay: .milliseconds(1500)) == "work.delay.1500")
    }

    /// Which exchange a channel closure blames, read exactly: the name is whatever a requester put
    /// in `replyTo`, so it may hold quotes and the very words around it.
    @Test func aClosureNamesItsExchangeExactlyWhateverTheNameHolds() {
        func named(_ code: UInt16, _ text: String) -> String? {
            ConnectionCore.exchangeNamed(inClose: code, text).map { "\($0.name)|\($0.whole)" }
        }
        #expect(named(404, "NOT_FOUND - no exchange 'erp.events' in vhost 'cy-1'") == "erp.events|true")
        #expect(named(404, "NOT_FOUND - no exchange 'x' 'cyclorama.events' in vhost 'cy-1'") == "x' 'cyclorama.events|true")
        #expect(named(404, "NOT_FOUND - no exchange 'a' in vhost 'b' in vhost 'cy-1'") == "a' in vhost 'b|true")
        #expect(named(404, "NOT_FOUND - no exchange 'x'' in vhost '/'") == "x'|true")
        #expect(named(404, "NOT_FOUND - no exchange '' in vhost '/'") == nil, "never the default exchange")
        #expect(named(404, "NOT_FOUND - no exchange 'éééééé") == "éééééé|false", "cut short: matched by its start")
        #expect(named(403, "ACCESS_REFUSED - access to exchange 'orders' in vhost '/' refused for user 'u'") == "orders|true")
        #expect(named(406, "PRECONDITION_FAILED - message size 200000000 is larger than max size") == nil)
        #expect(named(404, "NOT_FOUND - no queue 'q' in vhost '/'") == nil)
    }

    /// A routing key the user may not publish with (topic permissions) blames that exchange and key.
    @Test func aTopicRefusalNamesItsExchangeAndRoutingKey() {
        func refused(_ code: UInt16, _ text: String) -> String? {
            ConnectionCore.topicRefused(inClose: code, text).map { "\($0.exchange)|\($0.routingKey)" }
        }
        #expect(refused(403, "ACCESS_REFUSED - write access to topic 'generation.request' in exchange 'cyclorama.commands' in vhost 'cy-1' refused for user 'result-ingestor'")
            == "cyclorama.commands|generation.request")
        #expect(refused(403, "ACCESS_REFUSED - write access to topic '' in exchange 'e' in vhost '/' refused for user 'u'") == "e|")
        #expect(refused(403, "ACCESS_REFUSED - access to exchange 'orders' in vhost '/' refused for user 'u'") == nil)
        #expect(refused(404, "ACCESS_REFUSED - write access to topic 'k' in exchange 'e' in vhost '/' refused for user 'u'") == nil)
        #expect(refused(403, "ACCESS_REFUSED - write access to topic 'k' in exchange 'cyclo") == nil, "cut short")
    }
}
