// The undo toast: after an action that can be taken back (moving to the trash, Keep, a revert, a
// batch), a message with Undo for a while. Ctrl+Z (⌘Z) undoes too while it shows, unless the
// focus is in a text field (where Ctrl+Z is the field's own undo).
import { $, status } from "./dom.js";

// `shown` counts the toasts shown: an Undo answered after a newer toast took the place of its own
// leaves that one (and its Undo) alone and says its outcome in the page's status line instead.
const toast = { undo: null, timer: null, shown: 0 };
const SHOWN_MS = 15000;

/** Shows `text` with Undo calling `undo` (an async function; nil: no Undo). */
export function showToast(text, undo) {
  clearTimeout(toast.timer);
  toast.shown += 1;
  toast.undo = undo;
  $("#toast-text").textContent = text;
  $("#toast-undo").hidden = !undo;
  $("#toast-undo").disabled = false;
  $("#toast").hidden = false;
  toast.timer = setTimeout(hideToast, SHOWN_MS);
}

export function hideToast() {
  clearTimeout(toast.timer);
  toast.undo = null;
  // The focus was in the toast: it goes to the library, never to the page.
  if ($("#toast").contains(document.activeElement)) $("#content").focus();
  $("#toast").hidden = true;
}

async function undo() {
  const action = toast.undo;
  if (!action) return;
  toast.undo = null;
  $("#toast-undo").disabled = true;
  clearTimeout(toast.timer);
  const hadFocus = $("#toast").contains(document.activeElement);
  const shown = toast.shown;
  let said;
  try {
    said = (await action()) || "Undone.";
  } catch (error) {
    said = `Could not undo: ${error.message}`;
  }
  if (toast.shown !== shown) {
    status(said);
    return;
  }
  showToast(said, null);
  // Undo is gone from the toast: the focus moves to its close button rather than to the page.
  if (hadFocus) $("#toast-close").focus();
}

$("#toast-undo").addEventListener("click", undo);
$("#toast-close").addEventListener("click", hideToast);
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z" || event.shiftKey || !toast.undo) return;
  if (event.target.closest?.("input:not([type=checkbox]):not([type=radio]), textarea, [contenteditable]")) return;
  if (document.querySelector("dialog[open]")) return;
  event.preventDefault();
  undo();
});
