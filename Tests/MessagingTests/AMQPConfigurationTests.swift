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

    @Test(arguments: ["127.0.0.1:5672", "http://host/", "amqp://host:notaport/", "amqp://host:70000/", "amqp://u:%zz@host/"])
    func rejectsMalformedURLs(url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url, connectionName: "t") }
    }

    @Test func namesRetryAndDeadLetterQueues() {
        let queue = QueueDeclaration(name: "work", retryDelays: [.milliseconds(1500)])
        #expect(queue.deadLetterQueueName == "work.dlq")
        #expect(queue.retryQueueName(delay: .milliseconds(1500)) == "work.retry.1500")
    }
}
