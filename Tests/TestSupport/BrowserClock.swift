import Foundation
import Shared
import Timing

/// The page's clock under the test's hand, as Playwright's `clock.fastForward` and Jest's fake
/// timers do: a test that checks what the page does after a while (the library's idle refresh every
/// 15 s, the status line that clears after 20 s) jumps the page's time forward instead of waiting
/// for it. Installed in every page before its own scripts run; until a test fast-forwards, every
/// timer fires at its real time, so a test that never does sees the page as a user would.
///
/// Only `setTimeout`/`clearTimeout` and `Date.now` are taken over — all the admin UI uses to keep
/// time (`new Date(value)` only formats stored times).
extension Browser {
    /// Makes every page this browser loads from now on keep time by ``fastForward(_:)`` as well as
    /// by the wall clock (Chromium's `Page.addScriptToEvaluateOnNewDocument`, through chromedriver's
    /// CDP command).
    func installClock() async throws {
        _ = try await command(.POST, "/goog/cdp/execute", [
            "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": ["source": .string(Self.clockScript)],
        ])
    }

    /// Jumps the page's time forward by `duration`: `Date.now` moves on, and every timer due by then
    /// fires at once, earliest first, each once (a timer set meanwhile counts from the new time).
    /// Returns how many fired.
    @discardableResult
    public func fastForward(_ duration: Duration) async throws -> Int {
        let fired = try await execute("return window.__testClock.fastForward(arguments[0])", [.int(duration.wholeMilliseconds)])
        guard let count = fired.intValue else { throw Failure(description: "the page has no test clock (\(fired.encodedText))") }
        return count
    }

    static let clockScript = """
        (() => {
          const realSetTimeout = window.setTimeout.bind(window);
          const realClearTimeout = window.clearTimeout.bind(window);
          const realNow = Date.now.bind(Date);
          let offset = 0;
          const pending = new Map();
          Date.now = () => realNow() + offset;
          window.setTimeout = (callback, delay = 0, ...args) => {
            const wait = Math.max(0, Number(delay) || 0);
            const id = realSetTimeout(() => {
              pending.delete(id);
              if (typeof callback === "function") callback(...args);
            }, wait);
            pending.set(id, { due: Date.now() + wait, callback, args });
            return id;
          };
          window.clearTimeout = (id) => {
            pending.delete(id);
            realClearTimeout(id);
          };
          window.__testClock = {
            fastForward(milliseconds) {
              offset += milliseconds;
              const now = Date.now();
              const due = [...pending].filter(([, timer]) => timer.due <= now).sort((a, b) => a[1].due - b[1].due);
              let fired = 0;
              for (const [id, timer] of due) {
                if (!pending.has(id)) continue; // cleared by a timer that fired before it
                pending.delete(id);
                realClearTimeout(id);
                fired += 1;
                // A callback that throws is an uncaught error of the page, as from a real timer; the
                // others still fire.
                try {
                  if (typeof timer.callback === "function") timer.callback(...timer.args);
                } catch (error) {
                  realSetTimeout(() => { throw error; }, 0);
                }
              }
              return fired;
            },
          };
        })();
        """
}
