// The AI dialog for one image: options, the job's stages, before / after, keep or revert, and a
// job followed on when the dialog closes.
import { api, followEvents, persist, sleep, showImage } from "./api.js";
import { comparison, openComparison } from "./compare.js";
import { $, el, status, TERMINAL } from "./dom.js";
import { loadPage, loadSettings, refreshAfterDialog, state } from "./library.js";
import { fillFramingChoices, framingOutputSize } from "./framing.js";
import { announce, notifyIfAway, offerNotifications, undoGeneration } from "./notify.js";
import { openVariations } from "./variations.js";
import { presetControls } from "./presets.js";

const STAGE_TEXT = {
  queued: "Queued", prompting: "Preparing the request", submitted: "Sent to the engine",
  in_progress: "Generating", downloading: "Saving the result", completed: "Done", failed: "Failed", cancelled: "Cancelled",
};

// MARK: AI modal (one image)

// `opened` counts the dialog's openings: an answer to something done in one opening (a revert) must
// not close or write into the dialog opened after it for another image.
export const ai = { item: null, jobId: null, abort: null, run: null, previousVersionId: null, opener: null, mode: "idle", optionsTouched: false, opened: 0 };

function setChoice(name, value) {
  const input = document.querySelector(`#ai-form input[name="${name}"][value="${value}"]`);
  if (input) input.checked = true;
  return Boolean(input);
}

export function openAI(item) {
  ai.abort?.abort();
  ai.abort = null;
  ai.opened += 1;
  ai.opener = document.activeElement;
  ai.item = item;
  ai.jobId = null;
  const name = item.originalName || item.id;
  $("#ai-title-text").textContent = `AI product image — ${name}`;
  $("#ai-compare").replaceChildren(el("figure", {}, el("img", { id: "ai-original", alt: `Original: ${name}` }), el("figcaption", { text: "Original" })));
  showImage($("#ai-original"), item.url, item.currentVersionId);
  setAIOptions({});
  $("#ai-fidelity").textContent = "";
  $("#ai-preset-said").textContent = "";
  refreshPresets();
  $("#ai-modal").showModal();
  aiMode("idle"); // after opening: the focus goes to Generate, as the batch set-up's goes to Start
  // Settings may have changed elsewhere (another tab, the API): what the dialog offers follows them,
  // and so do its options' defaults unless the user has already changed one.
  ai.optionsTouched = false;
  loadSettings({ quiet: true }).then(() => {
    if (ai.item !== item || ai.mode !== "idle") return;
    $("#ai-variations").hidden = state.settings.aiImageAbTestEnabled !== "true";
    if (!ai.optionsTouched) setAIOptions({});
  });
}
for (const kind of ["change", "input"]) $("#ai-options").addEventListener(kind, () => { ai.optionsTouched = true; });

function aiMode(mode, message = "") {
  ai.mode = mode;
  $("#ai-options").hidden = mode !== "idle" && mode !== "failed";
  $("#ai-progress").hidden = mode === "idle" && !ai.jobId;
  $("#ai-generate").hidden = mode !== "idle";
  $("#ai-cancel").hidden = mode !== "running";
  $("#ai-retry").hidden = mode !== "failed";
  $("#ai-keep").hidden = mode !== "completed";
  $("#ai-revert").hidden = mode !== "completed";
  $("#ai-notify-row").hidden = mode !== "running";
  if (mode === "running") showNotify();
  // Variations only while A/B testing is on (the settings are read again as the dialog opens).
  $("#ai-variations").hidden = mode !== "idle" || state.settings.aiImageAbTestEnabled !== "true";
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

/** The output size the chosen framing and upscale give this photo. */
function showFramingSize() {
  const upscale = Number(document.querySelector('#ai-form input[name="upscale"]:checked')?.value || 1);
  $("#ai-framing-size").textContent = framingOutputSize($("#ai-framing").value, { width: ai.item?.width, height: ai.item?.height, upscale });
}
$("#ai-framing").addEventListener("change", showFramingSize);
for (const input of document.querySelectorAll('#ai-form input[name="upscale"]')) input.addEventListener("change", showFramingSize);

/** Sets the dialog's options: the settings' defaults, then what `options` sets (a preset's). */
function setAIOptions(options) {
  setChoice("shadowStyle", options.shadowStyle && options.shadowStyle !== "none" ? options.shadowStyle : state.settings.aiImageDefaultShadow || "soft");
  const raw = options.backgroundColor || state.settings.aiImageDefaultBackground || "#FFFFFF";
  const background = raw.toLowerCase() === "transparent" ? "transparent" : raw.toUpperCase();
  if (!setChoice("background", background)) {
    setChoice("background", "custom");
    $("#ai-custom-color").value = background.toLowerCase();
  }
  setChoice("upscale", String(options.upscale || (state.settings.aiImageEnableUpscaling === "true" ? 2 : 1)));
  fillFramingChoices($("#ai-framing"), typeof options.framing === "string" ? options.framing : state.settings.aiImageDefaultFraming);
  showFramingSize();
  $("#ai-watermark").checked = options.removeWatermark ?? true;
}

const refreshPresets = presetControls({
  select: $("#ai-preset"), name: $("#ai-preset-name"), save: $("#ai-preset-save"), said: $("#ai-preset-said"),
  read: () => aiOptions(), apply: setAIOptions,
});

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
    framing: $("#ai-framing").value,
  };
}

