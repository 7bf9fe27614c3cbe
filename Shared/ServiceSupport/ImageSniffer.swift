/// What an image file is, read from its first bytes: the type is sniffed from content, never
/// trusted from a file name or a Content-Type header.
public struct SniffedImage: Sendable, Equatable {
    public var mimeType: String
    public var fileExtension: String
    public var width: Int
    public var height: Int
}

/// Recognises PNG, JPEG, WebP and GIF from their headers and reads their dimensions without
/// decoding pixels.
public enum ImageSniffer {
    /// Nil when the bytes are not one of the supported image types or the header is damaged.
    public static func sniff(_ bytes: [UInt8]) -> SniffedImage? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return png(bytes) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return jpeg(bytes) }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            return webp(bytes)
        }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) {
            guard bytes.count >= 10 else { return nil }
            return valid(SniffedImage(
                mimeType: "image/gif", fileExtension: "gif", width: le16(bytes, 6), height: le16(bytes, 8)))
        }
        return nil
    }

    private static func png(_ b: [UInt8]) -> SniffedImage? {
        // The IHDR chunk comes first: length (4), "IHDR" (4), width (4), height (4).
        guard b.count >= 24, Array(b[12..<16]) == Array("IHDR".utf8) else { return nil }
        return valid(SniffedImage(mimeType: "image/png", fileExtension: "png", width: be32(b, 16), height: be32(b, 20)))
    }

    private static func jpeg(_ b: [UInt8]) -> SniffedImage? {
        var offset = 2
        while offset + 9 < b.count {
            guard b[offset] == 0xFF else { return nil }
            let marker = b[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            let length = be16(b, offset + 2)
            guard length >= 2 else { return nil }
            // Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                return valid(SniffedImage(
                    mimeType: "image/jpeg", fileExtension: "jpg", width: be16(b, offset + 7), height: be16(b, offset + 5)))
            }
            offset += 2 + length
        }
        return nil
    }

    private static func webp(_ b: [UInt8]) -> SniffedImage? {
        guard b.count >= 30 else { return nil }
        let chunk = String(decoding: b[12..<16], as: UTF8.self)
        switch chunk {
        case "VP8 ":  // lossy: frame tag (3), start code (3), 14-bit width and height
            return valid(SniffedImage(
                mimeType: "image/webp", fileExtension: "webp", width: le16(b, 26) & 0x3FFF, height: le16(b, 28) & 0x3FFF))
        case "VP8L":  // lossless: signature 0x2F, then 14-bit width-1 and height-1
            guard b[20] == 0x2F else { return nil }
            let bits = Int(b[21]) | Int(b[22]) << 8 | Int(b[23]) << 16 | Int(b[24]) << 24
            return valid(SniffedImage(
                mimeType: "image/webp", fileExtension: "webp", width: (bits & 0x3FFF) + 1, height: ((bits >> 14) & 0x3FFF) + 1))
        case "VP8X":  // extended: 24-bit canvas width-1 and height-1
            return valid(SniffedImage(
                mimeType: "image/webp", fileExtension: "webp", width: le24(b, 24) + 1, height: le24(b, 27) + 1))
        default:
            return nil
        }
    }

    private static func valid(_ image: SniffedImage) -> SniffedImage? {
        image.width > 0 && image.height > 0 ? image : nil
    }

    private static func be16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    private static func be32(_ b: [UInt8], _ i: Int) -> Int { be16(b, i) << 16 | be16(b, i + 2) }
    private static func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    private static func le24(_ b: [UInt8], _ i: Int) -> Int { le16(b, i) | Int(b[i + 2]) << 16 }
}
