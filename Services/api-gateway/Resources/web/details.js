// A media item's details and version history: rename, revert, delete.
import { api, showImage } from "./api.js";
import { $, el, thumbnailSize } from "./dom.js";
import { openComparison } from "./compare.js";
import { downloadVersion } from "./export.js";
import { moveToTrash, refreshAfterDialog } from "./library.js";

// `removedAt`: where the item's tile was in the grid when it was deleted (the focus goes there next).
// `current`: the version shown as current (Download takes it).
const details = { item: null, opener: null, removedAt: undefined, current: null };

export async function openDetails(item) {
  details.item = item;
  details.current = null;
  details.opener = document.activeElement;
  $("#details-title").textContent = item.originalName || item.id;
  $("#details-name").value = item.originalName || "";
  $("#details-error").textContent = "";
  $("#details-status").textContent = "";
  showFacts(item);
  $("#details-versions").replaceChildren();
  $("#details-modal").showModal();
  // The tile may be older than the media (a generation or a revert since the page was read): the
  // facts are the media's as the server has them now.
  let current = item;
  try {
    current = (await api("GET", `/api/media/${item.id}`)).media;
  } catch { /* the tile's facts stay; the history below says what went wrong */ }
  if (details.item?.id !== item.id) return; // closed, or another media's details meanwhile
  // Renamed meanwhile: the rename's answer is the fresher copy; else the server's.
  if (details.item === item) {
    details.item = current;
    showFacts(current);
  }
  await showVersions(details.item);
}

