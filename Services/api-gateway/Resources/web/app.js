// Cyclorama's admin media manager: plain ES modules over the public HTTP API (docs/api.md).
import { api, APIError, followEvents, forgetImages, isTransient, session, showImage } from "./api.js";

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== undefined && value !== null) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
};
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const STAGE_TEXT = {
  queued: "Queued", prompting: "Preparing the request", submitted: "Sent to the engine",
  in_progress: "Generating", downloading: "Saving the result", completed: "Done", failed: "Failed", cancelled: "Cancelled",
};

// `selected`: id → the media as it was when selected, so a batch names items chosen on another page too.
const state = { page: 1, pageSize: 24, collection: "PRODUCTS", total: 0, items: [], selected: new Map(), settings: {} };

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
}

function signOut(message = "") {
  session.token = null;
  forgetImages();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  showSignin(message);
}

session.onUnauthorized = (message) => signOut(`Signed out: ${message}`);

$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (!token) return;
  session.token = token;
  try {
    await api("GET", "/api/ai-image/settings");
    $("#token").value = "";
    await showApp();
  } catch (error) {
    session.token = null;
    showSignin(error.status === 401 || error.status === 403 ? `This token was refused: ${error.message}` : error.message);
  }
});
$("#sign-out").addEventListener("click", () => signOut("Signed out."));

// MARK: Settings (read for defaults)

async function loadSettings() {
  try {
    state.settings = (await api("GET", "/api/ai-image/settings")).settings;
  } catch (error) {
    status(`Settings could not be read: ${error.message}`);
  }
}

// MARK: Media grid

// A status line clears itself after a while, so an old message is not read as news.
let statusTimer = null;
function status(text) {
  $("#status").textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { if ($("#status").textContent === text) $("#status").textContent = ""; }, 20000);
}

let pageRequest = 0;

async function loadPage() {
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

/** After a dialog closes: the grid again, with the focus on the control that opened the dialog. */
function refreshAfterDialog(opener) {
  const key = opener?.closest?.(".tile") && [opener.closest(".tile").dataset.mediaId, opener.className.split(" ")[0]];
  loadPage().then(() => {
    if (key) document.querySelector(`.tile[data-media-id="${key[0]}"] .${key[1]}`)?.focus();
  });
}

function tile(item) {
  const name = item.originalName || item.id;
  const img = el("img", { alt: name, loading: "lazy" });
  showImage(img, item.url, item.currentVersionId);
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

function updateSelection() {
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

// MARK: AI modal (one image)

const ai = { item: null, jobId: null, abort: null, previousVersionId: null, opener: null, mode: "idle" };

function setChoice(name, value) {
  const input = document.querySelector(`#ai-form input[name="${name}"][value="${value}"]`);
  if (input) input.checked = true;
  return Boolean(input);
}

function openAI(item) {
  ai.abort?.abort();
  ai.abort = null;
  ai.opener = document.activeElement;
  ai.item = item;
  ai.jobId = null;
  const name = item.originalName || item.id;
  $("#ai-title-text").textContent = `AI product image — ${name}`;
  $("#ai-compare").replaceChildren(el("figure", {}, el("img", { id: "ai-original", alt: `Original: ${name}` }), el("figcaption", { text: "Original" })));
  showImage($("#ai-original"), item.url, item.currentVersionId);
  setChoice("shadowStyle", state.settings.aiImageDefaultShadow || "soft");
  const background = (state.settings.aiImageDefaultBackground || "#FFFFFF").toUpperCase();
  if (!setChoice("background", background)) {
    setChoice("background", "custom");
    $("#ai-custom-color").value = background.toLowerCase();
  }
  setChoice("upscale", state.settings.aiImageEnableUpscaling === "true" ? "2" : "1");
  $("#ai-watermark").checked = true;
  aiMode("idle");
  $("#ai-modal").showModal();
}

function aiMode(mode, message = "") {
  ai.mode = mode;
  $("#ai-options").hidden = mode !== "idle" && mode !== "failed";
  $("#ai-progress").hidden = mode === "idle" && !ai.jobId;
  $("#ai-generate").hidden = mode !== "idle";
  $("#ai-cancel").hidden = mode !== "running";
  $("#ai-retry").hidden = mode !== "failed";
  $("#ai-keep").hidden = mode !== "completed";
  $("#ai-revert").hidden = mode !== "completed";
  $("#ai-variations").hidden = mode !== "idle";
  $("#ai-error").textContent = mode === "failed" ? message : "";
  if (mode === "idle") showStage(null);
  // The pressed button may just have been hidden: put the focus on what comes next.
  const next = { idle: "#ai-generate", running: "#ai-cancel", failed: "#ai-retry", completed: "#ai-keep" }[mode];
  if (next && $("#ai-modal").open) $(next).focus();
}

function showStage(stage, detail) {
  const order = ["queued", "prompting", "submitted", "in_progress", "downloading", "completed"];
  const index = order.indexOf(stage);
  for (const item of document.querySelectorAll("#ai-progress .stages li")) {
    const at = order.indexOf(item.dataset.stage);
    item.classList.toggle("done", index >= 0 && at < index);
    item.classList.toggle("current", at === index);
    if (at === index) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
  }
  $("#ai-stage").textContent = stage ? `${STAGE_TEXT[stage] || stage}${detail ? ` (${detail})` : ""}` : "";
}

function aiOptions() {
  const form = $("#ai-form");
  const choice = (name) => form.querySelector(`input[name="${name}"]:checked`)?.value;
  let background = choice("background") || "#FFFFFF";
  if (background === "custom") background = $("#ai-custom-color").value.toUpperCase();
  return {
    shadowStyle: choice("shadowStyle") || "soft",
    backgroundColor: background,
    removeWatermark: $("#ai-watermark").checked,
    upscale: Number(choice("upscale") || 1),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Repeats `call` while it fails without an answer (or with a server error), waiting 1 s, 2 s, ...
 * up to 15 s between tries and telling `onTrouble` each time; other errors are thrown. Only for
 * calls that are safe to repeat: reads, and POSTs with an Idempotency-Key.
 */
async function persist(call, signal, onTrouble) {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15000)) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || signal?.aborted) throw error;
      onTrouble?.(error);
      await sleep(wait);
      if (signal?.aborted) throw new DOMException("aborted", "AbortError");
    }
  }
}

