// The media library view: the shared UI state, the status line, the grid with its pager and
// selection, and uploads.
import { api, session, showImage } from "./api.js";
import { $, el, thumbnailSize } from "./dom.js";
import { openAI } from "./ai.js";
import { openDetails } from "./details.js";

// `selected`: id → the media as it was when selected, so a batch names items chosen on another page too.
export const state = { page: 1, pageSize: 24, collection: "PRODUCTS", total: 0, items: [], selected: new Map(), settings: {} };

// MARK: Settings (read for defaults)

export async function loadSettings() {
  try {
    state.settings = (await api("GET", "/api/ai-image/settings")).settings;
  } catch (error) {
    status(`Settings could not be read: ${error.message}`);
  }
}

// MARK: Media grid

// A status line clears itself after a while, so an old message is not read as news.
let statusTimer = null;
export function status(text) {
  $("#status").textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { if ($("#status").textContent === text) $("#status").textContent = ""; }, 20000);
}

let pageRequest = 0;

export async function loadPage() {
  if (!session.token) return;
  const request = ++pageRequest;
  const query = new URLSearchParams({ page: state.page, pageSize: state.pageSize });
  if (state.collection) query.set("collection", state.collection);
  let answer;
  try {
    answer = await api("GET", `/api/media?${query}`);
  } catch (error) {
    if (request !== pageRequest) return;
    // The grid still shows the page it showed: the pager goes back to it.
    const asked = state.page;
    state.page = state.shownPage || 1;
    status(`Page ${asked} could not be loaded: ${error.message}. Still showing page ${state.page}.`);
    return;
  }
  if (request !== pageRequest) return; // a newer page was asked for meanwhile
  state.items = answer.items;
  state.total = answer.total;
  state.shownPage = state.page;
  const pages = Math.max(1, Math.ceil(answer.total / state.pageSize));
  if (state.page > pages) { state.page = pages; return loadPage(); }
  $("#page-info").textContent = `Page ${state.page} of ${pages} · ${answer.total} item${answer.total === 1 ? "" : "s"}`;
  $("#prev-page").disabled = state.page <= 1;
  $("#next-page").disabled = state.page >= pages;
  $("#empty").hidden = answer.items.length > 0;
  // Keep the keyboard focus on the same control of the same tile across the re-render.
  const focused = document.activeElement?.closest?.(".tile") ? document.activeElement : null;
  const focusKey = focused && [focused.closest(".tile").dataset.mediaId, focused.className];
  $("#grid").replaceChildren(...answer.items.map(tile));
  if (focusKey) document.querySelector(`.tile[data-media-id="${focusKey[0]}"] .${focusKey[1].split(" ")[0]}`)?.focus();
  updateSelection();
}

/**
 * After a dialog closes: the grid again, with the focus on the control that opened the dialog; when
 * that item is gone (deleted at grid position `removedAt`), on the tile that took its place (the
 * last one if it was last; the library itself when none is left), never on the page.
 */
export function refreshAfterDialog(opener, removedAt) {
  const key = opener?.closest?.(".tile") && [opener.closest(".tile").dataset.mediaId, opener.className.split(" ")[0]];
  loadPage().then(() => {
    if (key) {
      document.querySelector(`.tile[data-media-id="${key[0]}"] .${key[1]}`)?.focus();
    } else if (removedAt >= 0) {
      const thumbs = document.querySelectorAll("#grid .tile .thumb");
      (thumbs[Math.min(removedAt, thumbs.length - 1)] ?? $("#content")).focus();
    }
  });
}

function tile(item) {
  const name = item.originalName || item.id;
  const img = el("img", { alt: name, loading: "lazy" });
  // The server's thumbnail, never the full file: a tile must not decode a 50-megapixel photo.
  showImage(img, `${item.thumbnailUrl}?size=${thumbnailSize(220)}`, item.currentVersionId);
  const checkbox = el("input", {
    type: "checkbox", class: "select", "aria-label": `Select ${name}`, checked: state.selected.has(item.id),
    onchange: (event) => {
      if (event.target.checked) state.selected.set(item.id, item); else state.selected.delete(item.id);
      li.classList.toggle("selected", event.target.checked);
      updateSelection();
    },
  });
  const li = el("li", { class: `tile${state.selected.has(item.id) ? " selected" : ""}`, "data-media-id": item.id },
    el("button", { type: "button", class: "thumb", "aria-label": `Details of ${name}`, onclick: () => openDetails(item) }, img),
    checkbox,
    el("div", { class: "meta" }, el("span", { class: "name", title: name, text: name }),
      el("span", { class: "dims", text: `${item.width}×${item.height}` })));
  if (item.collection === "PRODUCTS" && item.mimeType.startsWith("image/")) {
    li.append(el("button", { type: "button", class: "ai", "aria-label": `AI generate for ${name}`, onclick: () => openAI(item) },
      el("span", { class: "sparkle", "aria-hidden": "true" }), "AI"));
  }
  return li;
}

export function updateSelection() {
  const count = state.selected.size;
  const button = $("#batch-generate");
  button.textContent = `AI Generate (${count})`;
  button.disabled = count === 0;
  $("#clear-selection").disabled = count === 0;
}

$("#collection").addEventListener("change", (event) => {
  state.collection = event.target.value;
  state.page = 1;
  loadPage();
});
$("#prev-page").addEventListener("click", () => { state.page -= 1; loadPage(); });
$("#next-page").addEventListener("click", () => { state.page += 1; loadPage(); });
$("#clear-selection").addEventListener("click", () => { state.selected.clear(); loadPage(); });

// MARK: Upload

async function upload(files) {
  const images = [...files].filter((file) => file.type.startsWith("image/") || file.type === "");
  if (images.length === 0) { status("Nothing to upload: choose PNG, JPEG, WebP or GIF images."); return; }
  const collection = state.collection || "PRODUCTS";
  let done = 0;
  const failures = [];
  for (const file of images) {
    status(`Uploading ${done + 1} of ${images.length}: ${file.name}…`);
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("collection", collection);
    try {
      await api("POST", "/api/media", form);
      done += 1;
    } catch (error) {
      failures.push(`${file.name}: ${error.message}`);
    }
  }
  status(`Uploaded ${done} of ${images.length}.${failures.length ? " Refused: " + failures.join("; ") : ""}`);
  state.page = 1;
  await loadPage();
}

$("#file-input").addEventListener("change", (event) => {
  upload(event.target.files);
  event.target.value = "";
});
const dropzone = $("#dropzone");
for (const target of [dropzone, $("#grid")]) {
  target.addEventListener("dragover", (event) => { event.preventDefault(); dropzone.classList.add("over"); });
  target.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    upload(event.dataTransfer.files);
  });
}
