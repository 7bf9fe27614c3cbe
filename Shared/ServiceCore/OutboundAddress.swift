import Foundation
import NIOPosix
import Timing

/// Which hosts the public internet can reach, by the address or the name alone.
public enum PublicAddress {
    /// Whether an IP literal is a public address; nil when `text` is not an IP literal.
    ///
    /// IPv4 is read as the C library reads it when connecting (`inet_aton`), so the spellings that
    /// reach the same address are judged alike: `2130706433`, `0x7f.1`, `0177.0.0.1` are all 127.0.0.1.
    public static func isPublic(ip text: String) -> Bool? {
        address(ip: text).map { $0.isPublic }
    }

    /// The class of an IP literal (nil for a name), for the reasons a refusal gives. An IPv6 zone
    /// (`fe80::1%eth0`) is dropped before judging; IPv6 forms that carry an IPv4 address (mapped
    /// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
    /// by that address, since that is where they lead.
    static func address(ip text: String) -> (isPublic: Bool, kind: String)? {
        var bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if let zone = bare.firstIndex(of: "%") { bare = String(bare[..<zone]) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, bare, &v6) == 1 {
            let b = withUnsafeBytes(of: v6) { Array($0) }
            if b.allSatisfy({ $0 == 0 }) { return (false, "unspecified") }                        // ::
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return (false, "loopback") }    // ::1
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return classify(v4: Array(b[12..<16])) }
            if b[0..<12].allSatisfy({ $0 == 0 }) { return classify(v4: Array(b[12..<16])) }       // ::a.b.c.d
            if b[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return classify(v4: Array(b[12..<16])) }  // NAT64
            if b[0] == 0x20 && b[1] == 0x02 { return classify(v4: Array(b[2..<6])) }              // 6to4
            if b[0] & 0xFE == 0xFC { return (false, "unique-local") }                            // fc00::/7
            if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return (false, "link-local") }             // fe80::/10
            if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return (false, "site-local") }             // fec0::/10
            if b[0] == 0xFF { return (false, "multicast") }
            return (true, "public")
        }
        // Only digits, dots and hex spellings may be an IPv4 literal; anything else is a name.
        guard !bare.isEmpty, bare.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == "x" || $0 == "X" }),
              bare.first?.isNumber == true else { return nil }
        var v4 = in_addr()
        guard inet_aton(bare, &v4) != 0 else { return nil }
        return classify(v4: withUnsafeBytes(of: v4.s_addr) { Array($0) })
    }

    private static func classify(v4 a: [UInt8]) -> (isPublic: Bool, kind: String) {
        switch (a[0], a[1]) {
        case (0, _): return (false, "unspecified")
        case (127, _): return (false, "loopback")
        case (10, _), (172, 16...31), (192, 168): return (false, "private")
        case (100, 64...127): return (false, "shared (carrier-grade NAT)")
        case (169, 254): return (false, "link-local (cloud metadata)")
        case (224...239, _): return (false, "multicast")
        case (240...255, _): return (false, "reserved")
        default: return (true, "public")
        }
    }

    /// Names that never leave the local network: single labels (`api-gateway`), `localhost`, and
    /// the local-only suffixes.
    public static func isLocalOnly(name: String) -> Bool {
        let name = name.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        guard name.contains(".") else { return true }
        return [".localhost", ".local", ".internal", ".lan", ".home.arpa", ".corp", ".intranet", ".private"]
            .contains { name.hasSuffix($0) }
    }

    /// Whether `host` (an IP literal or a name) is public: a name is public when it is not local-only
    /// and every address it resolves to is public (one that does not resolve is not).
    public static func isPublic(host: String, resolve: @Sendable (String) async -> [String]) async -> Bool {
        if let literal = isPublic(ip: host) { return literal }
        if isLocalOnly(name: host) { return false }
        let addresses = await resolve(host)
        return !addresses.isEmpty && addresses.allSatisfy { isPublic(ip: $0) == true }
    }

    /// The addresses a name resolves to (getaddrinfo on a pool of its own, so a DNS server that does
    /// not answer holds neither the cooperative pool nor NIO's shared one, where thumbnails and
    /// exports run), or none when the lookup fails or takes longer than ``lookupLimit``.
    @Sendable public static func systemResolve(_ host: String) async -> [String] {
        let lookup = resolverThreads
        // awaitResult, not withTimeout: getaddrinfo does not stop when cancelled, and the caller
        // must not wait for it past the limit.
        let task = Task { () -> [String] in
            (try? await lookup.runIfActive { () -> [String] in
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
                defer { freeaddrinfo(first) }
                var found: [String] = []
                var next: UnsafeMutablePointer<addrinfo>? = first
                while let entry = next {
                    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                        found.append(String(cString: buffer))
                    }
                    next = entry.pointee.ai_next
                }
                return found
            }) ?? []
        }
        guard case .success(let addresses) = await awaitResult(of: task, atMost: lookupLimit) else { return [] }
        return addresses
    }

    /// How long a name may take to resolve before it counts as not resolving (now).
    public static let lookupLimit: Duration = .seconds(5)

    /// The lookups' own threads (getaddrinfo blocks; a lookup past ``lookupLimit`` is abandoned,
    /// not stopped, so a few spare threads keep later lookups from queueing behind it).
    private static let resolverThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()
}