const connectionTrouble = () => $("#ai-stage").textContent =
  "Connection lost: the server keeps working on the job; checking again…";

async function generate() {
  const item = ai.item;
  ai.abort?.abort();
  const abort = new AbortController();
  ai.abort = abort;
  aiMode("running");
  // Nothing is queued until the server says so.
  showStage(null);
  $("#ai-stage").textContent = "Sending…";
  // One key per click: a POST repeated after a lost answer gets the same job, never a second one
  // (on RunPod, never a second bill). Retry after a real failure is a new click, a new job.
  const key = { "Idempotency-Key": `ui-generate-${crypto.randomUUID()}` };
  try {
    const versions = await persist(() => api("GET", `/api/media/${item.id}/versions`), abort.signal, connectionTrouble);
    if (abort.signal.aborted) return;
    ai.previousVersionId = versions.currentVersionId;
    const options = aiOptions();
    const answer = await persist(
      () => api("POST", `/api/ai-image/generate/${item.id}`, options, key), abort.signal, connectionTrouble);
    if (abort.signal.aborted) return;
    ai.jobId = answer.jobId;
    showStage("queued");
    await follow(answer.jobId, abort);
  } catch (error) {
    if (error.name !== "AbortError" && !abort.signal.aborted) aiMode("failed", `Could not generate: ${error.message}`);
  }
}

async function follow(jobId, abort) {
  let last = null;
  try {
    await followEvents(`jobId=${jobId}`, (name, data) => { last = data; showStage(name, data.detail); }, abort.signal);
  } catch (error) {
    if (error.name === "AbortError") return;
    // The stream broke: the status call tells how the job stands (and waits out a lost connection).
  }
  if (abort.signal.aborted) return;
  if (!last || !TERMINAL.has(last.status)) last = await waitForStatus(jobId, abort.signal, showStage);
  if (abort.signal.aborted) return;
  if (last.status === "COMPLETED") await showResult(last.media);
  else if (last.status === "CANCELLED") {
    // Asked for: not an error. The photo is unchanged; Generate is offered again.
    aiMode("idle");
    $("#ai-stage").textContent = "Cancelled: the photo is unchanged.";
  } else aiMode("failed", `The generation failed: ${last.error?.message || "no reason given"}`);
}

