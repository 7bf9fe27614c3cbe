import Foundation

/// Writes a ZIP archive one entry at a time, so an export of hundreds of images is streamed and
/// never held whole: ``entry(named:data:modified:)`` gives an entry's bytes to send now,
/// ``finish()`` the central directory that ends the archive.
///
/// Entries are stored (method 0): the images are compressed already, and deflating them again
/// would cost CPU for a percent or two. Names are UTF-8 (flag bit 11). The archive grows past
/// 4 GiB with ZIP64 records (an offset or size that does not fit 32 bits is written in a ZIP64
/// extra field, and a ZIP64 end record is added), which unzip, Python, macOS and Windows read;
/// `zip64Threshold` lowers the point where they start, for tests. Modification times are written
/// twice: as MS-DOS fields (local time without a zone, written in UTC) and in an extended-timestamp
/// field (0x5455, seconds since 1970 in UTC), which unzip, 7-Zip and libarchive prefer, so a file
/// extracted anywhere has its true time.
struct ZipWriter {
    private struct Central {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt64
        var offset: UInt64
        var time: UInt16
        var date: UInt16
        var unixTime: UInt32
    }

    private var entries: [Central] = []
    /// Bytes written so far: where the next local header starts.
    private(set) var offset: UInt64 = 0
    let zip64Threshold: UInt64

    init(zip64Threshold: UInt64 = UInt64(UInt32.max)) {
        self.zip64Threshold = zip64Threshold
    }

    struct TooLarge: Error, CustomStringConvertible {
        var description: String { "one entry of a ZIP archive is at most 4 GiB here" }
    }

    /// The local header and data of one stored entry (at most 4 GiB).
    mutating func entry(named name: String, data: [UInt8], modified: Date) throws -> [UInt8] {
        guard UInt64(data.count) < UInt64(UInt32.max) else { throw TooLarge() }
        let (time, date) = Self.dosTime(modified)
        let seconds = modified.timeIntervalSince1970.rounded(.down)
        let entry = Central(
            name: Array(name.utf8), crc: Self.crc32(data), size: UInt64(data.count), offset: offset, time: time, date: date,
            unixTime: UInt32(bitPattern: Int32(max(0, min(Double(Int32.max), seconds)))))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(30 + entry.name.count + Self.timestampFieldSize + data.count)
        bytes.append32(0x0403_4b50)
        bytes.append16(20) // version needed: 2.0 (the local header never needs ZIP64: sizes fit)
        bytes.append16(0x0800) // UTF-8 names
        bytes.append16(0) // stored
        bytes.append16(time)
        bytes.append16(date)
        bytes.append32(entry.crc)
        bytes.append32(UInt32(entry.size))
        bytes.append32(UInt32(entry.size))
        bytes.append16(UInt16(entry.name.count))
        bytes.append16(UInt16(Self.timestampFieldSize))
        bytes += entry.name
        bytes.appendTimestamp(entry.unixTime)
        bytes += data
        entries.append(entry)
        offset += UInt64(bytes.count)
        return bytes
    }

    /// The central directory and the end records; the archive is complete after these bytes.
    mutating func finish() -> [UInt8] {
        let start = offset
        var bytes: [UInt8] = []
        for entry in entries {
            let far = entry.offset >= zip64Threshold
            bytes.append32(0x0201_4b50)
            bytes.append16(far ? 45 : 20) // made by: 4.5 / 2.0, MS-DOS attributes
            bytes.append16(far ? 45 : 20)
            bytes.append16(0x0800)
            bytes.append16(0)
            bytes.append16(entry.time)
            bytes.append16(entry.date)
            bytes.append32(entry.crc)
            bytes.append32(UInt32(entry.size))
            bytes.append32(UInt32(entry.size))
            bytes.append16(UInt16(entry.name.count))
            bytes.append16(UInt16((far ? 12 : 0) + Self.timestampFieldSize)) // extra fields: the ZIP64 offset, the time
            bytes.append16(0) // comment
            bytes.append16(0) // disk
            bytes.append16(0) // internal attributes
            bytes.append32(0) // external attributes
            bytes.append32(far ? UInt32.max : UInt32(entry.offset))
            bytes += entry.name
            if far {
                bytes.append16(0x0001)
                bytes.append16(8)
                bytes.append64(entry.offset)
            }
            bytes.appendTimestamp(entry.unixTime)
        }
        let size = UInt64(bytes.count)
        let count = UInt64(entries.count)
        let zip64 = start >= zip64Threshold || size >= zip64Threshold || count >= 0xFFFF
        if zip64 {
            let record = start + size
            bytes.append32(0x0606_4b50) // ZIP64 end of central directory
            bytes.append64(44)
            bytes.append16(45)
            bytes.append16(45)
            bytes.append32(0)
            bytes.append32(0)
            bytes.append64(count)
            bytes.append64(count)
            bytes.append64(size)
            bytes.append64(start)
            bytes.append32(0x0706_4b50) // its locator
            bytes.append32(0)
            bytes.append64(record)
            bytes.append32(1)
        }
        bytes.append32(0x0605_4b50)
        bytes.append16(0)
        bytes.append16(0)
        bytes.append16(zip64 ? 0xFFFF : UInt16(count))
        bytes.append16(zip64 ? 0xFFFF : UInt16(count))
        bytes.append32(zip64 ? UInt32.max : UInt32(size))
        bytes.append32(zip64 ? UInt32.max : UInt32(start))
        bytes.append16(0)
        offset += UInt64(bytes.count)
        return bytes
    }

    /// The extended-timestamp field's size: its header, flags and the modification time.
    static let timestampFieldSize = 9

    /// MS-DOS time and date (local fields, two-second resolution; written in UTC), 1980 at the earliest.
    static func dosTime(_ date: Date) -> (time: UInt16, date: UInt16) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let year = max(1980, min(2107, parts.year ?? 1980))
        let time = UInt16((parts.hour ?? 0) << 11 | (parts.minute ?? 0) << 5 | (parts.second ?? 0) / 2)
        let day = UInt16((year - 1980) << 9 | (parts.month ?? 1) << 5 | (parts.day ?? 1))
        return (time, day)
    }

    private static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// CRC-32 (ISO 3309, as ZIP and PNG use it).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        let table = Self.table
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

private extension [UInt8] {
    /// The extended-timestamp extra field (0x5455) with the modification time only (flag bit 0).
    mutating func appendTimestamp(_ unixTime: UInt32) {
        append16(0x5455)
        append16(5)
        append(0x01)
        append32(unixTime)
    }

    mutating func append16(_ value: UInt16) {
        append(UInt8(value & 0xFF))
        append(UInt8(value >> 8))
    }

    mutating func append32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { append(UInt8((value >> UInt32(shift)) & 0xFF)) }
    }

    mutating func append64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { append(UInt8((value >> UInt64(shift)) & 0xFF)) }
    }
}
