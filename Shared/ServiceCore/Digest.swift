import Crypto
import Foundation

/// Hashing and comparing secrets the way every service does it: one place, so a fix reaches all.
public enum Digest {
    /// Lowercase hex of `bytes` (64 characters for a SHA-256).
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The SHA-256 of `bytes` as lowercase hex.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// Whether `a` and `b` are equal, looking at every byte whatever differs (and at the longer
    /// one's length), so the time taken says nothing about where they differ.
    public static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        let a = Array(a), b = Array(b)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