/**
 * The job's status once it has ended. A lost connection is never a failed job: the server ends
 * every job it accepted, so this keeps asking (telling the user) until it hears how it ended.
 */
async function waitForStatus(jobId, signal, onStage) {
  for (;;) {
    const answer = await persist(() => api("GET", `/api/ai-image/status/${jobId}`), signal, connectionTrouble);
    if (TERMINAL.has(answer.status) || signal.aborted) return answer;
    onStage?.(answer.status.toLowerCase());
    await sleep(2000);
  }
}

/** A job left running when its dialog closed: followed here, announced and shown in the grid when it ends. */
async function followInBackground(jobId, item) {
  const name = item.originalName || item.id;
  try {
    const last = await waitForStatus(jobId, new AbortController().signal);
    if (last.status === "COMPLETED") status(`${name}: the studio shot is ready; it replaced the photo (the original stays in its history).`);
    else if (last.status === "CANCELLED") status(`${name}: the generation was cancelled.`);
    else status(`${name}: the generation failed: ${last.error?.message || "no reason given"}`);
    await loadPage();
  } catch (error) {
    status(`${name}: could not learn how the generation ended: ${error.message}`);
  }
}

async function showResult(media) {
  ai.item = media;
  const name = media.originalName || media.id;
  const before = el("img", { alt: `Before: ${name}` });
  const after = el("img", { alt: `After: ${name}`, class: "after" });
  const range = el("input", { type: "range", min: 0, max: 100, value: 50, "aria-label": "Compare before and after" });
  const slider = el("div", { class: "slider" }, before, after);
  const clip = () => { after.style.clipPath = `inset(0 0 0 ${range.value}%)`; };
  range.addEventListener("input", clip);
  clip();
  $("#ai-compare").replaceChildren(el("figure", { id: "ai-before-after" }, slider, range,
    el("figcaption", { text: "Before (left) and after (right): drag the slider to compare" })));
  showImage(before, `/api/media/${media.id}/versions/${ai.previousVersionId}/file`, ai.previousVersionId);
  showImage(after, media.url, media.currentVersionId);
  showStage("completed");
  aiMode("completed");
  $("#ai-keep").focus();
}

$("#ai-generate").addEventListener("click", generate);
$("#ai-retry").addEventListener("click", generate);
$("#ai-cancel").addEventListener("click", async () => {
  if (!ai.jobId) return;
  try { await api("POST", `/api/ai-image/jobs/${ai.jobId}/cancel`); } catch (error) { $("#ai-error").textContent = error.message; }
});
$("#ai-keep").addEventListener("click", () => $("#ai-modal").close());
$("#ai-revert").addEventListener("click", async () => {
  try {
    await api("POST", `/api/media/${ai.item.id}/revert/${ai.previousVersionId}`);
    $("#ai-modal").close();
    status("Reverted to the original; the generated image stays in the history.");
  } catch (error) {
    $("#ai-error").textContent = `Could not revert: ${error.message}`;
  }
});
$("#ai-modal").addEventListener("close", () => {
  ai.abort?.abort();
  // Closed while the job runs: it goes on at the server; say so, and say when it ends.
  if (ai.mode === "running" && ai.jobId) {
    status(`${ai.item.originalName || ai.item.id}: generating in the background; this line says when it is done.`);
    followInBackground(ai.jobId, ai.item);
  }
  refreshAfterDialog(ai.opener);
});
// Picking a custom colour means the custom background.
$("#ai-custom-color").addEventListener("input", () => setChoice("background", "custom"));
$("#ai-variations").addEventListener("click", () => openVariations(ai.item));

// MARK: Batch

const batch = { id: null, abort: null, items: new Map(), pending: null, ended: false };

/** A status as people read it. */
function statusText(status) {
  return { IN_QUEUE: "Queued", QUEUED: "Queued", PROMPTING: "Preparing", SUBMITTED: "Submitted", IN_PROGRESS: "Generating",
    DOWNLOADING: "Saving", COMPLETED: "Done", FAILED: "Failed", CANCELLED: "Cancelled" }[status] || status;
}

