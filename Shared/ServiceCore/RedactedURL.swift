import Foundation

/// How an address is named in what a job says (its error, which the status API, the ledger and the
/// admin UI show) and in logs: without its query, fragment and user info — a signed link's
/// signature, a presigned storage URL's credentials, a password — and at most 200 characters; "?…"
/// says a query was there.
public func redactedURL(_ address: String) -> String {
    if var parts = URLComponents(string: address), parts.scheme != nil {
        let hadQuery = parts.query != nil
        parts.query = nil
        parts.fragment = nil
        parts.user = nil
        parts.password = nil
        if let shown = parts.string { return String(shown.prefix(200)) + (hadQuery ? "?…" : "") }
    }
    // Not parsed: the text up to its query, without whatever stands before an "@" in its authority.
    let cut = address.firstIndex { $0 == "?" || $0 == "#" }
    var path = String(address[..<(cut ?? address.endIndex)])
    if let scheme = path.range(of: "://") {
        let authority = path[scheme.upperBound...].prefix { $0 != "/" }
        if let at = authority.lastIndex(of: "@") { path.removeSubrange(scheme.upperBound...at) }
    }
    return String(path.prefix(200)) + (cut != nil ? "?…" : "")
}
