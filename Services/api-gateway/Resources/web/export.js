// Downloads: a selection as a ZIP (format and size chosen; the server streams it by a signed link,
// so the browser saves it straight to disk), and one version of one image from the details.
import { api, freshObjectURL } from "./api.js";
import { $, el } from "./dom.js";
import { FRAMING_PRESETS } from "./framing.js";
import { state } from "./library.js";

/** The long sides offered: each marketplace preset's largest, then common smaller ones. */
const SIZES = (() => {
  const sizes = new Map();
  for (const preset of FRAMING_PRESETS) {
    if (!preset.maxSide) continue;
    const names = sizes.get(preset.maxSide) ?? [];
    names.push(preset.label.split(":")[0]);
    sizes.set(preset.maxSide, names);
  }
  for (const side of [1600, 1000, 500]) if (!sizes.has(side)) sizes.set(side, []);
  return [...sizes.entries()].sort((a, b) => b[0] - a[0])
    .map(([side, names]) => ({ value: String(side), label: `${side} px${names.length ? ` (${names.join(", ")})` : ""}` }));
})();

$("#export-size").replaceChildren(
  el("option", { value: "", text: "Each image's own size" }),
  ...SIZES.map((size) => el("option", { value: size.value, text: size.label })));

const exporting = { items: [], opener: null };

export function openExport() {
  exporting.items = [...state.selected.values()];
  exporting.opener = document.activeElement;
  if (exporting.items.length === 0) return;
  const count = exporting.items.length;
  $("#export-count").textContent = `${count} image${count === 1 ? "" : "s"}, each as it is now (its current version).`;
  $("#export-error").textContent = "";
  $("#export-status").textContent = "";
  $("#export-start").disabled = false;
  $("#export-modal").showModal();
}

$("#export-start").addEventListener("click", async () => {
  const button = $("#export-start");
  button.disabled = true;
  $("#export-error").textContent = "";
  const body = { mediaIds: exporting.items.map((item) => item.id), format: $("#export-format").value };
  if ($("#export-size").value) body.maxSide = Number($("#export-size").value);
  try {
    const made = (await api("POST", "/api/exports", body)).export;
    save(made.url, made.fileName);
    $("#export-status").textContent = `Your browser is saving ${made.fileName} (${made.items} image${made.items === 1 ? "" : "s"}).`;
    $("#export-status").focus();
  } catch (error) {
    $("#export-error").textContent = `Could not make the ZIP: ${error.message}`;
    button.disabled = false;
    button.focus();
  }
});
$("#export-modal").addEventListener("close", () => exporting.opener?.focus?.());

/** Saves `url` (same origin) as `fileName` through a link the page clicks. */
function save(url, fileName) {
  const link = el("a", { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

/** The name a downloaded version gets: the media's name, the version, the type's extension. */
function versionFileName(item, version) {
  const base = (item.originalName || item.id).replace(/\.[^.]+$/, "");
  const suffix = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif" }[version.mimeType] || "bin";
  return `${base}-v${version.number}.${suffix}`;
}

/** Downloads one version of `item` (the files are behind the token, so fetched, then saved). */
export async function downloadVersion(item, version) {
  // Not through the image cache: a full-size file is held only until the browser has it.
  const url = await freshObjectURL(`/api/media/${item.id}/versions/${version.id}/file`);
  save(url, versionFileName(item, version));
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