/** The media's facts: type and size are the current version's. */
function showFacts(item) {
  const facts = [["Type", item.mimeType], ["Size", `${item.width}×${item.height} px, ${(item.size / 1024).toFixed(0)} KB`],
    ["Collection", item.collection], ["Uploaded", new Date(item.createdAt).toLocaleString()], ["Id", item.id]];
  $("#details-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
}

async function showVersions(item) {
  let answer;
  try {
    answer = await api("GET", `/api/media/${item.id}/versions`);
  } catch (error) {
    if (details.item?.id === item.id) $("#details-error").textContent = error.message;
    return;
  }
  // The same media (perhaps renamed meanwhile), its dialog still open.
  if (details.item?.id !== item.id || !$("#details-modal").open) return;
  const numbers = new Map(answer.versions.map((version) => [version.id, version.number]));
  details.current = answer.versions.find((version) => version.id === answer.currentVersionId);
  $("#details-versions").replaceChildren(...answer.versions.map((version) => {
    const current = version.id === answer.currentVersionId;
    const img = el("img", { alt: `Version ${version.number}` });
    showImage(img, `/api/media/${item.id}/versions/${version.id}/thumbnail?size=${thumbnailSize(160)}`, version.id);
    // A revert says which version it brought back.
    const restored = version.source === "revert" && numbers.has(version.revertedFromVersionId)
      ? `revert to v${numbers.get(version.revertedFromVersionId)}` : version.source;
    const li = el("li", {}, img, el("div", { text: `v${version.number} · ${restored}${current ? " · current" : ""}` }),
      el("div", { class: "muted", text: new Date(version.createdAt).toLocaleString() }),
      el("button", {
        type: "button", text: "Download", class: "download", "aria-label": `Download version ${version.number}`,
        onclick: () => download(item, version),
      }));
    if (!current) {
      const name = item.originalName || item.id;
      const currentVersion = answer.versions.find((other) => other.id === answer.currentVersionId);
      li.append(el("button", {
        type: "button", text: "Compare", "aria-label": `Compare version ${version.number} with the current one`,
        onclick: () => openComparison({
          title: `${name}: v${version.number} and the current v${currentVersion.number}`,
          before: { path: `/api/media/${item.id}/versions/${version.id}/file`, version: version.id, alt: `Version ${version.number} of ${name}` },
          after: { path: `/api/media/${item.id}/versions/${currentVersion.id}/file`, version: currentVersion.id, alt: `Current version of ${name}` },
        }),
      }));
      li.append(el("button", {
        type: "button", text: "Revert to this", "aria-label": `Revert to version ${version.number}`,
        onclick: () => revert(item, version, currentVersion),
      }));
    }
    return li;
  }));
}
/**
 * Makes `version` current again (a revert: a new version, the history keeps all), then says so in
 * the dialog — the toast would sit behind it — with Undo, which brings back `was` (the version
 * current before) while the revert is still what the image shows.
 */
async function revert(item, version, was) {
  $("#details-error").textContent = "";
  let reverted;
  try {
    reverted = (await api("POST", `/api/media/${item.id}/revert/${version.id}`)).media;
  } catch (error) {
    $("#details-error").textContent = `Could not revert: ${error.message}`;
    return;
  }
  if (!(await refresh(item))) return;
  const undo = el("button", {
    type: "button", id: "details-undo", text: "Undo", "aria-label": `Undo the revert to version ${version.number}`,
    onclick: async () => {
      undo.disabled = true;
      let said;
      try {
        // Only while the revert is what the image shows (checked by the server with the revert itself).
        await api("POST", `/api/media/${item.id}/revert/${was.id}?ifCurrent=${reverted.currentVersionId}`);
        said = `Undone: version ${was.number}'s image is current again.`;
      } catch (error) {
        if (error.code !== "image_changed") {
          undo.disabled = false;
          $("#details-error").textContent = `Could not undo: ${error.message}`;
          return;
        }
        said = "The image changed since; nothing was undone.";
      }
      if (details.item?.id !== item.id) return; // closed, or another item's details meanwhile
      $("#details-status").textContent = said;
      if (await refresh(details.item)) $("#details-status").focus();
    },
  });
  $("#details-status").replaceChildren(`Reverted to version ${version.number}. `, undo);
  // The pressed button is gone with the re-drawn history: the focus goes to what happened.
  undo.focus();
}

/**
 * The media changed: its facts (type, size) and history as they are now. False when the dialog
 * moved on, or when they could not be read (said in the dialog: what was done is done).
 */
async function refresh(item) {
  let fresh;
  try {
    fresh = (await api("GET", `/api/media/${item.id}`)).media;
  } catch (error) {
    if (details.item?.id === item.id) $("#details-error").textContent = `Done, but the details could not be read again (${error.message}): close and open them.`;
    return false;
  }
  if (details.item?.id !== item.id) return false;
  details.item = fresh;
  showFacts(fresh);
  await showVersions(fresh);
  return details.item === fresh;
}

$("#details-modal").addEventListener("close", () => {
  details.item = null;
  refreshAfterDialog(details.opener, details.removedAt);
  details.removedAt = undefined;
});

async function download(item, version) {
  try {
    await downloadVersion(item, version);
    $("#details-status").textContent = `Downloading version ${version.number}.`;
  } catch (error) {
    $("#details-error").textContent = `Could not download: ${error.message}`;
  }
}
$("#details-download").addEventListener("click", () => {
  if (details.item && details.current) download(details.item, details.current);
});

// Rename: the name the library shows (the file is unchanged). The answer is shown while the dialog
// shows the same media: `details.item` may meanwhile be a fresher copy of it (the dialog's own
// reading of the media, answered after the click), which must not swallow the rename.
async function rename() {
  const item = details.item;
  const name = $("#details-name").value.trim();
  $("#details-error").textContent = "";
  if (!item || !name || name === item.originalName) return;
  try {
    const renamed = (await api("PATCH", `/api/media/${item.id}`, { originalName: name })).media;
    if (details.item?.id !== item.id) return;
    details.item = renamed;
    $("#details-title").textContent = renamed.originalName;
    $("#details-name").value = renamed.originalName;
    $("#details-status").textContent = `Renamed to ${renamed.originalName}.`;
  } catch (error) {
    if (details.item?.id !== item.id) return;
    $("#details-error").textContent = `Could not rename: ${error.message}`;
    $("#details-name").focus();
  }
}
$("#details-rename").addEventListener("click", rename);
$("#details-name").addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); rename(); }
});

// Delete: to the trash, with Undo in the toast (no question first: nothing is lost); the grid then
// moves on without it.
$("#details-delete").addEventListener("click", async () => {
  const item = details.item;
  if (!item) return;
  const removedAt = [...document.querySelectorAll("#grid .tile")].findIndex((tile) => tile.dataset.mediaId === item.id);
  const { failures } = await moveToTrash([item]);
  if (details.item?.id !== item.id) return; // closed, or another media's details meanwhile
  if (failures.length) {
    $("#details-error").textContent = `Could not delete: ${failures[0].message}`;
    return;
  }
  // Its tile is gone: the focus goes to the tile that takes its place, not to the page.
  details.removedAt = removedAt;
  details.opener = null;
  $("#details-modal").close();
});
