import Logging
import Messaging
import Shared

/// Cyclorama's broker topology built from the names in `Shared.Routing`.
///
/// Each service declares the exchanges and the queues it owns (named `<service>.…`) on each
/// (re)connection; declarations are idempotent. It may not declare another's: its broker user has
/// configure and read rights only on Cyclorama's exchanges and its own queues (docs/security.md).
/// The queues are durable, so once each consumer has started they exist whatever starts first;
/// `make up` starts every service before it takes requests, and tools with the admin's rights
/// (tests, operators) declare everything with `make()`.
public enum CycloramaTopology {
    /// The exchanges and the queues of `owner` (a service name), or every queue when nil.
    public static func make(owner: String? = nil) -> Topology {
        Topology(
            exchanges: Routing.Exchange.all
                .filter { $0 != Routing.Exchange.deadLetter }
                .map { ExchangeDeclaration(name: $0, kind: .topic) },
            queues: Routing.bindings.filter { binding in owner.map { binding.queue.hasPrefix($0 + ".") } ?? true }.map { binding in
                QueueDeclaration(
                    name: binding.queue,
                    bindings: binding.keys.map { QueueBinding(exchange: binding.exchange, routingKey: $0) },
                    retiredBindings: binding.retiredKeys.map { QueueBinding(exchange: binding.exchange, routingKey: $0) })
            },
            deadLetterExchange: Routing.Exchange.deadLetter
        )
    }
}
