// The media library view: the shared UI state, the status line, the grid with its pager and
// selection, and uploads.
import { api, session, showImage } from "./api.js";
import { $, distinctNames, el, onePressAtATime, status, thumbnailSize } from "./dom.js";
import { showToast } from "./toast.js";
import { openAI } from "./ai.js";
import { openDetails } from "./details.js";

// `selected`: id → the media as it was when selected, so a batch names items chosen on another page too.
// `query`: what the grid lists (search, state filter, order, trash); `anchor`: the tile a shift-click
// selects from; `activeId`: the tile whose controls take Tab (the others are reached by the arrow keys).
export const state = {
  page: 1, pageSize: 24, collection: "PRODUCTS", total: 0, items: [], selected: new Map(), settings: {},
  query: { q: "", state: "", sort: "newest", trash: false }, anchor: null, activeId: null,
};

/** The most one "Select all" takes: one batch's worth. */
const SELECT_ALL_LIMIT = 500;

// MARK: Settings (read for defaults)

/** Reads the settings again; resolves to the error when they could not be read (the old ones stay), else null. */
export async function loadSettings({ quiet = false } = {}) {
  try {
    state.settings = (await api("GET", "/api/ai-image/settings")).settings;
    return null;
  } catch (error) {
    if (!quiet) status(`Settings could not be read: ${error.message}`);
    return error;
  }
}

// MARK: Media grid

let pageRequest = 0;
let liveTimer = null;
/** What the grid shows, to redraw it only when the page changed. */
let shownSignature = "";
/**
 * The page is read again this often while a shown item is being generated (its badge follows), and
 * less often while none is — work started elsewhere (another tab, the API, a script) shows up too.
 * Not while the page is out of view.
 */
const LIVE_MS = 3000;
const IDLE_MS = 15000;

/** The list query for the grid as it is set up (page `page`, `size` a page). */
function listQuery(page, size) {
  const query = new URLSearchParams({ page, pageSize: size, sort: state.query.sort });
  if (state.collection) query.set("collection", state.collection);
  if (state.query.q) query.set("q", state.query.q);
  if (state.query.trash) query.set("trash", "true");
  else if (state.query.state) query.set("state", state.query.state);
  return query;
}

/** Loads the page the pager says. `quiet`: a background refresh, which says nothing when it fails. */
export async function loadPage({ quiet = false } = {}) {
  if (!session.token) return;
  const request = ++pageRequest;
  clearTimeout(liveTimer);
  let answer;
  try {
    answer = await api("GET", `/api/media?${listQuery(state.page, state.pageSize)}`);
  } catch (error) {
    if (request !== pageRequest) return;
    if (quiet) { scheduleLive(IDLE_MS); return; }
    // The grid still shows the page it showed: the pager goes back to it.
    const asked = state.page;
    state.page = state.shownPage || 1;
    status(`Page ${asked} could not be loaded: ${error.message}. Still showing page ${state.page}.`);
    scheduleLive(IDLE_MS); // the grid goes on following what happens elsewhere
    return;
  }
  if (request !== pageRequest) return; // a newer page was asked for meanwhile
  const inProgress = answer.items.some((item) => item.state === "inProgress");
  const signature = JSON.stringify([state.query, state.page, state.pageSize, answer]);
  // A background read that finds the page as shown leaves the grid (and the hover, the focus) alone;
  // one that finds it changed waits while the user is clicking or typing in it (a shift-click range
  // must land on the tiles the user saw).
  if (quiet && signature === shownSignature) { scheduleLive(inProgress ? LIVE_MS : IDLE_MS); return; }
  if (quiet && Date.now() - lastGridInput < 2000) { scheduleLive(1000); return; }
  shownSignature = signature;
  state.items = answer.items;
  state.total = answer.total;
  state.shownPage = state.page;
  const pages = Math.max(1, Math.ceil(answer.total / state.pageSize));
  if (state.page > pages) { state.page = pages; return loadPage(); }
  $("#page-info").textContent = `Page ${state.page} of ${pages} · ${answer.total} item${answer.total === 1 ? "" : "s"}`;
  $("#prev-page").disabled = state.page <= 1;
  $("#next-page").disabled = state.page >= pages;
  $("#empty").hidden = answer.items.length > 0;
  $("#empty").textContent = emptyText();
  // Keep the keyboard focus on the same control of the same tile across the re-render.
  const focused = document.activeElement?.closest?.(".tile") ? document.activeElement : null;
  const focusKey = focused && [focused.closest(".tile").dataset.mediaId, focused.className];
  // Where tiles share a file name their controls are told apart: "(2 of 3)" after it.
  const spoken = distinctNames(answer.items.map((item) => item.originalName || item.id));
  $("#grid").replaceChildren(...answer.items.map((item, index) => tile(item, index, spoken[index])));
  $("#select-all").textContent = `Select all ${answer.total}`;
  const active = document.querySelector(`#grid .tile[data-media-id="${focusKey?.[0] ?? state.activeId}"]`) ?? $("#grid .tile");
  activate(active);
  if (focusKey) {
    // The same control of the same tile; when that item left the page, the same control of the tile
    // now active, or the library: never the page.
    const kind = `.${focusKey[1].split(" ")[0]}`;
    (document.querySelector(`.tile[data-media-id="${focusKey[0]}"] ${kind}`) ?? active?.querySelector(kind) ?? $("#content")).focus();
  }
  updateSelection();
  scheduleLive(inProgress ? LIVE_MS : IDLE_MS);
}

