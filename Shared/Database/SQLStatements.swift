/// Splits SQL text into statements at top-level semicolons.
///
/// Semicolons inside single-quoted strings, double-quoted identifiers, dollar-quoted bodies
/// (`$$ ... $$`, `$fn$ ... $fn$`), `--` line comments and `/* */` block comments do not split.
/// Enough for hand-written migrations; not a SQL parser.
public enum SQLStatements {
    public static func split(_ sql: String) -> [String] {
        let text = Array(sql.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0

        func flush() {
            let statement = String(current).trimmingWhitespace()
            if !statement.isEmpty, !isOnlyComments(statement) { statements.append(statement) }
            current = String.UnicodeScalarView()
        }
        /// Copies text up to and including `terminator` (or to the end).
        func copy(until terminator: [Unicode.Scalar]) {
            while index < text.count {
                if text[index...].starts(with: terminator) {
                    current.append(contentsOf: terminator)
                    index += terminator.count
                    return
                }
                current.append(text[index])
                index += 1
            }
        }

        while index < text.count {
            let scalar = text[index]
            let next = index + 1 < text.count ? text[index + 1] : nil
            switch scalar {
            case ";":
                index += 1
                flush()
            case "'", "\"":
                // A doubled quote inside ('it''s') closes and reopens: the result is the same.
                current.append(scalar)
                index += 1
                copy(until: [scalar])
            case "-" where next == "-":
                copy(until: ["\n"])
            case "/" where next == "*":
                current.append(contentsOf: ["/", "*"])
                index += 2
                copy(until: ["*", "/"])
            case "$":
                if let tag = dollarTag(in: text, at: index) {
                    current.append(contentsOf: tag)
                    index += tag.count
                    copy(until: tag)
                } else {
                    current.append(scalar)
                    index += 1
                }
            default:
                current.append(scalar)
                index += 1
            }
        }
        flush()
        return statements
    }

    /// `$tag$` starting at `start` (tag letters, digits, underscore), or nil (`$1` is a parameter).
    private static func dollarTag(in text: [Unicode.Scalar], at start: Int) -> [Unicode.Scalar]? {
        var end = start + 1
        while end < text.count, text[end] != "$" {
            let scalar = text[end]
            let isTagCharacter = scalar == "_" || scalar.properties.isAlphabetic || (end > start + 1 && ("0"..."9").contains(scalar))
            guard isTagCharacter else { return nil }
            end += 1
        }
        guard end < text.count else { return nil }
        return Array(text[start...end])
    }

    private static func isOnlyComments(_ statement: String) -> Bool {
        statement.split(separator: "\n").allSatisfy { line in
            let trimmed = String(line).trimmingWhitespace()
            return trimmed.isEmpty || trimmed.hasPrefix("--")
        }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
