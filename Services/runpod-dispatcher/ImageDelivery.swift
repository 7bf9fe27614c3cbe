import AsyncHTTPClient
import Foundation
import Imaging
import Logging
import NIOCore
import NIOPosix
import ServiceCore
import Shared

/// How a RunPod job's source photo reaches RunPod (the `runpodImageDelivery` setting).
///
/// - `url`: the signed link the prompt-service put in `input.image`; RunPod's worker fetches it, so
///   `MEDIA_BASE_URL` must be reachable from the internet.
/// - `inline`: the dispatcher fetches the photo itself and sends it in the `/run` body as a
///   `data:` URI (as RunPod's own SDK sends Kontext images), shrunk to the job's `size` and to
///   RunPod's request limit.
/// - `auto` (default): `inline` when `MEDIA_BASE_URL` is not a public address (loopback, private,
///   link-local, shared, unique-local, a single-label or local-only name, or a name that resolves
///   to any such address), else `url`.
enum ImageDelivery: String, Sendable, CaseIterable {
    case auto, url, inline

    /// The setting's value; an unknown or missing one is `auto`.
    init(setting: String?) {
        self = setting.flatMap { ImageDelivery(rawValue: $0.trimmingCharacters(in: .whitespaces).lowercased()) } ?? .auto
    }
}

/// Puts a RunPod job's source photo inline when ``ImageDelivery`` says so.
struct ImageInliner: Sendable {
    /// What the `/run` body may carry at most: RunPod refuses larger `/run` requests (10 MB).
    static let requestLimit = 10_000_000
    /// What the photo may take of it: base64 grows it by a third, and the rest of the body is small.
    static let imageLimit = (requestLimit - 200_000) / 4 * 3

    let http: HTTPClient
    /// Only links under this base (the gateway's signed media links) are fetched and inlined; any
    /// other `input.image` goes to RunPod as it is.
    let mediaBaseURL: String
    var maxImageBytes = ImageInliner.imageLimit
    var resolve: @Sendable (String) async -> [String] = PublicAddress.systemResolve

    enum Outcome {
        /// The input to send.
        case input(JSONValue)
        /// The photo cannot be had now (the gateway is away): try again later.
        case wait(String)
        /// The photo will never be usable.
        case refuse(FailureCode, String)
    }

    func input(for dispatch: DispatchGeneration, delivery: ImageDelivery, logger: Logger) async -> Outcome {
        guard dispatch.backend == .runpod, case .object(var fields) = dispatch.input, let link = fields["image"]?.stringValue,
              await sendsInline(link, delivery: delivery)
        else { return .input(dispatch.input) }
        var request = HTTPClientRequest(url: link)
        request.headers.add(name: "Accept", value: "image/*")
        let bytes: [UInt8]
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            let code = Int(response.status.code)
            guard code == 200 else {
                if code >= 500 || code == 429 || code == 408 { return .wait("the gateway answered HTTP \(code) for the source photo") }
                return .refuse(code == 404 || code == 410 ? .mediaNotFound : .invalidRequest,
                               "the source photo could not be fetched to send inline (HTTP \(code))")
            }
            bytes = Array(buffer: try await response.body.collect(upTo: 256 << 20))
        } catch is NIOTooManyBytesError {
            return .refuse(.invalidRequest, "the source photo is larger than 256 MB")
        } catch {
            return .wait("the gateway did not serve the source photo: \(error)")
        }
        let side = Self.longSide(of: fields["size"]?.stringValue)
        let limit = maxImageBytes
        let fitted: FittedImage
        do {
            fitted = try await NIOThreadPool.singleton.runIfActive {
                try ImageCodec.fit(bytes, maxSide: side, maxBytes: limit, maxPixels: 200_000_000)
            }
        } catch let error as ImagingError {
            return .refuse(.invalidRequest, "the source photo cannot be sent inline: \(error.message)")
        } catch {
            return .wait("could not prepare the source photo: \(error)")
        }
        logger.info("source photo sent inline", metadata: [
            "bytes": "\(fitted.bytes.count)", "size": "\(fitted.width)x\(fitted.height)", "reencoded": "\(fitted.reencoded)",
        ])
        fields["image"] = .string("data:\(fitted.mediaType);base64,\(Data(fitted.bytes).base64EncodedString())")
        return .input(.object(fields))
    }

    /// Why RunPod cannot fetch the photos with this delivery, or nil: `url` while the media links
    /// are not public sends RunPod links it cannot reach (it answers "Invalid image URL").
    func unreachableLinks(with delivery: ImageDelivery) async -> String? {
        guard delivery == .url else { return nil }
        let host = URL(string: mediaBaseURL)?.host ?? mediaBaseURL
        guard await !PublicAddress.isPublic(host: host, resolve: resolve) else { return nil }
        return "runpodImageDelivery is url but MEDIA_BASE_URL (\(mediaBaseURL)) is not a public address, so RunPod cannot "
            + "fetch the photos; set runpodImageDelivery to auto or inline, or MEDIA_BASE_URL to the gateway's public URL"
    }

    /// Whether `link` goes inline: one of the gateway's media links, with `inline`, or with `auto`
    /// while `MEDIA_BASE_URL` is not public. Decided before anything connects anywhere.
    func sendsInline(_ link: String, delivery: ImageDelivery) async -> Bool {
        guard delivery != .url, link.hasPrefix(mediaBaseURL + "/") else { return false }
        guard delivery == .auto else { return true }
        guard let host = URL(string: mediaBaseURL)?.host else { return true }
        return await !PublicAddress.isPublic(host: host, resolve: resolve)
    }

    /// The long side the model works at: the larger of Kontext's `size` ("W*H"); 2048 when absent.
    static func longSide(of size: String?) -> Int {
        let sides = (size ?? "").split(separator: "*").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard sides.count == 2, let largest = sides.max(), largest >= 64 else { return 2048 }
        return min(largest, 4096)
    }
}
