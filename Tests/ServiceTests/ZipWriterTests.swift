@testable import ApiGateway
import Foundation
import Testing
import TestSupport

/// The export's ZIP writer, read back by Python's zipfile (which checks every CRC).
@Suite("ZIP writer")
struct ZipWriterTests {
    func archive(_ entries: [(String, [UInt8])], zip64Threshold: UInt64 = UInt64(UInt32.max)) throws -> [UInt8] {
        var zip = ZipWriter(zip64Threshold: zip64Threshold)
        var bytes: [UInt8] = []
        for (name, data) in entries { bytes += try zip.entry(named: name, data: data, modified: Date(timeIntervalSince1970: 1_764_000_000)) }
        bytes += zip.finish()
        #expect(zip.offset == UInt64(bytes.count))
        return bytes
    }

    let entries: [(String, [UInt8])] = [
        ("shoe.jpg", (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }),
        ("Café crème — 木.png", Array("not really a png".utf8)),
        ("empty.txt", []),
    ]

    @Test func entriesComeBackWithTheirNamesAndBytes() async throws {
        let read = try await ZipReader.entries(of: try archive(entries))
        #expect(read.map(\.name) == entries.map(\.0))
        #expect(read.map(\.bytes) == entries.map(\.1))
    }

    /// Past 4 GiB the offsets go into ZIP64 records; the threshold is lowered so every entry after
    /// the first and the directory itself need them.
    @Test func zip64RecordsAreReadByOthers() async throws {
        let read = try await ZipReader.entries(of: try archive(entries, zip64Threshold: 1))
        #expect(read.map(\.name) == entries.map(\.0))
        #expect(read.map(\.bytes) == entries.map(\.1))
    }

    /// The times survive extraction in any time zone: Info-ZIP's unzip, run in New York, gives each
    /// file the moment it was written (from the extended-timestamp field; the MS-DOS fields alone
    /// would be read as New York's local time, five hours off), with the ZIP64 records too.
    @Test(arguments: [UInt64(UInt32.max), 1])
    func extractedFilesKeepTheirTimeInAnyTimeZone(zip64Threshold: UInt64) throws {
        let folder = try TestEnvironment.scratchDirectory()
        let file = folder.appendingPathComponent("export.zip")
        try Data(try archive(entries, zip64Threshold: zip64Threshold)).write(to: file)
        let unzip = Process()
        unzip.executableURL = URL(fileURLWithPath: "/usr/bin/unzip")
        unzip.arguments = ["-q", "-o", file.path, "-d", folder.appendingPathComponent("out").path]
        unzip.environment = ["TZ": "America/New_York", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"]
        try unzip.run()
        unzip.waitUntilExit()
        #expect(unzip.terminationStatus == 0)
        for (name, _) in entries {
            let path = folder.appendingPathComponent("out").appendingPathComponent(name).path
            let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
            #expect(modified == Date(timeIntervalSince1970: 1_764_000_000), "\(name): \(String(describing: modified))")
        }
    }

    @Test func crcAndDatesAreTheStandardOnes() {
        #expect(ZipWriter.crc32(Array("123456789".utf8)) == 0xCBF4_3926, "the CRC-32 check value")
        #expect(ZipWriter.crc32([]) == 0)
        // 2025-11-24 15:33:20 UTC: DOS date (45 << 9 | 11 << 5 | 24), time (15 << 11 | 33 << 5 | 20 / 2).
        let (time, date) = ZipWriter.dosTime(Date(timeIntervalSince1970: 1_763_998_400))
        #expect(date == UInt16(45 << 9 | 11 << 5 | 24) && time == UInt16(15 << 11 | 33 << 5 | 10), "\(date) \(time)")
    }

    @Test func entryNamesAreUniqueWhateverTheCaseAndSafeEverywhere() {
        var names = ExportController.EntryNames()
        #expect(names.unique("Shoe", extension: "jpg") == "Shoe.jpg")
        #expect(names.unique("shoe", extension: "jpg") == "shoe (2).jpg")
        #expect(names.unique("SHOE", extension: "jpg") == "SHOE (3).jpg")
        #expect(names.unique("shoe", extension: "png") == "shoe.png")
        #expect(ExportController.target(of: "image/gif", format: "original", resized: true) == .png)
        #expect(ExportController.target(of: "image/webp", format: "original", resized: true) == .webp)
        #expect(ExportController.target(of: "image/png", format: "original", resized: false) == nil)
        #expect(ExportController.target(of: "image/png", format: "jpeg", resized: false) == .jpeg)
    }

    @Test func entryNamesAreSafeOnEverySystem() {
        #expect(ExportController.safeName("a:b?.jpg") == "a_b_")
        #expect(ExportController.safeName("CON.jpg") == "CON_" && ExportController.safeName("com1.png") == "com1_")
        #expect(ExportController.safeName("console.jpg") == "console")
        #expect(ExportController.safeName(" ..hidden.jpg") == "hidden")
        #expect(ExportController.safeName("....") == nil)
        let long = ExportController.safeName(String(repeating: "靴", count: 300) + ".jpg")
        #expect(long.map { $0.utf8.count <= 200 && $0.allSatisfy { $0 == "靴" } } == true, "cut at a character, within 200 bytes")
        #expect(ExportController.safeName(String(repeating: "a", count: 199) + " b.jpg")?.hasSuffix(" ") == false, "no trailing space after the cut")
    }
}
