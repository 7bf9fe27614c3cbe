import Foundation

/// Browsers lent to the tests of a suite one at a time, and reset between them: starting
/// chromedriver and a headless Chromium costs ~1 s of CPU and ~0.7 s on an idle two-core machine
/// (several seconds in a loaded test run), and a suite of browser tests starts dozens. A test whose
/// body throws gives its browser up (it is quit: a page that stopped answering, an open dialog);
/// otherwise the browser comes back through ``giveBack(_:)``, which ``Browser/reset()``s it — the
/// reset, not the test's outcome, is what keeps one test's state from the next (a failed `#expect`
/// does not throw). The suite ends with ``drain()``, which quits every browser it holds.
public actor BrowserPool {
    /// The pool of the suite a test runs in (see ``withPool(_:)``); nil outside one.
    @TaskLocal public static var current: BrowserPool?

    private var idle: [Browser] = []
    private var started = 0
    private var lent = 0

    public init() {}

    /// Runs `body` with a pool as ``current``, then quits every browser left in it, however `body` ends.
    public static func withPool<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let pool = BrowserPool()
        do {
            let result = try await $current.withValue(pool) { try await body() }
            await pool.drain()
            return result
        } catch {
            await pool.drain()
            throw error
        }
    }

    /// An idle browser, its screenshots going to `screenshots`, or a new one when none is idle.
    public func borrow(screenshots: URL) async throws -> Browser {
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        if let browser = idle.popLast() {
            browser.screenshots = screenshots
            lent += 1
            return browser
        }
        let browser = try await Browser.start(screenshots: screenshots)
        started += 1
        lent += 1
        return browser
    }

    /// Takes back a browser whose test's body returned: reset and kept for the next test, or quit
    /// when the reset fails.
    public func giveBack(_ browser: Browser) async {
        do {
            try await browser.reset()
            idle.append(browser)
        } catch {
            await browser.quit()
        }
    }

    /// Quits every idle browser; says how many tests the browsers served.
    public func drain() async {
        let leaving = idle
        idle = []
        for browser in leaving { await browser.quit() }
        FileHandle.standardError.write(Data("browser pool: \(lent) tests served by \(started) browsers\n".utf8))
    }
}