// When the user last pressed or clicked in the grid.
let lastGridInput = 0;
for (const kind of ["pointerdown", "keydown"]) $("#grid").addEventListener(kind, () => { lastGridInput = Date.now(); });
// Back in view: the page as it is now, not up to 15 s later.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && session.token) loadPage({ quiet: true });
});

function scheduleLive(milliseconds) {
  clearTimeout(liveTimer);
  liveTimer = setTimeout(() => {
    if (document.visibilityState === "hidden") scheduleLive(milliseconds);
    else loadPage({ quiet: true });
  }, milliseconds);
}

function emptyText() {
  const { q, state: wanted, trash } = state.query;
  if (trash) return q ? `Nothing in the trash is named like “${q}”.` : "The trash is empty.";
  if (q || wanted) return "No media match the search and filter. Clear them to see everything.";
  return "No media in this collection yet.";
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

/** What a tile's badge says for each state (words, never only a colour); none for unprocessed. */
const BADGES = { processed: "Studio shot", inProgress: "Generating…", awaitingReview: "Waiting for review", failed: "Failed" };

function tile(item, index, spoken) {
  const name = item.originalName || item.id;
  const img = el("img", { alt: name, loading: "lazy" });
  // The server's thumbnail, never the full file: a tile must not decode a 50-megapixel photo.
  showImage(img, `${item.thumbnailUrl}?size=${thumbnailSize(220)}`, item.currentVersionId);
  const facts = `${item.width}×${item.height} · ${fileSize(item.size)}`;
  if (state.query.trash) {
    return el("li", { class: "tile trashed", "data-media-id": item.id },
      el("div", { class: "thumb" }, img),
      el("div", { class: "meta" }, el("span", { class: "name", title: name, text: name }),
        el("span", { class: "dims", text: `Deleted ${new Date(item.deletedAt).toLocaleString()}` }),
        item.erasesAt ? el("span", { class: "dims erases", text: `Deleted for good on ${new Date(item.erasesAt).toLocaleDateString()}` }) : ""),
      el("div", { class: "trash-actions" },
        el("button", { type: "button", class: "restore", "aria-label": `Restore ${spoken}`, text: "Restore", onclick: () => restore([item]) }),
        el("button", { type: "button", class: "purge danger", "aria-label": `Delete ${spoken} for good`, text: "Delete for good",
          onclick: (event) => confirmPurge([item], event.currentTarget) })));
  }
  const checkbox = el("input", {
    type: "checkbox", class: "select", "aria-label": `Select ${spoken}`, checked: state.selected.has(item.id),
    // Shift-click, or Shift+Space: every tile from the last one ticked to this one takes this one's new state.
    onclick: (event) => tick(item, index, event.target.checked, event.shiftKey),
    onkeydown: (event) => {
      if (event.key !== " " || !event.shiftKey) return;
      event.preventDefault(); // the range is ticked here, not by the checkbox's own Space
      tick(item, index, !event.target.checked, true);
    },
    // Browsers that click a checkbox on Space's keyup would tick it back.
    onkeyup: (event) => { if (event.key === " " && event.shiftKey) event.preventDefault(); },
  });
  const badge = BADGES[item.state];
  const li = el("li", { class: `tile${state.selected.has(item.id) ? " selected" : ""}`, "data-media-id": item.id, "data-state": item.state },
    el("button", { type: "button", class: "thumb", "aria-label": `Details of ${spoken}`, onclick: () => openDetails(item) }, img),
    checkbox,
    el("div", { class: "meta" }, el("span", { class: "name", title: name, text: name }), el("span", { class: "dims", text: facts }),
      badge ? el("span", { class: `badge ${item.state}`, text: badge }) : ""));
  if (item.collection === "PRODUCTS" && item.mimeType.startsWith("image/")) {
    li.append(el("button", { type: "button", class: "ai", "aria-label": `AI generate for ${spoken}`, onclick: () => openAI(item) },
      el("span", { class: "sparkle", "aria-hidden": "true" }), "AI"));
  }
  return li;
}

/** Ticks (or unticks, `on` false) `item`, shown at `index`, with every tile from the anchor when `range`. */
function tick(item, index, on, range) {
  const from = state.items.findIndex((other) => other.id === state.anchor);
  const items = range && from >= 0 ? state.items.slice(Math.min(from, index), Math.max(from, index) + 1) : [item];
  for (const each of items) select(each, on);
  state.anchor = item.id;
  updateSelection();
}

// MARK: Moving in the grid by keyboard
//
// The grid is one stop of the Tab order, not three per tile (72 a page): only the active tile's
// controls take Tab; the arrow keys move to the same control of the tile before, after, above or
// below, Home and End to the first and the last. A tile becomes active when anything in it gets the
// focus (a click, a dialog giving the focus back), and stays active across redraws.

function activate(tile) {
  state.activeId = tile?.dataset.mediaId ?? null;
  for (const control of $("#grid").querySelectorAll("button, input")) {
    const on = control.closest(".tile") === tile;
    control.tabIndex = on ? 0 : -1;
    // The keys are said where the focus lands (a list's own description is rarely read).
    if (on) control.setAttribute("aria-describedby", "grid-keys"); else control.removeAttribute("aria-describedby");
  }
}

$("#grid").addEventListener("focusin", (event) => {
  const tile = event.target.closest(".tile");
  if (tile && tile.dataset.mediaId !== state.activeId) activate(tile);
});

$("#grid").addEventListener("keydown", (event) => {
  const tile = event.target.closest(".tile");
  if (!tile || event.altKey || event.ctrlKey || event.metaKey) return;
  const tiles = [...$("#grid").children];
  const at = tiles.indexOf(tile);
  // Tiles per row, as laid out now: those on the first tile's line.
  const columns = Math.max(1, tiles.filter((each) => each.offsetTop === tiles[0].offsetTop).length);
  const to = { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowUp: at - columns, ArrowDown: at + columns, Home: 0, End: tiles.length - 1 }[event.key];
  if (to === undefined || event.shiftKey) return;
  event.preventDefault(); // the page does not scroll as well
  const next = tiles[Math.max(0, Math.min(tiles.length - 1, to))];
  // The same control on the other tile (Select on Select, AI on AI); its picture when it has none.
  (next.querySelector(`.${event.target.classList[0]}`) ?? next.querySelector("button, input")).focus();
});

function fileSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** Selects or unselects one item, in the state and on its tile when shown. */
function select(item, on) {
  if (on) state.selected.set(item.id, item); else state.selected.delete(item.id);
  const li = document.querySelector(`#grid .tile[data-media-id="${item.id}"]`);
  if (!li) return;
  li.classList.toggle("selected", on);
  li.querySelector(".select").checked = on;
}

export function updateSelection() {
  const count = state.selected.size;
  const button = $("#batch-generate");
  button.textContent = `AI Generate (${count})`;
  button.disabled = count === 0;
  $("#clear-selection").disabled = count === 0;
  $("#delete-selected").disabled = count === 0;
  $("#download-selected").disabled = count === 0;
  $("#download-selected").textContent = count ? `Download selected (${count})` : "Download selected";
  $("#delete-selected").textContent = count ? `Delete selected (${count})` : "Delete selected";
}

// MARK: Search, filter, order, trash

function showFromStart() {
  state.page = 1;
  state.anchor = null;
  loadPage();
}

let searchTimer = null;
$("#search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const words = event.target.value.trim();
    if (words === state.query.q) return;
    state.query.q = words;
    showFromStart();
  }, 300);
});
$("#filters").addEventListener("submit", (event) => event.preventDefault());
$("#state-filter").addEventListener("change", (event) => { state.query.state = event.target.value; showFromStart(); });
$("#sort").addEventListener("change", (event) => { state.query.sort = event.target.value; showFromStart(); });