/// An allow list of outbound hosts (`host:port`, `host`, or `*`), as the services' `*_ALLOWED_HOSTS`
/// variables give it, and the rule that goes with it against server-side request forgery:
///
/// - a `host:port` entry is an operator naming exactly that service (the gateway on loopback, the
///   engine in compose): it is trusted as it is;
/// - a bare `host` entry or `*` trusts a name, not an address: the name is resolved first, and it
///   is refused when it is, or resolves to, anything but a public address (loopback, private,
///   link-local and cloud metadata, shared, unique-local, multicast), before anything connects.
///
/// A name that passes is connected to at the address that was checked (``OutboundClearance``), not
/// resolved again, so a DNS answer that changes in between leads nowhere new.
public struct HostAllowList: Sendable, CustomStringConvertible {
    public var entries: [String]

    public init(_ entries: [String]) {
        self.entries = entries.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
    }

    /// From a comma-separated variable's value.
    public init(list: String) { self.init(list.split(separator: ",").map(String.init)) }

    public enum Match: Sendable, Equatable {
        /// `host:port` is listed: trusted as it is.
        case exact
        /// Listed by name or by `*`: allowed only at a public address.
        case publicOnly
    }

    /// How `host` on `port` (the URL's port or its scheme's default) is listed, nil when it is not.
    public func match(host: String, port: Int) -> Match? {
        let host = Self.bare(host.lowercased())
        if entries.contains(where: { Self.entry($0, names: host, port: port) }) { return .exact }
        if entries.contains(where: { $0 == "*" || Self.bare($0) == host }) { return .publicOnly }
        return nil
    }

    /// Whether `host` on `port` is listed at all (the address rule aside).
    public func allows(host: String, port: Int) -> Bool { match(host: host, port: port) != nil }

    /// Whether and where `host` on `port` may be connected to now: refused when it is not listed,
    /// or listed only by name or `*` and not at a public address; otherwise as named (listed
    /// exactly) or pinned to the public address its name resolved to. `variable` names the list in
    /// the reason.
    public func clearance(
        host: String, port: Int, variable: String,
        resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve
    ) async -> OutboundClearance {
        if let refused = refusalWithoutResolving(host: host, port: port, variable: variable) { return .refused(refused) }
        guard match(host: host, port: port) == .publicOnly else { return .asNamed }
        return await Self.addressClearance(host: host, port: port, variable: variable, resolve: resolve)
    }

    /// Why `host` on `port` must not be connected to now, or nil when it may (``clearance(host:port:variable:resolve:)``
    /// without the address to connect to).
    public func refusal(
        host: String, port: Int, variable: String,
        resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve
    ) async -> OutboundRefusal? {
        await clearance(host: host, port: port, variable: variable, resolve: resolve).refusal
    }

    /// Why `host` on `port` is refused whatever its name resolves to, or nil when it is allowed or
    /// only resolving it could tell: for checks that must not resolve (a URL taken at intake, whose
    /// name is resolved again before every connect).
    public func refusalWithoutResolving(host: String, port: Int, variable: String) -> OutboundRefusal? {
        switch match(host: host, port: port) {
        case nil:
            return OutboundRefusal(reason: "host \(host):\(port) is not allowed (\(variable): \(self))", isTransient: false)
        case .exact:
            return nil
        case .publicOnly:
            return Self.literalRefusal(host: host, port: port, variable: variable)
        }
    }