const showNotify = offerNotifications($("#ai-notify"), $("#ai-notify-state"));

const connectionTrouble = () => $("#ai-stage").textContent =
  "Connection lost: the server keeps working on the job; checking again…";

async function generate() {
  const item = ai.item;
  ai.abort?.abort();
  const abort = new AbortController();
  ai.abort = abort;
  // `background`: the dialog was closed before the server accepted the job (set by its close).
  // `cancelled`: Cancel was pressed before the server accepted it (set by Cancel).
  const run = { background: false, cancelled: false };
  ai.run = run;
  ai.jobId = null; // a Retry's Cancel is this job's, never the one that failed before
  aiMode("running");
  $("#ai-fidelity").textContent = "";
  // Nothing is queued until the server says so.
  showStage(null);
  $("#ai-stage").textContent = "Sending…";
  // One key per click: a POST repeated after a lost answer gets the same job, never a second one
  // (on RunPod, never a second bill). Retry after a real failure is a new click, a new job.
  const key = { "Idempotency-Key": `ui-generate-${crypto.randomUUID()}` };
  // A lost connection is said, unless Cancel was pressed meanwhile: "Cancelling…" stays until the
  // server answers (a retry overwrote it, and a user who cancelled read that nothing had happened).
  const trouble = () => { if (!run.cancelled) connectionTrouble(); };
  try {
    const versions = await persist(() => api("GET", `/api/media/${item.id}/versions`), abort.signal, trouble);
    if (abort.signal.aborted) return;
    if (run.cancelled && !run.background) {
      // Cancelled before anything was asked of the server: nothing to cancel there.
      aiMode("idle");
      $("#ai-progress").hidden = false;
      $("#ai-stage").textContent = "Cancelled before it was sent: the photo is unchanged.";
      return;
    }
    if (!run.background) ai.previousVersionId = versions.currentVersionId;
    const options = aiOptions();
    const answer = await persist(
      () => api("POST", `/api/ai-image/generate/${item.id}`, options, key), abort.signal, trouble);
    if (abort.signal.aborted) return;
    if (run.background) { followInBackground(answer.jobId, item); return; }
    ai.jobId = answer.jobId;
    showStage("queued");
    // Cancel was pressed while it was being sent: the job the server now names is cancelled.
    if (run.cancelled) cancelJob(answer.jobId);
    await follow(answer.jobId, abort);
  } catch (error) {
    if (run.background) status(`${item.originalName || item.id}: could not generate: ${error.message}`);
    else if (error.name !== "AbortError" && !abort.signal.aborted) aiMode("failed", `Could not generate: ${error.message}`);
  }
}