// The trash is the library's other view: the same search and order, a Restore on each tile, and
// nothing that generates or selects.
$("#show-trash").addEventListener("click", () => {
  const trash = !state.query.trash;
  state.query.trash = trash;
  $("#show-trash").setAttribute("aria-pressed", String(trash));
  $("#show-trash").textContent = trash ? "Back to the library" : "Trash";
  $("#trash-title").hidden = !trash;
  for (const control of ["#state-filter", "label[for='state-filter']", "#select-page", "#select-all", "#batch-generate",
    "#download-selected", "#delete-selected", "#clear-selection", "label[for='file-input']", "#dropzone", "#grid-keys-tick"]) {
    $(control).hidden = trash;
  }
  $("#empty-trash").hidden = !trash;
  showFromStart();
});

// MARK: Selection

$("#select-page").addEventListener("click", () => {
  for (const item of state.items) select(item, true);
  updateSelection();
});

// Every item the search and filter match, a page of 200 at a time, at most one batch's worth. What
// took items out of the selection meanwhile wins (Clear selection, a deletion, a batch started with
// what was selected so far): no page answered after it is selected.
let clears = 0;
$("#select-all").addEventListener("click", async () => {
  const button = $("#select-all");
  button.disabled = true;
  const cleared = clears;
  let kept = state.selected.size;
  try {
    let taken = 0;
    let total = 0;
    for (let page = 1; taken < SELECT_ALL_LIMIT; page += 1) {
      const answer = await api("GET", `/api/media?${listQuery(page, 200)}`);
      if (clears !== cleared || state.selected.size < kept) {
        status(clears !== cleared ? "Select all stopped: the selection was cleared." : "Select all stopped: items left the selection meanwhile.");
        return;
      }
      total = answer.total;
      for (const item of answer.items.slice(0, SELECT_ALL_LIMIT - taken)) select(item, true);
      updateSelection(); // page by page, so Clear selection can be pressed while the rest is read
      kept = state.selected.size;
      taken += answer.items.length;
      if (answer.items.length < 200) break;
    }
    status(total > SELECT_ALL_LIMIT
      ? `Selected the first ${SELECT_ALL_LIMIT} of ${total} (the most one batch takes).`
      : `Selected all ${total}.`);
  } catch (error) {
    status(`Could not select everything: ${error.message}`);
  } finally {
    button.disabled = false;
  }
});

