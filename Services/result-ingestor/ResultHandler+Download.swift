import AsyncHTTPClient
import Foundation
import NIOCore
import OutboundHTTP
import ServiceCore
import Shared

/// Fetching a result from where the backend left it, under the result-host rules.
extension ResultHandler {
    /// Downloads a result, following at most ``IngestorConfiguration/maxRedirects`` redirects, each
    /// only to a host the result may come from (the HTTP client itself follows none). Every hop is
    /// checked before it connects, and a host allowed by name is connected to at the address that
    /// was checked.
    func download(_ reference: String, from backend: GenerationBackend) async throws -> [UInt8] {
        var location = reference
        var redirects = 0
        while true {
            let what = location == reference ? "" : " (a redirect from \(redactedURL(reference)))"
            guard let url = URL(string: location) else {
                throw IngestFailure(reason: "refused \(redactedURL(location))\(what): not a URL", transient: false)
            }
            let clearance = await configuration.clearance(url, from: backend, resolve: resolve)
            if let refusal = clearance.refusal {
                // A name that does not resolve now is waited for like a host that does not answer.
                throw IngestFailure(reason: "\(refusal.reason); refused \(redactedURL(location))\(what)", transient: refusal.isTransient)
            }
            let hop: DownloadHop
            do {
                hop = try await http.connecting(as: clearance) { client in try await self.hop(url, with: client) }
            } catch let failure as IngestFailure {
                throw failure
            } catch {
                throw IngestFailure(reason: "downloading \(redactedURL(location)) failed: \(error)", transient: true)
            }
            switch hop {
            case .result(let bytes):
                return bytes
            case .redirect(let target):
                redirects += 1
                guard redirects <= IngestorConfiguration.maxRedirects else {
                    throw IngestFailure(reason: "downloading \(redactedURL(reference)) redirected more than \(IngestorConfiguration.maxRedirects) times", transient: false)
                }
                location = target.absoluteString
            }
        }
    }

    /// What one request of a download got: the result, or where it moved.
    private enum DownloadHop {
        case result([UInt8])
        case redirect(URL)
    }

    /// One request of a download, its body read with the client it was made with.
    private func hop(_ url: URL, with client: HTTPClient) async throws -> DownloadHop {
        let location = url.absoluteString
        var request = HTTPClientRequest(url: location)
        request.headers.add(name: "Accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: TimeAmount(configuration.timeout))
        } catch {
            throw IngestFailure(reason: "downloading \(redactedURL(location)) failed: \(error)", transient: true)
        }
        if [301, 302, 303, 307, 308].contains(response.status.code) {
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard let next = response.headers.first(name: "Location"), let target = URL(string: next, relativeTo: url)?.absoluteURL else {
                throw IngestFailure(reason: "downloading \(redactedURL(location)) answered a redirect without a location", transient: false)
            }
            return .redirect(target)
        }
        guard response.status == .ok else {
            // 404/410: the backend no longer keeps it (RunPod results expire); other 4xx will not change either.
            let code = Int(response.status.code)
            throw IngestFailure(
                reason: "downloading \(redactedURL(location)) answered HTTP \(code)\(code == 404 || code == 410 ? " (the backend no longer keeps the result)" : "")",
                transient: code >= 500 || code == 429 || code == 408, expired: code == 404 || code == 410)
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > configuration.maxBytes {
            throw IngestFailure(reason: "the result is \(length) bytes; at most \(configuration.maxBytes) are accepted", transient: false)
        }
        do {
            return .result(Array(buffer: try await response.body.collect(upTo: configuration.maxBytes)))
        } catch is NIOTooManyBytesError {
            throw IngestFailure(reason: "the result is larger than \(configuration.maxBytes) bytes", transient: false)
        } catch {
            throw IngestFailure(reason: "reading \(redactedURL(location)) failed: \(error)", transient: true)
        }
    }
}
