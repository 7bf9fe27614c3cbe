/// What an image file is, read from its first bytes: the type is sniffed from content, never
/// trusted from a file name or a Content-Type header.
public struct SniffedImage: Sendable, Equatable {
    public var mimeType: String
    public var fileExtension: String
    /// The size as the image is meant to be seen: a JPEG whose EXIF orientation turns it a quarter
    /// (5...8, a phone held upright) has its stored width and height swapped here.
    public var width: Int
    public var height: Int

    public init(mimeType: String, fileExtension: String, width: Int, height: Int) {
        self.mimeType = mimeType
        self.fileExtension = fileExtension
        self.width = width
        self.height = height
    }

    public var pixels: Int { width * height }
}

/// An upload judged from its bytes, without decoding pixels (``ImageSniffer/inspect(_:)``).
public enum ImageInspection: Sendable, Equatable {
    case image(SniffedImage)
    /// Not PNG, JPEG, WebP or GIF at all.
    case notAnImage
    /// One of those formats, but its header is damaged or the file ends before the image does.
    case damaged(format: String, reason: String)
}

/// Recognises PNG, JPEG, WebP and GIF from their headers and reads their dimensions without
/// decoding pixels.
public enum ImageSniffer {
    /// The header as ``sniff(_:)`` reads it, and whether the file is whole: a PNG ends with its IEND
    /// chunk, a JPEG has an end-of-image marker after its scan, a GIF ends with its trailer and a
    /// WebP holds as many bytes as its RIFF header says. Cheap (one pass, no pixels decoded), so an
    /// upload can be refused before anything downstream decodes it.
    public static func inspect(_ bytes: [UInt8]) -> ImageInspection {
        guard let format = format(of: bytes) else { return .notAnImage }
        if format == "JPEG" {
            // One walk of the segments finds the frame, the orientation and the end after the scan.
            let walked = jpeg(bytes, toTheEnd: true)
            guard let image = walked.image else { return .damaged(format: format, reason: "its JPEG header is damaged or cut short") }
            guard walked.ends else {
                return .damaged(format: format, reason: "the file ends before the image does (no end-of-image marker after the scan; \(bytes.count) bytes)")
            }
            return .image(image)
        }
        guard let image = sniff(bytes) else {
            return .damaged(format: format, reason: "its \(format) header is damaged or cut short")
        }
        if let missing = truncation(bytes, format: format) {
            return .damaged(format: format, reason: "the file ends before the image does (\(missing); \(bytes.count) bytes)")
        }
        return .image(image)
    }

    /// "PNG", "JPEG", "WebP" or "GIF", judged from the signature alone; nil for anything else.
    public static func format(of bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "PNG" }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "JPEG" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "WebP" }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) { return "GIF" }
        return nil
    }

    /// What is missing from the end of a file whose header is sound; nil when it is whole.
    private static func truncation(_ b: [UInt8], format: String) -> String? {
        switch format {
        case "PNG":
            // The IEND chunk: length 0, type, CRC. Tolerates a little trailing junk after it.
            let iend: [UInt8] = [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
            let tail = b.suffix(1024)
            return tail.indices.contains { tail[$0...].starts(with: iend) } ? nil : "no IEND chunk"
        case "WebP":
            let declared = Int(b[4]) | Int(b[5]) << 8 | Int(b[6]) << 16 | Int(b[7]) << 24
            return declared + 8 <= b.count ? nil : "the RIFF header declares \(declared + 8) bytes"
        case "GIF":
            return b.last(where: { $0 != 0 }) == 0x3B ? nil : "no GIF trailer"
        default:
            return nil
        }
    }

    /// Nil when the bytes are not one of the supported image types or the header is damaged.
    public static func sniff(_ bytes: [UInt8]) -> SniffedImage? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return png(bytes) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return jpeg(bytes, toTheEnd: false).image }
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

    /// Walks a JPEG's segments: the first start-of-frame gives the size (turned by an EXIF
    /// orientation that comes before it). With `toTheEnd`, the walk goes on to the start-of-scan and
    /// says whether an end-of-image marker (FF D9) follows it: inside entropy-coded data an FF byte
    /// is always followed by 00 (stuffing) or a restart marker, so the first FF D9 after the scan
    /// header is the real end; an EXIF thumbnail's own markers sit inside APP1 and are stepped over
    /// with it.
    private static func jpeg(_ b: [UInt8], toTheEnd: Bool) -> (image: SniffedImage?, ends: Bool) {
        var offset = 2
        var orientation = 1
        var image: SniffedImage?
        while offset + 3 < b.count {
            guard b[offset] == 0xFF else { return (image, false) }
            let marker = b[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            if marker == 0xD9 { return (image, false) }  // the end before any scan
            let length = be16(b, offset + 2)
            guard length >= 2 else { return (image, false) }
            if marker == 0xE1, orientation == 1, image == nil,
               let found = exifOrientation(b, segment: offset + 4, end: min(b.count, offset + 2 + length)) {
                orientation = found
            }
            // Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
            if image == nil, (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard offset + 9 < b.count else { return (nil, false) }
                let width = be16(b, offset + 7), height = be16(b, offset + 5)
                // 5...8 turn the picture a quarter: what is seen is height wide.
                let turned = (5...8).contains(orientation)
                image = valid(SniffedImage(
                    mimeType: "image/jpeg", fileExtension: "jpg", width: turned ? height : width, height: turned ? width : height))
                guard image != nil, toTheEnd else { return (image, false) }
            }
            if marker == 0xDA {
                var i = offset + 2 + length
                while i + 1 < b.count {
                    if b[i] == 0xFF, b[i + 1] == 0xD9 { return (image, true) }
                    i += 1
                }
                return (image, false)
            }
            offset += 2 + length
        }
        return (image, false)
    }

    /// The EXIF orientation (1...8) in an APP1 segment whose payload starts at `segment`, nil when it
    /// is not EXIF or has no valid orientation tag. Every offset is checked against `end`.
    static func exifOrientation(_ b: [UInt8], segment: Int, end: Int) -> Int? {
        guard segment + 14 <= end, Array(b[segment..<segment + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] else { return nil }
        let tiff = segment + 6
        let little: Bool
        switch (b[tiff], b[tiff + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ i: Int) -> Int? {
            guard i >= tiff, i + 2 <= end else { return nil }
            return little ? le16(b, i) : be16(b, i)
        }
        func u32(_ i: Int) -> Int? {
            guard let low = u16(little ? i : i + 2), let high = u16(little ? i + 2 : i) else { return nil }
            return high << 16 | low
        }
        guard u16(tiff + 2) == 42, let ifd = u32(tiff + 4), let count = u16(tiff + ifd) else { return nil }
        for entry in 0..<min(count, 512) {
            let at = tiff + ifd + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112 {
                guard u16(at + 2) == 3, let value = u16(at + 8), (1...8).contains(value) else { return nil }
                return value
            }
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