// MARK: Trash and undo

/**
 * Moves `items` to the trash, with an undo toast that brings them all back. Returns the items
 * moved and, for each one that was not, why (`{ item, message }`).
 */
export async function moveToTrash(items) {
  const moved = [];
  const failures = [];
  for (const item of items) {
    try {
      await api("DELETE", `/api/media/${item.id}`);
      moved.push(item);
      state.selected.delete(item.id);
    } catch (error) {
      failures.push({ item, message: error.message });
    }
  }
  updateSelection();
  if (failures.length) status(`Not deleted: ${failures.map((f) => `${f.item.originalName || f.item.id}: ${f.message}`).join("; ")}`);
  if (moved.length) {
    const what = moved.length === 1 ? (moved[0].originalName || moved[0].id) : `${moved.length} images`;
    showToast(`Moved ${what} to the trash.`, async () => {
      await restoreAll(moved);
      return `Restored ${what}.`;
    });
  }
  return { moved, failures };
}

async function restoreAll(items) {
  for (const item of items) await api("POST", `/api/media/${item.id}/restore`);
  await loadPage();
}

async function restore(items) {
  const name = items.length === 1 ? (items[0].originalName || items[0].id) : `${items.length} images`;
  const index = state.items.findIndex((item) => item.id === items[0].id);
  try {
    await restoreAll(items);
    status(`Restored ${name} to the library.`);
    // Its tile is gone from the trash: the focus goes to the one that took its place.
    const buttons = document.querySelectorAll("#grid .tile .restore");
    (buttons[Math.min(index, buttons.length - 1)] ?? $("#content")).focus();
  } catch (error) {
    status(`Could not restore ${name}: ${error.message}`);
  }
}

// Deleting for good: only from the trash, and only after the dialog says what cannot be undone.
// `items` null: the whole trash. Cancelling gives the focus back to the button that asked. `asked`
// counts the dialog's openings: a deletion answered after the dialog was closed and opened again
// for something else leaves that dialog alone.
const purging = { items: null, opener: null, asked: 0, cutoff: null };