// Step one: what will be generated, with which options, and what it replaces; nothing starts yet.
$("#batch-generate").addEventListener("click", () => {
  batch.abort?.abort();
  const chosen = [...state.selected.values()];
  batch.pending = chosen;
  $("#batch-error").textContent = "";
  $("#batch-setup").hidden = false;
  $("#batch-run").hidden = true;
  $("#batch-start").hidden = false;
  $("#batch-cancel").hidden = true;
  $("#batch-start").textContent = `Start ${chosen.length} generation${chosen.length === 1 ? "" : "s"}`;
  $("#batch-setup-items").replaceChildren(...chosen.map((item) => el("li", { text: item.originalName || item.id })));
  $("#b-shadow").value = state.settings.aiImageDefaultShadow || "soft";
  const background = (state.settings.aiImageDefaultBackground || "#FFFFFF").toUpperCase();
  $("#b-background").value = [...$("#b-background").options].some((option) => option.value === background) ? background : "#FFFFFF";
  $("#b-upscale").value = state.settings.aiImageEnableUpscaling === "true" ? "2" : "1";
  $("#b-watermark").checked = true;
  const runpod = state.settings.aiImageBackend === "runpod";
  const perImage = Number(state.settings.aiImagePricePerMegapixel || 0.03) * (Number(state.settings.aiImageResolution || 1024) ** 2) / 1e6;
  $("#batch-note").textContent = `Each result replaces the photo in the media library; the original stays in its history.` +
    (runpod ? ` On RunPod this costs about $${(perImage * chosen.length).toFixed(2)} ($${perImage.toFixed(3)} per image).` : " The local engine is free.");
  $("#batch-modal").showModal();
  $("#batch-start").focus();
});

// Step two: the batch runs; its dialog can be closed and opened again from the toolbar.
$("#batch-start").addEventListener("click", async () => {
  const chosen = batch.pending || [];
  const options = {
    shadowStyle: $("#b-shadow").value, backgroundColor: $("#b-background").value,
    removeWatermark: $("#b-watermark").checked, upscale: Number($("#b-upscale").value),
  };
  batch.id = null;
  batch.ended = false;
  batch.items = new Map();
  $("#batch-setup").hidden = true;
  $("#batch-run").hidden = false;
  $("#batch-start").hidden = true;
  $("#batch-cancel").hidden = false;
  $("#batch-cancel").disabled = true;
  $("#batch-progress").value = 0;
  $("#batch-items").replaceChildren();
  $("#batch-summary").textContent = `Starting ${chosen.length} generations…`;
  const abort = new AbortController();
  batch.abort = abort;
  // One key per start: a call repeated after a lost answer gets the same batch, never a second.
  const key = { "Idempotency-Key": `ui-batch-${crypto.randomUUID()}` };
  try {
    const answer = await persist(
      () => api("POST", "/api/ai-image/batch", { mediaIds: chosen.map((item) => item.id), options }, key), abort.signal,
      () => { $("#batch-summary").textContent = "Connection lost: trying again…"; });
    batch.id = answer.batchId;
    $("#batch-reopen").hidden = false;
    $("#batch-cancel").disabled = false;
    const names = new Map(chosen.map((item) => [item.id, item]));
    for (const job of answer.jobs) {
      const item = names.get(job.mediaId);
      const name = item?.originalName || job.mediaId;
      const img = el("img", { alt: name });
      showImage(img, `/api/media/${job.mediaId}/file`, item?.currentVersionId ?? `before-${job.jobId}`);
      const label = el("span", { class: `state-${job.status}`, text: statusText(job.status) });
      const li = el("li", { "data-job-id": job.jobId }, img, el("div", { class: "name", text: name }), label);
      batch.items.set(job.jobId, { li, img, label, mediaId: job.mediaId, status: job.status });
      $("#batch-items").append(li);
    }
    state.selected.clear();
    updateSelection();
    if ($("#batch-modal").open) await followBatch(answer.batchId);
  } catch (error) {
    if (error.name !== "AbortError") $("#batch-error").textContent = `The batch could not run: ${error.message}`;
  }
});

$("#batch-reopen").addEventListener("click", () => {
  if (!batch.id) return;
  $("#batch-setup").hidden = true;
  $("#batch-run").hidden = false;
  $("#batch-start").hidden = true;
  $("#batch-cancel").hidden = false;
  $("#batch-modal").showModal();
  followBatch(batch.id);
});

