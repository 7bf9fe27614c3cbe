// Knowing when things finish: an ended job or batch is said in the page (the undo toast, with Undo
// when it can be taken back) and, when the user allowed it and the page is not in view, by the
// browser's own notification. Also the undo of a generation: back to the version before it.
import { api } from "./api.js";
import { showToast } from "./toast.js";

/** Says `text` in the page (with Undo running `undo`, when given) and, if allowed and the page is hidden, as a notification. */
export function announce(text, undo) {
  showToast(text, undo);
  notifyIfAway(text);
}

/** Says `text` by the browser's notification when the user allowed it and the page is out of view. */
export function notifyIfAway(text) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted" || document.visibilityState === "visible") return;
  try {
    new Notification("Cyclorama", { body: text, tag: "cyclorama" });
  } catch { /* a browser without page notifications (some phones): the page says it */ }
}

/** Asks once for the browser's notifications (a click is needed for the question); resolves to the answer. */
export async function allowNotifications() {
  if (typeof Notification === "undefined") return "unsupported";
  if (Notification.permission !== "default") return Notification.permission;
  return Notification.requestPermission();
}

/**
 * Wires a "Tell me when it ends" `button` (with `aria-pressed`) and its `said` line: a click asks
 * for the browser's notifications and says what the answer means. Used by the AI dialog and the batch.
 */
export function offerNotifications(button, said) {
  const show = (answer) => {
    button.setAttribute("aria-pressed", String(answer === "granted"));
    const text = answer === "granted"
      ? "The browser will tell you when it ends, also when this page is not in view."
      : answer === "default" ? said.dataset.initial
        : "The browser does not allow notifications for this page; the page itself will say when it ends.";
    // Called on every progress update: the same words are not written again (nor read out again).
    if (said.textContent !== text) said.textContent = text;
  };
  said.dataset.initial = said.textContent;
  button.addEventListener("click", async () => show(await allowNotifications()));
  // The answer given in one dialog holds in the other.
  return () => show(typeof Notification === "undefined" ? "unsupported" : Notification.permission);
}

/**
 * Takes back what job `jobId` did to media `mediaId`: when the version it made is still the
 * current one, the version before it is made current again (a `revert`, so the history keeps
 * both). Returns false when the media changed since (nothing is done then).
 */
export async function undoGeneration(mediaId, jobId) {
  const history = await api("GET", `/api/media/${mediaId}/versions`);
  const made = history.versions.find((version) => version.jobId === jobId);
  if (!made || made.id !== history.currentVersionId) return false;
  // Every version became current when it was added, so the one numbered just before was current then.
  const before = history.versions.find((version) => version.number === made.number - 1);
  if (!before) return false;
  try {
    // Checked again by the server with the revert itself: a change between the two calls is kept.
    await api("POST", `/api/media/${mediaId}/revert/${before.id}?ifCurrent=${made.id}`);
  } catch (error) {
    if (error.code === "image_changed") return false;
    throw error;
  }
  return true;
}
