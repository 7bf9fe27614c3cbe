// Cyclorama's admin media manager: plain ES modules over the public HTTP API (docs/api.md), one
// per view: library.js (grid, selection, uploads), ai.js (one image), batch.js, variations.js,
// details.js (versions), settings.js (settings and the RunPod key). This one signs in and starts.
import { api, forgetImages, session } from "./api.js";
import { $ } from "./dom.js";
import { loadPage, loadSettings } from "./library.js";
import "./batch.js";
import { openExport } from "./export.js";
import "./settings.js";

// What gets the focus or is scrolled to stays clear of the sticky toolbar, whose height changes as
// it wraps (a phone's is several rows): the page keeps that much room at its top.
const toolbar = $(".toolbar");
new ResizeObserver(() => {
  document.documentElement.style.scrollPaddingTop = `${toolbar.offsetHeight + 8}px`;
}).observe(toolbar);

// MARK: Sign-in

function showSignin(message = "") {
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  $("#token").focus();
}

async function showApp() {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  await loadSettings();
  await loadPage();
  // Signed in: the focus goes to the library (the sign-in form it was on is gone), unless the user
  // already took it somewhere in the library while it loaded (a slow answer must not pull it away).
  if (!$("#app").contains(document.activeElement)) $("#content").focus();
}

function signOut(message = "") {
  session.token = null;
  forgetImages();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  showSignin(message);
}

session.onUnauthorized = (message) => signOut(`Signed out: ${message}`);

// Only the latest sign-in (or sign-out) counts: an earlier attempt answered late — a refused token
// after the right one went through — must not sign the user out, nor a late success sign them in.
let signins = 0;
$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (!token) return;
  const attempt = ++signins;
  session.token = token;
  try {
    await api("GET", "/api/ai-image/settings");
    if (attempt !== signins) return;
    $("#token").value = "";
    await showApp();
  } catch (error) {
    if (attempt !== signins) return;
    session.token = null;
    showSignin(error.status === 401 || error.status === 403 ? `This token was refused: ${error.message}` : error.message);
  }
});
$("#sign-out").addEventListener("click", () => {
  signins += 1;
  signOut("Signed out.");
});
$("#download-selected").addEventListener("click", openExport);

// The dialogs' forms only group controls: Enter must never submit (and so close or reload) them.
for (const form of document.querySelectorAll("dialog form:not(#settings-form):not(#keys-form)")) {
  form.addEventListener("submit", (event) => event.preventDefault());
}
for (const button of document.querySelectorAll("[data-close]")) {
  button.addEventListener("click", () => button.closest("dialog").close());
}

// MARK: Start

if (session.token) {
  showApp().catch((error) => showSignin(error.message));
} else {
  showSignin();
}