function showBatchItem(job) {
  const entry = batch.items.get(job.jobId);
  if (!entry) return;
  entry.status = job.status;
  entry.label.className = `state-${job.status}`;
  entry.label.textContent = job.status === "FAILED" && job.error ? `Failed: ${job.error.message}` : statusText(job.status);
  // The thumbnail turns into the result as soon as the item is done.
  if (job.status === "COMPLETED") showImage(entry.img, `/api/media/${entry.mediaId}/file`, job.jobId);
}

function showBatchSummary(summary) {
  const counts = summary.counts || {};
  const done = counts.COMPLETED || 0;
  const finished = done + (counts.FAILED || 0) + (counts.CANCELLED || 0);
  const ended = summary.status === "COMPLETED" || summary.status === "CANCELLED";
  batch.ended = ended;
  const progress = $("#batch-progress");
  progress.max = summary.total;
  // Running: how far it got. Ended: how much of it succeeded (a batch with failures is not a full bar).
  progress.value = ended ? done : finished;
  const headline = summary.status === "CANCELLED" ? "Cancelled"
    : ended ? (done === summary.total ? "Done" : "Finished with problems") : "Running";
  $("#batch-summary").textContent =
    `${headline}: ${done} of ${summary.total} done` +
    `${counts.FAILED ? `, ${counts.FAILED} failed` : ""}${counts.CANCELLED ? `, ${counts.CANCELLED} cancelled` : ""}` +
    ` · cost $${Number(summary.cost || 0).toFixed(3)}`;
  $("#batch-cancel").disabled = ended;
}

async function followBatch(batchId) {
  batch.abort?.abort();
  const abort = new AbortController();
  batch.abort = abort;
  try {
    await followEvents(`batchId=${batchId}`, (name, data) => {
      if (name === "item") showBatchItem(data);
      else if (name === "batch") showBatchSummary(data);
    }, abort.signal);
  } catch (error) {
    if (error.name === "AbortError") return;
  }
  if (abort.signal.aborted) return;
  // The stream ended (or broke): the batch's own answer is the truth.
  const final = await api("GET", `/api/ai-image/batch/${batchId}`);
  if (abort.signal.aborted) return;
  for (const item of final.items) showBatchItem(item);
  showBatchSummary(final);
}

$("#batch-cancel").addEventListener("click", async () => {
  if (!batch.id) return;
  try {
    showBatchSummary(await api("POST", `/api/ai-image/batch/${batch.id}/cancel`));
  } catch (error) {
    $("#batch-error").textContent = `Could not cancel: ${error.message}`;
  }
});
$("#batch-modal").addEventListener("close", () => { batch.abort?.abort(); loadPage(); });

// MARK: A/B variations

const variations = { item: null, timer: null, shown: "" };

async function openVariations(item) {
  variations.item = item;
  variations.shown = "";
  $("#variations-title").textContent = `Variations — ${item.originalName || item.id}`;
  $("#variations-error").textContent = "";
  $("#variation-prompts").value = "";
  $("#variation-list").replaceChildren();
  if ($("#ai-modal").open) $("#ai-modal").close();
  $("#variations-modal").showModal();
  await refreshVariations();
}

async function refreshVariations() {
  clearTimeout(variations.timer);
  const item = variations.item;
  let answer;
  try {
    answer = await api("GET", `/api/ai-image/variations/${item.id}`);
  } catch (error) {
    if (variations.item === item) $("#variations-error").textContent = error.message;
    return;
  }
  if (variations.item !== item || !$("#variations-modal").open) return; // closed or another media meanwhile
  const set = answer.sets[0];
  if (!set) { $("#variation-list").replaceChildren(el("li", { text: "No variations yet." })); return; }
  const signature = JSON.stringify(set);
  if (signature !== variations.shown) {
    variations.shown = signature;
    renderVariations(set);
  }
  if (set.variations.some((candidate) => !TERMINAL.has(candidate.status))) {
    variations.timer = setTimeout(refreshVariations, 1500);
  }
}

