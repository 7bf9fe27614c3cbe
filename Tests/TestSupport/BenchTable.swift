import Foundation

/// Helpers the benchmarks share for printing Markdown tables of figures.
public enum BenchTable {
    /// The options `parse` reads from the command line; a malformed command line prints why on
    /// standard error and exits with status 64 (EX_USAGE) instead of trapping with a backtrace.
    public static func options<Options>(_ parse: () throws -> Options) -> Options {
        do {
            return try parse()
        } catch {
            FileHandle.standardError.write(Data("\(CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "bench"): \(error)\n".utf8))
            exit(64)
        }
    }

    /// `value` right-aligned in `width` characters.
    public static func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
        let text = "\(value)"
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// A comma-separated list of integers from a command-line argument.
    public static func integers(_ text: String?) throws -> [Int] {
        guard let values = text?.split(separator: ",").compactMap({ Int($0) }), !values.isEmpty else {
            throw FixtureError(message: "expected a comma-separated list of integers")
        }
        return values
    }
}
