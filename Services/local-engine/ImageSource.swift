import AsyncHTTPClient
import Foundation
import NIOCore
import OutboundHTTP
import ServiceCore
import Timing

/// Gets the bytes of `input.image`: decodes a `data:image/...;base64,` URI, or downloads an http(s) URL
/// from an allowed host with a size cap and a timeout. Nothing else (`file://`, other schemes, other
/// hosts, redirects) is followed, so a job cannot make the engine read local files or probe the network;
/// a host allowed only by name or `*` is resolved first and refused unless it is at a public address
/// (``HostAllowList``), before anything connects, and then connected to at the address that was
/// checked, not resolved again.
///
/// A source that does not answer, or answers 5xx, 429 or 408 (the gateway restarting, its database
/// away), is tried again with backoff for up to `retryWindow` before the job fails: a short outage
/// of the source delays the job instead of failing it.
public struct ImageSource: Sendable {
    public var client: HTTPClient
    public var allowedHosts: HostAllowList
    public var maxBytes: Int
    public var timeout: Duration
    public var retryWindow: Duration
    /// How names are resolved for the address rule (tests inject one).
    public var resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve

    public init(client: HTTPClient, allowedHosts: HostAllowList, maxBytes: Int, timeout: Duration, retryWindow: Duration = .zero) {
        self.client = client
        self.allowedHosts = allowedHosts
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.retryWindow = retryWindow
    }

