import Foundation
import NIOHTTP1
import Shared

/// A headless Chromium driven over the W3C WebDriver protocol (Debian's `chromium-driver`), for
/// tests of the admin UI in a real browser. One browser per test; ``quit()`` it at the end.
/// `@unchecked`: the `Process` is only started in `start` and stopped in `quit`.
public final class Browser: @unchecked Sendable {
    public struct Element: Sendable {
        public let id: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// W3C's key for an element reference in JSON.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    let driver: Process
    let base: String
    let session: String
    let screenshots: URL
    let log: URL
    /// Where the browser saves downloads (in its scratch folder).
    public let downloads: URL
    /// The folder of this browser's temporary files (chromedriver's and Chromium's `TMPDIR`: the
    /// profile, the process singleton's socket), removed when it quits. Chromium leaves its
    /// singleton's folder behind when it is killed, and /tmp filled with them over many runs.
    let scratch: URL

    /// The window every browser starts with: a laptop's.
    public static let startingWindow = (width: 1280, height: 1000)

    /// Starts chromedriver and a headless browser session, its pages on the test clock
    /// (``fastForward(_:)``); screenshots go to `screenshots`.
    public static func start(screenshots: URL) async throws -> Browser {
        let driverPath = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let driverPath else { throw Failure(description: "chromedriver is not installed (scripts/install-deps.sh installs chromium-driver)") }
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        let port = freePort()
        let log = screenshots.appendingPathComponent("chromedriver-\(port).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cyclorama-browser-\(UUID().uuidString)")
        let downloads = scratch.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: downloads, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driverPath)
        process.arguments = ["--port=\(port)", "--log-path=\(log.path)"]
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": scratch.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(at: scratch)
            throw error
        }
        let base = "http://127.0.0.1:\(port)"
        for _ in 0..<100 {
            if await HTTPProbe.status(of: "\(base)/status") == 200 { break }
            guard process.isRunning else {
                try? FileManager.default.removeItem(at: scratch)
                let tail = (try? String(contentsOf: log, encoding: .utf8))?.suffix(2000) ?? ""
                throw Failure(description: "chromedriver exited at start; its log:\n\(tail)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let capabilities: JSONValue = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": "/usr/bin/chromium",
                "prefs": ["download.default_directory": .string(downloads.path), "download.prompt_for_download": false],
                // The browser's DevTools port from this test process's own ports: left to chromedriver
                // it is port 0, whose pick by the kernel can be a port just handed to a service that
                // has not bound it yet.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", .string("--window-size=\(startingWindow.width),\(startingWindow.height)"),
                         "--disable-extensions", "--no-first-run", .string("--remote-debugging-port=\(freePort())")],
            ],
            "goog:loggingPrefs": ["browser": "ALL"],
        ]]]
        do {
            let answer = try await Self.call(base, .POST, "/session", capabilities)
            guard let session = answer["sessionId"]?.stringValue else {
                throw Failure(description: "no session from chromedriver: \(answer.encodedText.prefix(500))")
            }
            let browser = Browser(driver: process, base: base, session: session, screenshots: screenshots, log: log, scratch: scratch)
            do {
                try await browser.installClock()
            } catch {
                await browser.quit()
                throw error
            }
            return browser
        } catch {
            kill(process.processIdentifier, SIGKILL)
            try? FileManager.default.removeItem(at: scratch)
            throw error
        }
    }

    private init(driver: Process, base: String, session: String, screenshots: URL, log: URL, scratch: URL) {
        self.driver = driver
        self.base = base
        self.session = session
        self.screenshots = screenshots
        self.log = log
        self.scratch = scratch
        self.downloads = scratch.appendingPathComponent("downloads")
    }

    /// The bytes of the download saved as `name`, once the browser has finished writing it.
    public func downloaded(_ name: String, timeout: Duration = .seconds(30)) async throws -> [UInt8] {
        let file = downloads.appendingPathComponent(name)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let partial = (try? FileManager.default.contentsOfDirectory(atPath: downloads.path))?.contains { $0.hasSuffix(".crdownload") } ?? false
            if !partial, let data = FileManager.default.contents(atPath: file.path) { return Array(data) }
            try await Task.sleep(for: .milliseconds(100))
        }
        let saved = (try? FileManager.default.contentsOfDirectory(atPath: downloads.path)) ?? []
        throw Failure(description: "no download \(name) within \(timeout); saved: \(saved)")
    }

    // MARK: Commands

    /// Resizes the browser window (the viewport follows), as a laptop or a phone would be.
    public func setWindowSize(width: Int, height: Int) async throws {
        _ = try await command(.POST, "/window/rect", ["width": .int(width), "height": .int(height)])
    }

    public func go(_ url: String) async throws {
        _ = try await command(.POST, "/url", ["url": .string(url)])
    }

    /// The first element matching `css` now, or nil.
    public func find(_ css: String) async throws -> Element? {
        let answer = try await command(.POST, "/elements", ["using": "css selector", "value": .string(css)])
        return answer.arrayValue?.first?[Self.elementKey]?.stringValue.map(Element.init)
    }

    public func findAll(_ css: String) async throws -> [Element] {
        let answer = try await command(.POST, "/elements", ["using": "css selector", "value": .string(css)])
        return (answer.arrayValue ?? []).compactMap { $0[Self.elementKey]?.stringValue.map(Element.init) }
    }

    /// Waits until an element matching `css` is displayed.
    public func waitFor(_ css: String, timeout: Duration = .seconds(30)) async throws -> Element {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let element = try await find(css), try await isDisplayed(element) { return element }
            try await Task.sleep(for: .milliseconds(100))
        }
        _ = try? await screenshot("timeout")
        throw Failure(description: "no visible \(css) after \(timeout)")
    }

    /// Waits until `script` (a function body returning a value) returns true. `advancing`: what the
    /// page waits for is a timer of its own (an idle refresh), so each time the script says no, the
    /// page's clock jumps forward by that much (``fastForward(_:)``) — the test waits for the page's
    /// work, not for its timers.
    public func waitUntil(_ what: String, timeout: Duration = .seconds(60), advancing: Duration? = nil, script: String) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await execute(script).boolValue == true { return }
            if let advancing { try await fastForward(advancing) }
            try await Task.sleep(for: .milliseconds(200))
        }
        _ = try? await screenshot("timeout")
        // Where the page stood, for a failure seen only in a CI log: the focus, and the status line.
        let stood = try? await execute("""
            const focus = document.activeElement;
            return `focus on ${focus?.id || focus?.getAttribute?.('aria-label') || focus?.tagName}, status "${document.querySelector('#status')?.textContent ?? ''}"`
            """).stringValue
        throw Failure(description: "not within \(timeout): \(what) (\(stood ?? "the page did not answer"))")
    }

    /// Clicks `element`. One in the window but under a sticky bar (a dialog's footer on a phone) is
    /// scrolled to the middle of what holds it first, as a user would scroll to reach it; one that
    /// stays covered (a dialog in front of it) still fails.
    public func click(_ element: Element) async throws {
        do {
            _ = try await command(.POST, "/element/\(element.id)/click", [:])
        } catch let failure as Failure where failure.description.contains("element click intercepted") {
            _ = try await execute("arguments[0].scrollIntoView({ block: 'center' })", [.object([Self.elementKey: .string(element.id)])])
            _ = try await command(.POST, "/element/\(element.id)/click", [:])
        }
    }

    /// Clicks the element `css` names, finding it again if the page re-rendered it meanwhile.
    public func click(_ css: String) async throws {
        for attempt in 1...5 {
            do {
                return try await click(try await waitFor(css))
            } catch let failure as Failure where failure.description.contains("stale element") && attempt < 5 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Types into an element (for a file input: a local file path).
    public func type(_ text: String, into element: Element) async throws {
        _ = try await command(.POST, "/element/\(element.id)/value", ["text": .string(text)])
    }

    public func clear(_ element: Element) async throws {
        _ = try await command(.POST, "/element/\(element.id)/clear", [:])
    }

    public func text(_ element: Element) async throws -> String {
        try await command(.GET, "/element/\(element.id)/text").stringValue ?? ""
    }

    public func text(_ css: String) async throws -> String {
        try await text(try await waitFor(css))
    }

    public func property(_ name: String, of element: Element) async throws -> JSONValue {
        try await command(.GET, "/element/\(element.id)/property/\(name)")
    }

    public func isDisplayed(_ element: Element) async throws -> Bool {
        try await command(.GET, "/element/\(element.id)/displayed").boolValue ?? false
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    public func execute(_ script: String, _ args: [JSONValue] = []) async throws -> JSONValue {
        try await command(.POST, "/execute/sync", ["script": .string(script), "args": .array(args)])
    }

    /// Sends keys to whatever has the focus (e.g. "\u{E004}" is Tab, "\u{E007}" Enter).
    public func press(_ keys: String) async throws {
        let actions: [JSONValue] = keys.unicodeScalars.flatMap { scalar -> [JSONValue] in
            [["type": "keyDown", "value": .string(String(scalar))], ["type": "keyUp", "value": .string(String(scalar))]]
        }
        _ = try await command(.POST, "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": .array(actions)]]])
    }

    /// Presses `key` while Control is held (e.g. "z" for Ctrl+Z).
    public func pressWithControl(_ key: String) async throws {
        try await press(key, holding: "\u{E009}")
    }

    /// Presses `key` while Shift is held (e.g. "\u{E004}" for Shift+Tab).
    public func pressWithShift(_ key: String) async throws {
        try await press(key, holding: "\u{E008}")
    }

    private func press(_ key: String, holding modifier: String) async throws {
        let actions: [JSONValue] = [
            ["type": "keyDown", "value": .string(modifier)], ["type": "keyDown", "value": .string(key)],
            ["type": "keyUp", "value": .string(key)], ["type": "keyUp", "value": .string(modifier)],
        ]
        _ = try await command(.POST, "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": .array(actions)]]])
    }

    /// Saves a PNG of the page as `<name>.png` in the screenshot folder.
    @discardableResult
    public func screenshot(_ name: String) async throws -> URL {
        let encoded = try await command(.GET, "/screenshot").stringValue ?? ""
        guard let data = Data(base64Encoded: encoded) else { throw Failure(description: "the screenshot is not base64") }
        let file = screenshots.appendingPathComponent("\(name).png")
        try data.write(to: file)
        return file
    }

    /// The browser console's entries of level SEVERE (errors), as text.
    public func consoleErrors() async throws -> [String] {
        let entries = try await command(.POST, "/se/log", ["type": "browser"]).arrayValue ?? []
        return entries.filter { $0["level"]?.stringValue == "SEVERE" }.map { $0["message"]?.stringValue ?? $0.encodedText }
    }

    /// Ends the session, which closes the browser, then stops chromedriver. SIGKILL: a child of the
    /// test runner may inherit a mask that blocks SIGTERM. Runs even when the test was cancelled (a
    /// time limit): the cleanup is its own task.
    public func quit() async {
        let (base, session, driver) = (base, session, driver)
        defer { try? FileManager.default.removeItem(at: scratch) }
        await Task {
            _ = try? await Self.call(base, .DELETE, "/session/\(session)", nil)
            kill(driver.processIdentifier, SIGKILL)
            for _ in 0..<50 where driver.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
        }.value
    }

    deinit {
        if driver.isRunning { kill(driver.processIdentifier, SIGKILL) }
    }

    // MARK: Wire

    func command(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await Self.call(base, method, "/session/\(session)\(path)", body)
    }

    static func call(_ base: String, _ method: HTTPMethod, _ path: String, _ body: JSONValue?) async throws -> JSONValue {
        let answer = try await HTTPProbe.send(
            method, base + path, headers: [("Content-Type", "application/json; charset=utf-8")],
            body: body.map { Array($0.encodedText.utf8) }, timeout: .seconds(60))
        let decoded = (try? JSONDecoder().decode(JSONValue.self, from: Data(answer.body))) ?? .null
        guard answer.status == 200 else {
            let error = decoded["value"]?["message"]?.stringValue ?? answer.text
            throw Failure(description: "WebDriver \(method) \(path): \(answer.status) \(error.prefix(800))")
        }
        return decoded["value"] ?? .null
    }
}