function renderVariations(set) {
  const focusedName = document.activeElement?.closest?.("#variation-list li")?.dataset.jobId;
  $("#variation-list").replaceChildren(...set.variations.map((candidate) => {
    const li = el("li", { "data-job-id": candidate.jobId }, el("strong", { text: candidate.name }), el("div", { class: `state-${candidate.status}`, text: candidate.chosen ? "Chosen" : candidate.status }));
    if (candidate.url) {
      const img = el("img", { alt: candidate.name });
      showImage(img, candidate.url);
      li.prepend(img);
      li.append(el("button", {
        type: "button", text: candidate.chosen ? "Chosen" : "Choose", disabled: Boolean(set.chosenJobId),
        "aria-label": `Choose ${candidate.name}`, onclick: () => chooseVariation(candidate.jobId),
      }));
    }
    return li;
  }));
  if (focusedName) document.querySelector(`#variation-list li[data-job-id="${focusedName}"] button`)?.focus();
}

async function chooseVariation(jobId) {
  try {
    await api("POST", `/api/ai-image/variations/${variations.item.id}/choose`, { jobId });
    status("The chosen variation is now the image; the original stays in the history.");
    await refreshVariations();
  } catch (error) {
    $("#variations-error").textContent = error.message;
  }
}

$("#variations-start").addEventListener("click", async () => {
  const customPrompts = $("#variation-prompts").value.split("\n").map((line) => line.trim()).filter(Boolean);
  $("#variations-error").textContent = "";
  try {
    await api("POST", `/api/ai-image/variations/${variations.item.id}`, { customPrompts });
    await refreshVariations();
  } catch (error) {
    $("#variations-error").textContent = error.code === "ab_testing_disabled"
      ? "A/B variations are off: turn on “A/B variations” in AI Settings."
      : error.message;
  }
});
$("#variations-modal").addEventListener("close", () => {
  clearTimeout(variations.timer);
  variations.item = null;
  refreshAfterDialog(ai.opener);
});

// MARK: Media details and version history

const details = { item: null, opener: null };

async function openDetails(item) {
  details.item = item;
  details.opener = document.activeElement;
  $("#details-title").textContent = item.originalName || item.id;
  $("#details-error").textContent = "";
  showFacts(item);
  $("#details-versions").replaceChildren();
  $("#details-modal").showModal();
  await showVersions(item);
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
    if (details.item === item) $("#details-error").textContent = error.message;
    return;
  }
  if (details.item !== item || !$("#details-modal").open) return;
  const numbers = new Map(answer.versions.map((version) => [version.id, version.number]));
  $("#details-versions").replaceChildren(...answer.versions.map((version) => {
    const current = version.id === answer.currentVersionId;
    const img = el("img", { alt: `Version ${version.number}` });
    showImage(img, `/api/media/${item.id}/versions/${version.id}/file`, version.id);
    // A revert says which version it brought back.
    const restored = version.source === "revert" && numbers.has(version.revertedFromVersionId)
      ? `revert to v${numbers.get(version.revertedFromVersionId)}` : version.source;
    const li = el("li", {}, img, el("div", { text: `v${version.number} · ${restored}${current ? " · current" : ""}` }),
      el("div", { class: "muted", text: new Date(version.createdAt).toLocaleString() }));
    if (!current) {
      li.append(el("button", {
        type: "button", text: "Revert to this", "aria-label": `Revert to version ${version.number}`,
        onclick: async () => {
          try {
            await api("POST", `/api/media/${item.id}/revert/${version.id}`);
            // The media changed: its facts (type, size) and history as they are now.
            const fresh = (await api("GET", `/api/media/${item.id}`)).media;
            if (details.item !== item) return;
            details.item = fresh;
            showFacts(fresh);
            await showVersions(fresh);
            $("#details-versions button")?.focus();
          } catch (error) {
            $("#details-error").textContent = `Could not revert: ${error.message}`;
          }
        },
      }));
    }
    return li;
  }));
}
$("#details-modal").addEventListener("close", () => { details.item = null; refreshAfterDialog(details.opener); });

// MARK: AI settings

const SETTING_FIELDS = [
  "aiImageEnabled", "aiImageBackend", "runpodImageDelivery", "aiImageDefaultShadow", "aiImageDefaultBackground", "aiImageInferenceSteps",
  "aiImageGuidance", "aiImageResolution", "aiImageMaxConcurrent", "aiImageEnableUpscaling", "aiImageAbTestEnabled",
  "aiImageEnableWebhooks", "aiImageWebhookUrl", "aiImagePricePerMegapixel", "aiImageMonthlyBudget",
];

function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) { node.removeAttribute("aria-invalid"); node.removeAttribute("aria-describedby"); }
}