    /// An HTTP client that never follows redirects (a redirect could leave the allowed hosts).
    public static func makeClient() -> HTTPClient {
        HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5))))
    }

    /// Checks the reference without fetching it, so a bad scheme or host fails at once.
    public func validate(_ reference: String) throws(JobFailure) {
        if reference.hasPrefix("data:") { return }
        _ = try allowedURL(reference)
    }

    public func fetch(_ reference: String) async throws(JobFailure) -> [UInt8] {
        if reference.hasPrefix("data:") { return try decodeDataURI(reference) }
        let url = try allowedURL(reference)
        let shown = redactedURL(reference)
        let clock = ContinuousClock()
        let giveUp = clock.now + retryWindow
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(15))
        while true {
            do {
                // Checked before every attempt: a name may point elsewhere by the next one.
                return try await download(url, shown, via: try await clearance(of: url))
            } catch {
                let wait = backoff.next()
                guard error.isTransient, clock.now + wait < giveUp else { throw error.failure }
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    throw JobFailure(.fetchFailed, "input.image: stopped while waiting to fetch \(shown) again")
                }
            }
        }
    }

    /// The address rule for hosts allowed by name or `*` (``HostAllowList``), before any connect: an
    /// address that is not public fails the job; a name that does not resolve now is tried again.
    /// Otherwise where to connect: as named, or at the address that was checked.
    private func clearance(of url: URL) async throws(TransientFetch) -> OutboundClearance {
        let clearance = await allowedHosts.clearance(
            host: url.host ?? "", port: url.connectionPort, variable: "LOCAL_ENGINE_ALLOWED_HOSTS", resolve: resolve)
        if let refusal = clearance.refusal {
            throw TransientFetch(JobFailure(.invalidInput, "input.image: \(refusal.reason)"), transient: refusal.isTransient)
        }
        return clearance
    }

    /// Why `host` must not be fetched from now, or nil (``HostAllowList/refusal(host:port:variable:resolve:)``).
    func refusal(host: String, port: Int) async -> OutboundRefusal? {
        await allowedHosts.refusal(host: host, port: port, variable: "LOCAL_ENGINE_ALLOWED_HOSTS", resolve: resolve)
    }

    private func download(_ url: URL, _ reference: String, via clearance: OutboundClearance) async throws(TransientFetch) -> [UInt8] {
        do {
            return try await client.connecting(as: clearance) { client in try await download(url, reference, with: client) }
        } catch let failed as TransientFetch {
            throw failed
        } catch {
            throw TransientFetch(JobFailure(.fetchFailed, "input.image: could not fetch \(reference): \(Self.describe(error))"), transient: true)
        }
    }

    private func download(_ url: URL, _ reference: String, with client: HTTPClient) async throws(TransientFetch) -> [UInt8] {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        request.headers.add(name: "Accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: TimeAmount(timeout))
        } catch {
            throw TransientFetch(JobFailure(.fetchFailed, "input.image: could not fetch \(reference): \(Self.describe(error))"), transient: true)
        }
        guard response.status == .ok else {
            let code = Int(response.status.code)
            let location = response.headers.first(name: "Location").map { " (redirect to \(redactedURL($0)), not followed)" } ?? ""
            throw TransientFetch(
                JobFailure(.fetchFailed, "input.image: fetching \(reference) answered HTTP \(code)\(location)"),
                transient: code >= 500 || code == 429 || code == 408)
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBytes {
            throw TransientFetch(JobFailure(.imageRejected, "input.image: \(length) bytes is more than the \(maxBytes >> 20) MB limit"))
        }
        do {
            let body = try await response.body.collect(upTo: maxBytes)
            return Array(body.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw TransientFetch(JobFailure(.imageRejected, "input.image: the download exceeds the \(maxBytes >> 20) MB limit"))
        } catch {
            throw TransientFetch(JobFailure(.fetchFailed, "input.image: reading \(reference) failed: \(Self.describe(error))"), transient: true)
        }
    }

    private func allowedURL(_ reference: String) throws(JobFailure) -> URL {
        guard let url = URL(string: reference), let scheme = url.scheme?.lowercased() else {
            throw JobFailure(.invalidInput, "input.image: not a URL or data URI: \(Self.shorten(redactedURL(reference)))")
        }
        guard scheme == "http" || scheme == "https" else {
            throw JobFailure(.invalidInput, "input.image: \(scheme):// URLs are not fetched; send an http(s) URL or a data:image/...;base64 URI")
        }
        guard let host = url.host, !host.isEmpty else {
            throw JobFailure(.invalidInput, "input.image: the URL has no host: \(Self.shorten(redactedURL(reference)))")
        }
        let port = url.connectionPort
        guard allowedHosts.allows(host: host, port: port) else {
            throw JobFailure(
                .invalidInput,
                "input.image: host \(host):\(port) is not allowed (LOCAL_ENGINE_ALLOWED_HOSTS: \(allowedHosts))")
        }
        return url
    }

    private func decodeDataURI(_ reference: String) throws(JobFailure) -> [UInt8] {
        guard let comma = reference.firstIndex(of: ",") else {
            throw JobFailure(.invalidInput, "input.image: a data URI needs a comma before its payload")
        }
        let header = reference[reference.index(reference.startIndex, offsetBy: 5)..<comma].lowercased()
        guard header.hasPrefix("image/") else {
            throw JobFailure(.invalidInput, "input.image: a data URI must have an image/* media type; got \"\(header)\"")
        }
        guard header.hasSuffix(";base64") else {
            throw JobFailure(.invalidInput, "input.image: a data URI must be base64-encoded (data:image/...;base64,...)")
        }
        let payload = reference[reference.index(after: comma)...]
        // base64 is 4/3 the size: refuse before decoding anything oversized.
        guard payload.utf8.count / 4 * 3 <= maxBytes + 3 else {
            throw JobFailure(.imageRejected, "input.image: the data URI holds more than the \(maxBytes >> 20) MB limit")
        }
        guard let data = Data(base64Encoded: String(payload), options: .ignoreUnknownCharacters) else {
            throw JobFailure(.invalidInput, "input.image: the data URI's payload is not valid base64")
        }
        return Array(data)
    }

    static func shorten(_ text: String) -> String { text.count > 80 ? String(text.prefix(77)) + "..." : text }

    /// A short, human reason for a transport error (AsyncHTTPClient's descriptions are long).
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("refused") { return "connection refused" }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: break
            }
        }
        if text.lowercased().contains("timeout") || text.lowercased().contains("timed out") { return "timed out" }
        return shorten(text)
    }
}

/// A failed download of `input.image`, and whether trying again later may help.
struct TransientFetch: Error {
    var failure: JobFailure
    var isTransient: Bool

    init(_ failure: JobFailure, transient: Bool = false) {
        self.failure = failure
        self.isTransient = transient
    }
}
