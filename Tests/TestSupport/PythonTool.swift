import Foundation

/// A program from the tests' Python tools (scripts/python-tools.txt, installed in `.var/venv` by
/// `make python-tools`, which `make test` runs): RunPod's SDK, schemathesis, a generated client,
/// an independent AMQP client. Run with a deadline, its output to a file, so a hung tool can
/// neither block a thread of the test pool nor outlive its test: it is killed then.
public enum PythonTool {
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
        /// The last line of output (where the scripts print their JSON report).
        public var lastLine: String { output.split(separator: "\n").last.map(String.init) ?? "" }
        /// The last line read as a JSON object, if it is one.
        public var report: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(lastLine.utf8))) as? [String: Any]
        }
    }

    public static var venv: URL { TestEnvironment.repositoryRoot.appendingPathComponent(".var/venv") }

    /// `.var/venv/bin/<name>`, or why it is missing.
    public static func executable(_ name: String) throws -> URL {
        let url = venv.appendingPathComponent("bin/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw FixtureError(message: "\(url.path) is not installed: run make python-tools (make test does)")
        }
        return url
    }

    /// A script of `Tests/Python/`.
    public static func script(_ name: String) -> String {
        TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Python/\(name)").path
    }

    /// Runs `.var/venv/bin/<program> <arguments>` in `directory` with only `environment` (plus a
    /// PATH and no proxy: every call goes to loopback), until it exits or `deadline` passes.
    public static func run(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil,
        deadline: Duration
    ) async throws -> Outcome {
        let scratch = try TestEnvironment.scratchDirectory(TestEnvironment.uniqueName("python-\(program)"))
        let outputFile = scratch.appendingPathComponent("output.txt")
        guard FileManager.default.createFile(atPath: outputFile.path, contents: nil) else {
            throw FixtureError(message: "could not create \(outputFile.path)")
        }
        let output = try FileHandle(forWritingTo: outputFile)
        let process = Process()
        process.executableURL = try executable(program)
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? scratch
        process.environment = [
            "PATH": venv.appendingPathComponent("bin").path + ":/usr/bin:/bin", "HOME": scratch.path,
            "NO_PROXY": "*", "no_proxy": "*", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        ].merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let end = ContinuousClock.now + deadline
        while process.isRunning, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(200)) }
        var timedOut = false
        if process.isRunning {
            timedOut = true
            process.terminate()
        }
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        try output.close()
        var text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        if timedOut { text += "\n(killed: still running after \(deadline))" }
        return Outcome(status: timedOut ? -1 : process.terminationStatus, output: text)
    }
}