function showFieldErrors(form, message) {
  // The gateway names each refused setting first: "aiImageInferenceSteps must be …; aiImageGuidance must be …".
  let first = null;
  for (const part of message.split("; ")) {
    const key = part.split(" ")[0];
    if (!SETTING_FIELDS.includes(key)) continue; // e.g. the `got "…"` half of a refusal
    const field = form.elements.namedItem(key);
    if (!(field instanceof Element)) continue;
    const id = `${key}-error`;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", id);
    const reason = part.slice(key.length).trim();
    const note = el("p", { class: "field-error", id, text: reason.charAt(0).toUpperCase() + reason.slice(1) });
    (field.type === "checkbox" ? field.closest("label") : field).after(note);
    first ??= field;
  }
  first?.focus();
  return first !== null;
}

$("#open-settings").addEventListener("click", async () => {
  const form = $("#settings-form");
  clearFieldErrors(form);
  $("#settings-error").textContent = "";
  $("#settings-status").textContent = "";
  await loadSettings();
  for (const key of SETTING_FIELDS) {
    const field = form.elements[key];
    const value = state.settings[key] ?? "";
    if (field.type === "checkbox") field.checked = value === "true";
    else if (field.type === "color") field.value = value.toLowerCase() || "#ffffff";
    else field.value = value;
  }
  $("#settings-modal").showModal();
});

$("#settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFieldErrors(form);
  $("#settings-error").textContent = "";
  const values = {};
  for (const key of SETTING_FIELDS) {
    const field = form.elements[key];
    values[key] = field.type === "checkbox" ? field.checked : field.type === "color" ? field.value.toUpperCase() : field.value.trim();
  }
  try {
    const answer = await api("PUT", "/api/ai-image/settings", values);
    state.settings = answer.settings;
    $("#settings-status").textContent = "Settings saved.";
  } catch (error) {
    if (!(error instanceof APIError && error.status === 400 && showFieldErrors(form, error.message))) {
      $("#settings-error").textContent = `Not saved: ${error.message}`;
    } else {
      $("#settings-error").textContent = "Not saved: correct the marked fields.";
    }
  }
});

// MARK: API keys

$("#open-keys").addEventListener("click", async () => {
  $("#keys-error").textContent = "";
  $("#keys-status").textContent = "";
  $("#key-input").value = "";
  await loadSettings();
  $("#key-current").textContent = state.settings.runpodApiKey || "none";
  $("#keys-modal").showModal();
});
$("#key-toggle").addEventListener("click", (event) => {
  const input = $("#key-input");
  const show = input.type === "password";
  input.type = show ? "text" : "password";
  event.target.textContent = show ? "Hide" : "Show";
  event.target.setAttribute("aria-pressed", String(show));
});
$("#keys-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#key-input");
  $("#keys-error").textContent = "";
  if (!input.value.trim()) {
    $("#keys-error").textContent = "Type the new key first (an empty value would delete the stored key).";
    input.focus();
    return;
  }
  try {
    const answer = await api("PUT", "/api/ai-image/settings", { runpodApiKey: input.value.trim() });
    state.settings = answer.settings;
    $("#key-current").textContent = answer.settings.runpodApiKey || "none";
    input.value = "";
    input.type = "password";
    $("#key-toggle").textContent = "Show";
    $("#key-toggle").setAttribute("aria-pressed", "false");
    $("#keys-status").textContent = "Key saved.";
  } catch (error) {
    $("#keys-error").textContent = `Not saved: ${error.message}`;
  }
});

$("#key-test").addEventListener("click", async (event) => {
  const button = event.target;
  const typed = $("#key-input").value.trim();
  $("#keys-error").textContent = "";
  $("#keys-status").textContent = "Asking RunPod…";
  button.disabled = true;
  try {
    const report = await api("POST", "/api/ai-image/settings/test-connection", typed ? { runpodApiKey: typed } : {});
    const which = typed ? "the typed key" : "the stored key";
    if (report.ok) {
      $("#keys-status").textContent = `RunPod accepts ${which}: ${report.message}.`;
    } else {
      $("#keys-status").textContent = "";
      $("#keys-error").textContent = `Not usable with ${which}: ${report.message}`;
    }
  } catch (error) {
    $("#keys-status").textContent = "";
    $("#keys-error").textContent = `Could not test: ${error.message}`;
  } finally {
    button.disabled = false;
  }
});

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