    /// Why `host`, an address or a local-only name, is not public; nil for any other name.
    private static func literalRefusal(host: String, port: Int, variable: String?) -> OutboundRefusal? {
        let instead = variable.map { "; only \(host):\(port) listed exactly in \($0) may be" } ?? ""
        if let literal = PublicAddress.address(ip: host) {
            return literal.isPublic ? nil : OutboundRefusal(reason: "\(host) is a \(literal.kind) address\(instead)", isTransient: false)
        }
        if PublicAddress.isLocalOnly(name: host) {
            return OutboundRefusal(reason: "\(host) is a local-only name\(instead)", isTransient: false)
        }
        return nil
    }

    /// Whether `host` is at a public address (resolving a name first), and where to connect: the
    /// rule for hosts allowed by name or `*`. A name that does not resolve now may next time (DNS
    /// away), so that refusal is transient; an address that is not public is not. Every address the
    /// name resolves to must be public, and one that cannot be read counts as not public. A name
    /// that passes is pinned to the first address it resolved to: connecting by name would resolve
    /// it again, and an answer that changed in between (DNS rebinding, a TTL of zero) could lead
    /// anywhere. A public IP literal is connected to as named. `variable` names where `host:port`
    /// could be listed instead.
    public static func addressClearance(
        host: String, port: Int, variable: String? = nil,
        resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve
    ) async -> OutboundClearance {
        if PublicAddress.address(ip: host) != nil || PublicAddress.isLocalOnly(name: host) {
            return literalRefusal(host: host, port: port, variable: variable).map { .refused($0) } ?? .asNamed
        }
        let instead = variable.map { "; only \(host):\(port) listed exactly in \($0) may be" } ?? ""
        let addresses = await resolve(host)
        guard let first = addresses.first else {
            return .refused(OutboundRefusal(reason: "\(host) does not resolve (now)", isTransient: true))
        }
        for address in addresses {
            guard let judged = PublicAddress.address(ip: address) else {
                return .refused(OutboundRefusal(reason: "\(host) resolves to \(address), which is not an address\(instead)", isTransient: false))
            }
            if !judged.isPublic {
                return .refused(OutboundRefusal(reason: "\(host) resolves to \(address), a \(judged.kind) address\(instead)", isTransient: false))
            }
        }
        return .pinned(host: host, address: first)
    }

    public var description: String { entries.isEmpty ? "(none)" : entries.joined(separator: ", ") }

    /// `[::1]` → `::1`: URL hosts keep IPv6 brackets, entries may or may not.
    private static func bare(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// Whether an entry is exactly `host:port` (`[v6]:port` for IPv6).
    private static func entry(_ entry: String, names host: String, port: Int) -> Bool {
        entry == "\(host):\(port)" || entry == "[\(host)]:\(port)"
    }
}

/// Whether an outbound call may be made now, and where it connects.
public enum OutboundClearance: Sendable, Equatable {
    /// Not now, or never (``OutboundRefusal/isTransient``).
    case refused(OutboundRefusal)
    /// To the host as named: listed exactly as `host:port` (the operator's own service), or a
    /// public IP literal.
    case asNamed
    /// Only to `address`, the public address `host` resolved to when it was checked; resolving the
    /// name again to connect could lead elsewhere (DNS rebinding). TLS still checks the
    /// certificate for `host`.
    case pinned(host: String, address: String)

    /// The refusal, nil when the call may be made.
    public var refusal: OutboundRefusal? {
        if case .refused(let refusal) = self { return refusal }
        return nil
    }
}

/// Why an outbound call must not be made now: the reason for people, and whether it may succeed
/// later (a name that does not resolve now) or never will (an address that is not public).
public struct OutboundRefusal: Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var isTransient: Bool

    public init(reason: String, isTransient: Bool) {
        self.reason = reason
        self.isTransient = isTransient
    }

    public var description: String { reason }
}

extension URL {
    /// The port a connection to this URL uses: its own, else its scheme's (443 for https, 80 otherwise).
    public var connectionPort: Int { port ?? (scheme?.lowercased() == "https" ? 443 : 80) }
}