/** The fidelity guard's verdict on a RunPod result (docs/fidelity.md) in words; empty when unchecked. */
export function fidelityText(fidelity) {
  if (!fidelity) return "";
  const share = `${Math.round(fidelity.score * 100)} %`;
  return {
    kept: `Product check: ${share} of the product unchanged, kept as generated.`,
    restored: `Product check: the generated image changed the product (${share} unchanged), so the photo's own product was put back.`,
    rejected: `Product check: the generated image changed the product (${share} unchanged); it was not used.`,
    unchecked: "Product check: not done (nothing in the photo to compare with); kept as generated.",
  }[fidelity.decision] ?? "";
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
  // The dialog says how it ended; a user who asked and looked away is told by the browser too.
  notifyIfAway(`${ended(ai.item.originalName || ai.item.id, last.status)}.`);
  if (last.status === "COMPLETED") {
    // The verdict is on the job's status (an event may not carry it).
    const checked = last.fidelity ?? (await api("GET", `/api/ai-image/status/${jobId}`).catch(() => null))?.fidelity;
    if (abort.signal.aborted) return; // closed (followed in the background) or opened for another image meanwhile
    await showResult(last.media, checked);
  }
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
export async function waitForStatus(jobId, signal, onStage) {
  for (;;) {
    const answer = await persist(() => api("GET", `/api/ai-image/status/${jobId}`), signal, connectionTrouble);
    if (TERMINAL.has(answer.status) || signal.aborted) return answer;
    onStage?.(answer.status.toLowerCase());
    await sleep(2000);
  }
}

/** How a job on `name` ended, in the words every way of following it uses (without the full stop). */
function ended(name, status) {
  const words = { COMPLETED: "the studio shot is ready", CANCELLED: "the generation was cancelled" }[status];
  return `${name}: ${words ?? "the generation failed"}`;
}

/** A job left running when its dialog closed: followed here, announced and shown in the grid when it ends. */
async function followInBackground(jobId, item) {
  const name = item.originalName || item.id;
  try {
    const last = await waitForStatus(jobId, new AbortController().signal);
    if (last.status === "COMPLETED") {
      const said = `${ended(name, last.status)}; it replaced the photo (the original stays in its history).`;
      status(said);
      announce(said, async () => {
        if (!(await undoGeneration(item.id, jobId))) return `${name} changed since; nothing was undone.`;
        await loadPage();
        return `${name} shows the photo again.`;
      });
    } else if (last.status === "CANCELLED") status(`${ended(name, last.status)}.`);
    else {
      status(`${ended(name, last.status)}: ${last.error?.message || "no reason given"}`);
      announce(`${ended(name, last.status)}.`);
    }
    await loadPage();
  } catch (error) {
    status(`${name}: could not learn how the generation ended: ${error.message}`);
  }
}

async function showResult(media, fidelity) {
  ai.item = media;
  const name = media.originalName || media.id;
  const sides = {
    before: { path: `/api/media/${media.id}/versions/${ai.previousVersionId}/file`, version: ai.previousVersionId, alt: `Before: ${name}` },
    after: { path: media.url, version: media.currentVersionId, alt: `After: ${name}` },
  };
  const view = comparison(sides);
  const full = el("button", {
    type: "button", text: "Full screen", "aria-label": "Compare before and after full screen",
    onclick: () => openComparison({ title: `${name}: before and after`, ...sides }),
  });
  $("#ai-compare").replaceChildren(el("figure", { id: "ai-before-after" }, view,
    el("figcaption", {}, "Before (left) and after (right): drag the handle to compare. ", full)));
  showStage("completed");
  aiMode("completed");
  $("#ai-fidelity").textContent = fidelityText(fidelity);
  $("#ai-keep").focus();
}

$("#ai-generate").addEventListener("click", generate);
$("#ai-retry").addEventListener("click", generate);
async function cancelJob(jobId) {
  try { await api("POST", `/api/ai-image/jobs/${jobId}/cancel`); } catch (error) {
    if (ai.jobId === jobId) $("#ai-error").textContent = error.message;
  }
}
$("#ai-cancel").addEventListener("click", () => {
  if (ai.jobId) return cancelJob(ai.jobId);
  // Still being sent (a slow server): cancelled as soon as the server says which job it is, or not
  // sent at all if it has not gone yet. Ignoring the click let the job run (on RunPod, be paid for).
  if (ai.mode === "running" && ai.run) {
    ai.run.cancelled = true;
    $("#ai-stage").textContent = "Cancelling…";
  }
});
// Keep and Revert can both be taken back from the toast.
$("#ai-keep").addEventListener("click", () => {
  const { item, jobId } = ai;
  const name = item.originalName || item.id;
  $("#ai-modal").close();
  announce(`Kept the studio shot of ${name}.`, async () => {
    if (!(await undoGeneration(item.id, jobId))) return `${name} changed since; nothing was undone.`;
    await loadPage();
    return `${name} shows the photo again; the studio shot stays in its history.`;
  });
});
$("#ai-revert").addEventListener("click", async () => {
  const { item, previousVersionId, opened } = ai;
  const result = item.currentVersionId;
  const name = item.originalName || item.id;
  try {
    // Only while the studio shot is what the image shows: a change made since (another tab, another
    // job) is not taken back.
    const reverted = (await api("POST", `/api/media/${item.id}/revert/${previousVersionId}?ifCurrent=${result}`)).media;
    if (ai.opened === opened && $("#ai-modal").open) $("#ai-modal").close();
    announce(`Reverted ${name} to the photo; the generated image stays in the history.`, async () => {
      // Only while the revert is still what the image shows: a change since is not undone.
      try {
        await api("POST", `/api/media/${item.id}/revert/${result}?ifCurrent=${reverted.currentVersionId}`);
      } catch (error) {
        if (error.code === "image_changed") return `${name} changed since; nothing was undone.`;
        throw error;
      }
      await loadPage();
      return `${name} shows the studio shot again.`;
    });
  } catch (error) {
    const said = error.code === "image_changed" ? "the image changed since the studio shot; nothing was reverted" : error.message;
    // Said where the user is: in the dialog while it shows this image, else in the page.
    if (ai.opened === opened && $("#ai-modal").open) $("#ai-error").textContent = `Could not revert: ${said}`;
    else status(`${name}: could not revert: ${said}`);
  }
});
$("#ai-modal").addEventListener("close", () => {
  // Closed while the job runs: it goes on at the server; say so, and say when it ends.
  if (ai.mode === "running") {
    status(`${ai.item.originalName || ai.item.id}: generating in the background; this line says when it is done.`);
    if (ai.jobId) {
      ai.abort?.abort();
      followInBackground(ai.jobId, ai.item);
    } else {
      // Still being sent: the request goes on (its idempotency key keeps it one job) and is
      // followed in the background once the server answers; nothing opened later cancels it.
      ai.run.background = true;
      ai.abort = null;
    }
  } else ai.abort?.abort();
  refreshAfterDialog(ai.opener);
});
// Picking a custom colour means the custom background.
$("#ai-custom-color").addEventListener("input", () => setChoice("background", "custom"));
$("#ai-variations").addEventListener("click", () => openVariations(ai.item));
