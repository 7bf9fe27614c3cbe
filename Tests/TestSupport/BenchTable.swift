/// Helpers the benchmarks share for printing Markdown tables of figures.
public enum BenchTable {
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
