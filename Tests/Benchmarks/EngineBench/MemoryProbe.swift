import Foundation
import Imaging

/// Peak RSS of one 4000x4000 render, measured in a child process so the parent's own memory does
/// not count: the child reads VmHWM from /proc/self/status after rendering.
enum MemoryProbe {
    static let side = 4000

    static func parent(scene: SampleScene) throws {
        let input = try makeInput(from: scene)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("engine-bench-\(UUID()).jpg")
        try Data(input).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: child.executableURL!.path),
            let path = Bundle.main.executablePath
        {
            child.executableURL = URL(fileURLWithPath: path)
        }
        child.arguments = ["--memory-child", file.path]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        print("\n## \(side)x\(side) JPEG (\(input.count / 1024) KiB) -> white, soft shadow, PNG: peak memory")
        print(String(decoding: data, as: UTF8.self), terminator: "")
    }

    static func child(arguments: [String]) throws {
        guard let path = arguments.first else { throw BenchError("--memory-child needs a file") }
        let before = residentKiB(field: "VmHWM:")
        let pipeline = try StudioShotPipeline(configuration: try benchConfiguration())
        let input = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try pipeline.render(StudioShotRequest(image: input, background: .white, shadow: .soft))
        let elapsed = milliseconds(since: start)
        let peak = residentKiB(field: "VmHWM:")
        print("  result     \(result.width)x\(result.height), \(result.encoded.count / 1024) KiB in \(elapsed) ms")
        print("  stages     \(result.timings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        print("  peak RSS   \(peak / 1024) MB (process start \(before / 1024) MB; target <= 400)")
    }

    /// A 4000x4000 JPEG made by enlarging a dev scene 4x (nearest pixels are fine for memory).
    static func makeInput(from scene: SampleScene) throws -> [UInt8] {
        let image = try RasterImage(decoding: scene.input)
        let rgb = image.rgbAsStored()
        var big = [UInt8](repeating: 255, count: side * side * 3)
        big.withUnsafeMutableBufferPointer { out in
            rgb.withUnsafeBufferPointer { src in
                for y in 0..<side {
                    let sy = min(image.height - 1, y * image.height / side)
                    for x in 0..<side {
                        let sx = min(image.width - 1, x * image.width / side)
                        for c in 0..<3 { out[(y * side + x) * 3 + c] = src[(sy * image.width + sx) * 3 + c] }
                    }
                }
            }
        }
        return try ImageCodec.encode(big, width: side, height: side, bands: 3, format: .jpeg)
    }

    static func residentKiB(field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }
}