function confirmPurge(items, opener) {
  purging.asked += 1;
  // Emptying the trash takes what is in it when the question is asked, nothing trashed after (by
  // someone who may still undo it): the newest deletion now, a millisecond on, is the cutoff.
  purging.cutoff = items === null
    ? api("GET", "/api/media?trash=true&sort=newest&pageSize=1").then((page) => {
      const newest = page.items?.[0]?.deletedAt;
      return new Date(newest ? Date.parse(newest) + 1 : 0).toISOString();
    })
    : null;
  purging.cutoff?.catch(() => {}); // read (and its failure shown) when the deletion is confirmed
  // A deletion asked for before may still be waiting for its answer: this one can be confirmed.
  $("#purge-confirm").disabled = false;
  purging.items = items;
  purging.opener = opener;
  const what = items === null ? "Everything in the trash"
    : items.length === 1 ? `“${items[0].originalName || items[0].id}”` : `${items.length} images`;
  $("#purge-what").textContent = `${what} will be deleted for good.`;
  $("#purge-error").textContent = "";
  $("#purge-confirm").textContent = items === null ? "Empty the trash" : "Delete for good";
  $("#purge-modal").showModal();
}

$("#empty-trash").addEventListener("click", (event) => confirmPurge(null, event.currentTarget));
$("#purge-modal").addEventListener("close", () => {
  // The grid may have been redrawn meanwhile (a live refresh): the same control of the same tile.
  const opener = purging.opener;
  const tile = opener?.closest?.(".tile")?.dataset.mediaId;
  const again = opener?.isConnected ? opener : tile && document.querySelector(`.tile[data-media-id="${tile}"] .purge`);
  again?.focus();
  purging.opener = null;
});

$("#purge-confirm").addEventListener("click", async () => {
  const { items, asked, cutoff: cutoffAnswer } = purging;
  const button = $("#purge-confirm");
  const stillAsked = () => purging.asked === asked && $("#purge-modal").open;
  const index = items ? state.items.findIndex((item) => item.id === items[0].id) : 0;
  button.disabled = true;
  try {
    let deleted = 0;
    if (items === null) {
      // Only what was in the trash when this was asked: an item someone moved there since (and may
      // still undo) stays.
      const cutoff = await cutoffAnswer;
      deleted = (await api("DELETE", `/api/media/trash?deletedBefore=${encodeURIComponent(cutoff)}`)).deleted;
    } else {
      for (const item of items) {
        await api("DELETE", `/api/media/${item.id}?permanently=true`);
        deleted += 1;
      }
    }
    const closesIt = stillAsked();
    if (closesIt) {
      purging.opener = null;
      $("#purge-modal").close();
    }
    status(deleted === 1 && items ? `Deleted ${items[0].originalName || items[0].id} for good.`
      : `Deleted ${deleted} ${deleted === 1 ? "image" : "images"} for good.`);
    await loadPage();
    // The user moved on meanwhile (closed the dialog and went elsewhere, or opened another): the
    // focus stays where they put it.
    if (document.querySelector("dialog[open]") || (!closesIt && document.activeElement !== document.body)) return;
    // The tile is gone: the focus goes to the one that took its place, or to the page.
    const buttons = document.querySelectorAll("#grid .tile .purge");
    (buttons[Math.min(index, buttons.length - 1)] ?? $("#content")).focus();
  } catch (error) {
    if (stillAsked()) $("#purge-error").textContent = `Not deleted: ${error.message}`;
    else status(`Not deleted: ${error.message}`);
  } finally {
    if (purging.asked === asked) button.disabled = false;
  }
});

// One deletion at a time: pressed again while the first ran, the same items were deleted twice and
// two toasts raced, the later one's Undo restoring only part of them.
$("#delete-selected").addEventListener("click", () => onePressAtATime($("#delete-selected"), async () => {
  const items = [...state.selected.values()];
  if (items.length === 0) return;
  await moveToTrash(items);
  await loadPage();
  $("#content").focus();
}));

$("#collection").addEventListener("change", (event) => {
  state.collection = event.target.value;
  state.page = 1;
  loadPage();
});
$("#prev-page").addEventListener("click", () => { state.page -= 1; loadPage(); });
$("#next-page").addEventListener("click", () => { state.page += 1; loadPage(); });
// At once, on the tiles shown too: a tick right after Clear must not meet a tile still checked.
$("#clear-selection").addEventListener("click", () => {
  clears += 1;
  for (const item of [...state.selected.values()]) select(item, false);
  state.anchor = null;
  updateSelection();
});

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
