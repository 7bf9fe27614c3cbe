import Foundation

/// Reads a ZIP archive with Python's `zipfile` (an independent implementation, which checks every
/// CRC and follows ZIP64 records): its entries' names and bytes, in order.
public enum ZipReader {
    public struct Entry: Sendable {
        public var name: String
        public var bytes: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs Python on a thread of its own: a child process waited for on the test pool's two
    /// threads would hold one of them for as long as Python takes to start on a loaded machine.
    public static func entries(of archive: [UInt8]) async throws -> [Entry] {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try entriesWaiting(of: archive) }) }.start()
        }
    }

    private static func entriesWaiting(of archive: [UInt8]) throws -> [Entry] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cyclorama-\(UUID().uuidString).zip")
        try Data(archive).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import base64, json, sys, zipfile
            with zipfile.ZipFile(sys.argv[1]) as archive:
                bad = archive.testzip()
                if bad is not None:
                    sys.exit("bad CRC in " + bad)
                print(json.dumps([[info.filename, base64.b64encode(archive.read(info)).decode()] for info in archive.infolist()]))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, file.path]
        let output = Pipe()
        // Standard error to a file: two pipes read one after the other could fill the second.
        let errorsFile = file.appendingPathExtension("stderr")
        _ = FileManager.default.createFile(atPath: errorsFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorsFile) }
        let errors = try FileHandle(forWritingTo: errorsFile)
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errors.close()
        let problem = (try? Data(contentsOf: errorsFile)) ?? Data()
        guard process.terminationStatus == 0,
              let pairs = try JSONSerialization.jsonObject(with: data) as? [[String]]
        else {
            throw Failure(description: "python's zipfile refused the archive: \(String(decoding: problem, as: UTF8.self))")
        }
        return pairs.map { Entry(name: $0[0], bytes: Array(Data(base64Encoded: $0[1]) ?? Data())) }
    }
}
