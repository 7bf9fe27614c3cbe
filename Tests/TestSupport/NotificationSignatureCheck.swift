import Crypto
import Foundation

/// What a receiver of Cyclorama's notifications does with `Cyclorama-Signature`
/// (docs/notifications.md), written from the document and not from the sender's code:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the timestamp recent.
public enum NotificationSignatureCheck {
    public static func verify(_ header: String, body: [UInt8], secret: String, tolerance: Int = 300) -> Bool {
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        guard let t = fields["t"], let timestamp = Int(t), let v1 = fields["v1"],
              abs(Int(Date().timeIntervalSince1970) - timestamp) < tolerance else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(t).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).map { String(format: "%02x", $0) }.joined() == v1
    }
}
