// Batches: what will be generated and with which options first, then the batch as it runs (its
// dialog can be closed; the batches panel opens it, or any earlier batch, again).
import { api, followEvents, persist, session, showImage, sleep } from "./api.js";
import { openComparison } from "./compare.js";
import { $, distinctNames, el, statusText, thumbnailSize } from "./dom.js";
import { fillFramingChoices, framingOutputSize } from "./framing.js";
import { loadPage, loadSettings, state, updateSelection } from "./library.js";
import { announce, offerNotifications, undoGeneration } from "./notify.js";
import { presetControls } from "./presets.js";

// The batch the dialog shows (`id`, its `items` by job id); every running batch has its own
// follower, dialog open or not, so each one's end is announced once.
// `view`: a token for what the dialog shows (a set-up, a run being started, an opened batch), replaced
// whenever it shows something else: an answer that comes back after the dialog moved on must not
// take it over.
const batch = { id: null, items: new Map(), pending: null, ended: false, review: false, refresh: null, view: null };
const followers = new Map(); // batch id → AbortController
const announced = new Set(); // batch ids whose end was said (or that were opened already ended)

// Step one: what will be generated, with which options, and what it replaces; nothing starts yet.
$("#batch-generate").addEventListener("click", async () => {
  // The options' defaults, the review choice and the backend (its cost) as the settings are now,
  // not as the page read them (another tab or the API may have changed them); kept when unreadable.
  // At most 2 s: a server slow to answer must not leave the button doing nothing.
  await Promise.race([loadSettings({ quiet: true }), sleep(2000)]);
  // A second press while the settings were read, signed out meanwhile, or the selection cleared.
  if ($("#batch-modal").open || !session.token || state.selected.size === 0) return;
  const chosen = [...state.selected.values()];
  batch.view = {};
  batch.pending = chosen;
  $("#batch-error").textContent = "";
  $("#batch-setup").hidden = false;
  $("#batch-run").hidden = true;
  $("#batch-start").hidden = false;
  $("#batch-cancel").hidden = true;
  $("#batch-start").textContent = `Start ${chosen.length} generation${chosen.length === 1 ? "" : "s"}`;
  $("#batch-setup-items").replaceChildren(...chosen.map((item) => el("li", { text: item.originalName || item.id })));
  setBatchOptions({});
  $("#b-preset-said").textContent = "";
  refreshPresets();
  $("#b-review").checked = state.settings.aiImageReviewBeforeReplace === "true";
  const runpod = state.settings.aiImageBackend === "runpod";
  const perImage = Number(state.settings.aiImagePricePerMegapixel || 0.03) * (Number(state.settings.aiImageResolution || 1024) ** 2) / 1e6;
  // RunPod charges the output it makes (about resolution² in FLUX's trained sizes); an upscale is done here after it, free.
  batch.costNote = runpod ? ` On RunPod this costs about $${(perImage * chosen.length).toFixed(2)} ($${perImage.toFixed(3)} per image).` : " The local engine is free.";
  describeSetup();
  $("#batch-modal").showModal();
  $("#batch-start").focus();
});

/** Sets the batch options: the settings' defaults, then what `options` sets (a preset's). */
function setBatchOptions(options) {
  $("#b-shadow").value = options.shadowStyle && options.shadowStyle !== "none" ? options.shadowStyle : state.settings.aiImageDefaultShadow || "soft";
  const background = (options.backgroundColor || state.settings.aiImageDefaultBackground || "#FFFFFF").toUpperCase().replace("TRANSPARENT", "transparent");
  // A preset's own colour is offered as it is (one such choice at a time).
  for (const option of $("#b-background").querySelectorAll("option.preset-colour")) option.remove();
  if (![...$("#b-background").options].some((option) => option.value === background)) {
    $("#b-background").append(el("option", { class: "preset-colour", value: background, text: `Colour ${background}` }));
  }
  $("#b-background").value = background;
  $("#b-upscale").value = String(options.upscale || (state.settings.aiImageEnableUpscaling === "true" ? 2 : 1));
  fillFramingChoices($("#b-framing"), typeof options.framing === "string" ? options.framing : state.settings.aiImageDefaultFraming);
  $("#b-framing-size").textContent = framingOutputSize($("#b-framing").value);
  $("#b-watermark").checked = options.removeWatermark ?? true;
}

function batchOptions() {
  return {
    shadowStyle: $("#b-shadow").value, backgroundColor: $("#b-background").value,
    removeWatermark: $("#b-watermark").checked, upscale: Number($("#b-upscale").value), framing: $("#b-framing").value,
  };
}

const refreshPresets = presetControls({
  select: $("#b-preset"), name: $("#b-preset-name"), save: $("#b-preset-save"), said: $("#b-preset-said"),
  read: batchOptions, apply: setBatchOptions,
});

/** What starting will do to the library, as the review choice says. */
function describeSetup() {
  $("#batch-note").textContent = ($("#b-review").checked
    ? "Each result waits for your review: only those you approve replace the photo (the original stays in its history)."
    : "Each result replaces the photo in the media library; the original stays in its history.") + (batch.costNote || "");
}

$("#b-review").addEventListener("change", describeSetup);
$("#b-framing").addEventListener("change", () => { $("#b-framing-size").textContent = framingOutputSize($("#b-framing").value); });

// Step two: the batch runs; its dialog can be closed and opened again from the toolbar.
$("#batch-start").addEventListener("click", async () => {
  const chosen = batch.pending || [];
  const view = {};
  batch.view = view;
  const options = batchOptions();
  const review = $("#b-review").checked;
  batch.id = null;
  batch.ended = false;
  batch.review = review;
  batch.items = new Map();
  $("#batch-review-all").hidden = true;
  $("#batch-setup").hidden = true;
  $("#batch-run").hidden = false;
  $("#batch-start").hidden = true;
  $("#batch-cancel").hidden = false;
  $("#batch-cancel").disabled = true;
  $("#batch-progress").value = 0;
  $("#batch-items").replaceChildren();
  $("#batch-summary").textContent = `Starting ${chosen.length} generations…`;
  const abort = new AbortController();
  // One key per start: a call repeated after a lost answer gets the same batch, never a second.
  const key = { "Idempotency-Key": `ui-batch-${crypto.randomUUID()}` };
  try {
    const answer = await persist(
      () => api("POST", "/api/ai-image/batch", { mediaIds: chosen.map((item) => item.id), options, review }, key), abort.signal,
      () => { if (batch.view === view) $("#batch-summary").textContent = "Connection lost: trying again…"; });
    // What was sent leaves the selection (not what the user selected since).
    for (const item of chosen) state.selected.delete(item.id);
    updateSelection();
    if (batch.view !== view) {
      // The dialog moved on (another batch opened) while the server answered: this one is
      // followed in the background and its end announced, the dialog left as it is.
      followBatch(answer.batchId);
      return;
    }
    batch.id = answer.batchId;
    $("#batch-cancel").disabled = false;
    const names = new Map(chosen.map((item) => [item.id, item]));
    showItems(answer.jobs.map((job) => ({ ...job, originalName: names.get(job.mediaId)?.originalName })));
    followBatch(answer.batchId);
  } catch (error) {
    if (error.name !== "AbortError" && batch.view === view) $("#batch-error").textContent = `The batch could not run: ${error.message}`;
  }
});

/** The run view's list: one line per item (thumbnail, name, state), replacing what it showed. */
function showItems(jobs) {
  batch.items = new Map();
  $("#batch-items").replaceChildren();
  // Items of the same file name are told apart in their controls' names ("(2 of 3)").
  const names = distinctNames(jobs.map((job) => job.originalName || job.mediaId));
  for (const [index, job] of jobs.entries()) {
    const name = names[index];
    const img = el("img", { alt: name });
    showImage(img, `/api/media/${job.mediaId}/thumbnail?size=${thumbnailSize(96)}`, `${job.jobId}-${job.status}`);
    const label = el("span", { class: `state-${job.status}`, text: statusText(job.status), tabindex: "-1" });
    const li = el("li", { "data-job-id": job.jobId }, img, el("div", { class: "name", text: name }), label);
    batch.items.set(job.jobId, {
      li, img, label, name, originalName: job.originalName || job.mediaId, mediaId: job.mediaId, status: job.status, review: null,
    });
    $("#batch-items").append(li);
  }
}

const REVIEW_WORDS = { waiting: "Waiting for your review", approved: "✓ Approved: the image now", rejected: "✗ Rejected: the photo stays" };

/**
 * Under review: each finished item shows its result with Approve / Reject / Compare (a decision is
 * final, so a decided item keeps only its words and Compare), and the batch offers all at once.
 */
function showReview(status) {
  batch.review = Boolean(status.review);
  let waiting = 0;
  for (const item of status.items || []) {
    const entry = batch.items.get(item.jobId);
    if (!entry || !item.review) continue;
    // A decision is final: a reading sent before it (answered late) cannot make it wait again.
    const review = entry.review && entry.review.state !== "waiting" && item.review.state === "waiting" ? entry.review : item.review;
    if (review.state === "waiting") waiting += 1;
    if (entry.review?.state === review.state) continue;
    entry.review = review;
    showImage(entry.img, `${review.thumbnailUrl}?size=${thumbnailSize(96)}`, item.jobId);
    entry.img.alt = `The result for ${entry.name}`;
    entry.label.className = `review-${review.state}`;
    entry.label.textContent = REVIEW_WORDS[review.state];
    entry.li.querySelector(".review-actions")?.remove();
    const compare = el("button", {
      type: "button", text: "Compare", "aria-label": `Compare the result for ${entry.name} with the photo`,
      onclick: () => openComparison({
        title: `${entry.name}: the photo and its result`,
        // The version the result would replace (or replaced): never the result itself.
        before: review.baseVersionId
          ? { path: `/api/media/${entry.mediaId}/versions/${review.baseVersionId}/file`, version: review.baseVersionId, alt: `The photo: ${entry.name}` }
          : { path: `/api/media/${entry.mediaId}/file`, version: `${item.jobId}-before`, alt: `The photo: ${entry.name}` },
        after: { path: review.url, version: item.jobId, alt: `The result for ${entry.name}` },
      }),
    });
    const actions = review.state !== "waiting" ? [compare] : [
      el("button", { type: "button", class: "primary", text: "Approve", "aria-label": `Approve the result for ${entry.name}`,
        onclick: () => decide("approve", [item.jobId]) }),
      el("button", { type: "button", text: "Reject", "aria-label": `Reject the result for ${entry.name}`,
        onclick: () => decide("reject", [item.jobId]) }),
      compare,
    ];
    entry.li.append(el("div", { class: "row review-actions" }, ...actions));
  }
  $("#batch-review-all").hidden = !batch.review || waiting === 0;
  $("#batch-approve-all").textContent = `Approve all ${waiting} waiting`;
  $("#batch-reject-all").textContent = `Reject all ${waiting} waiting`;
}

/** Reads the batch again (with its results for review) soon, once for a burst of finished items. */
function refreshReview() {
  if (!batch.review || batch.refresh) return;
  const batchId = batch.id;
  batch.refresh = setTimeout(async () => {
    batch.refresh = null;
    try {
      const answer = await api("GET", `/api/ai-image/batch/${batchId}`);
      if (batch.id === batchId) showReview(answer);
    } catch { /* the next finished item, or the batch's end, reads it again */ }
  }, 800);
}

/** Approves or rejects the results of `jobIds` (null: every one waiting), then says what happened where the user is. */
async function decide(decision, jobIds) {
  if (!batch.id) return;
  const order = [...batch.items.keys()];
  const from = jobIds ? order.indexOf(jobIds[0]) : -1;
  $("#batch-error").textContent = "";
  const body = jobIds ? { decision, jobIds } : { decision };
  try {
    const answer = await api("POST", `/api/ai-image/batch/${batch.id}/review`, body,
      { "Idempotency-Key": `ui-review-${crypto.randomUUID()}` });
    showBatchSummary(answer.batch);
    showReview(answer.batch);
    const verb = decision === "approve" ? "Approved" : "Rejected";
    let said = `${verb} ${answer.decided} result${answer.decided === 1 ? "" : "s"}` +
      (decision === "approve" && answer.decided ? ": the images now show them, the photos stay in their history." : ".");
    if (answer.skipped.length) said += ` ${answer.skipped.length} left as they were: ${answer.skipped.map((skip) => skip.reason).join("; ")}.`;
    $("#batch-summary").textContent = said;
    // The buttons just used are gone: the focus moves on to the next result waiting, or to what happened.
    const next = order.slice(from + 1).concat(order.slice(0, from + 1))
      .map((jobId) => batch.items.get(jobId)).find((entry) => entry?.review?.state === "waiting");
    (next?.li.querySelector(".review-actions button") || $("#batch-summary")).focus();
    loadPage({ quiet: true });
  } catch (error) {
    $("#batch-error").textContent = `Could not ${decision}: ${error.message}`;
  }
}

$("#batch-approve-all").addEventListener("click", () => decide("approve", null));
$("#batch-reject-all").addEventListener("click", () => decide("reject", null));

/** Opens the run view of batch `batchId` as the server has it, and follows it while it runs. */
export async function openBatch(batchId) {
  const view = {};
  batch.view = view;
  const answer = await api("GET", `/api/ai-image/batch/${batchId}`);
  if (batch.view !== view) return; // something else was opened meanwhile
  batch.id = batchId;
  batch.ended = false;
  // A batch that had ended before it was opened is not news.
  if (answer.status === "COMPLETED" || answer.status === "CANCELLED") announced.add(batchId);
  $("#batch-setup").hidden = true;
  $("#batch-run").hidden = false;
  $("#batch-start").hidden = true;
  $("#batch-cancel").hidden = false;
  $("#batch-error").textContent = "";
  batch.review = Boolean(answer.review);
  showItems(answer.items);
  showBatchSummary(answer);
  showReview(answer);
  if (!$("#batch-modal").open) $("#batch-modal").showModal();
  $("#batch-summary").focus();
  if (!batch.ended) followBatch(batchId);
}


function showBatchItem(job) {
  const entry = batch.items.get(job.jobId);
  if (!entry) return;
  entry.status = job.status;
  // A result under review says its review state (showReview), never the job's "Completed" again.
  if (entry.review) return;
  entry.label.className = `state-${job.status}`;
  entry.label.textContent = job.status === "FAILED" && job.error ? `Failed: ${job.error.message}` : statusText(job.status);
  if (job.status !== "COMPLETED") return;
  // Under review the result waits beside the photo; otherwise the thumbnail turns into it at once.
  if (batch.review) refreshReview();
  else showImage(entry.img, `/api/media/${entry.mediaId}/thumbnail?size=${thumbnailSize(96)}`, job.jobId);
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
  // Nothing more to be told of once it ended; the focus, if it was there, goes to what happened.
  if (ended && document.activeElement === $("#batch-notify")) $("#batch-summary").focus();
  $("#batch-notify-row").hidden = ended;
  if (!ended) showBatchNotify(); // as the browser answers now (perhaps asked in the AI dialog)
  // What did not succeed can be tried again, as a new batch with the same options.
  const again = (counts.FAILED || 0) + (counts.CANCELLED || 0);
  // Retried once at most: a batch retried already says so instead.
  $("#batch-retry").hidden = !(ended && again > 0 && !summary.retriedBy);
  $("#batch-retry").textContent = `Retry the ${again} that did not succeed`;
  if (summary.retriedBy) $("#batch-summary").textContent += " · retried as a new batch (see Batches)";
}

/** A batch's end (`final`: its status), in the page and (allowed, page hidden) by the browser; Undo takes its results back. */
function announceBatch(final) {
  announced.add(final.batchId);
  const counts = final.counts || {};
  const done = counts.COMPLETED || 0;
  const headline = final.status === "CANCELLED" ? "cancelled" : done === final.total ? "done" : "finished with problems";
  const succeeded = final.items.filter((item) => item.status === "COMPLETED");
  if (final.review) {
    // Nothing was replaced: the results wait, and Undo has nothing to take back.
    const waiting = final.awaitingReview || 0;
    announce(`Batch ${headline}: ${done} of ${final.total} done; ${waiting} result${waiting === 1 ? "" : "s"} waiting for your review (Batches).`, null);
    loadPage();
    return;
  }
  const text = `Batch ${headline}: ${done} of ${final.total} done.`;
  announce(text, succeeded.length === 0 ? null : async () => {
    let undone = 0;
    for (const item of succeeded) if (await undoGeneration(item.mediaId, item.jobId)) undone += 1;
    await loadPage();
    const changed = succeeded.length - undone;
    return `Undid the batch: ${undone} image${undone === 1 ? "" : "s"} show the photo again` +
      (changed ? `; ${changed} changed since and were left as they are.` : ".");
  });
  loadPage();
}

/**
 * Follows batch `batchId` until it ends (once per batch: a second call finds its follower), feeding
 * the dialog while the dialog shows it, and announces the end unless that was not news.
 */
async function followBatch(batchId) {
  if (followers.has(batchId)) return;
  const abort = new AbortController();
  followers.set(batchId, abort);
  const shown = () => batch.id === batchId;
  try {
    try {
      await followEvents(`batchId=${batchId}`, (name, data) => {
        if (!shown()) return;
        if (name === "item") showBatchItem(data);
        else if (name === "batch") showBatchSummary(data);
      }, abort.signal);
    } catch (error) {
      if (error.name === "AbortError") return;
    }
    // The stream ended (or broke): the batch's own answer is the truth; asked until it answers.
    let final = await persist(() => api("GET", `/api/ai-image/batch/${batchId}`), abort.signal);
    while (final.status !== "COMPLETED" && final.status !== "CANCELLED") {
      await sleep(3000);
      final = await persist(() => api("GET", `/api/ai-image/batch/${batchId}`), abort.signal);
    }
    if (shown()) {
      for (const item of final.items) showBatchItem(item);
      showBatchSummary(final);
      showReview(final);
    }
    if (!announced.has(batchId)) announceBatch(final);
  } catch (error) {
    if (error.name !== "AbortError" && shown()) $("#batch-error").textContent = `Lost track of the batch: ${error.message}`;
  } finally {
    followers.delete(batchId);
  }
}

$("#batch-retry").addEventListener("click", async () => {
  if (!batch.id) return;
  const view = batch.view;
  $("#batch-retry").disabled = true;
  const key = { "Idempotency-Key": `ui-retry-${crypto.randomUUID()}` };
  try {
    const answer = await persist(() => api("POST", `/api/ai-image/batch/${batch.id}/retry`, {}, key), new AbortController().signal);
    if (batch.view !== view) { followBatch(answer.batchId); return; } // the dialog moved on: followed in the background
    batch.id = answer.batchId;
    batch.ended = false;
    batch.review = Boolean(answer.review);
    $("#batch-review-all").hidden = true;
    const names = new Map([...batch.items.values()].map((entry) => [entry.mediaId, entry.originalName]));
    showItems(answer.jobs.map((job) => ({ ...job, originalName: names.get(job.mediaId) })));
    $("#batch-retry").hidden = true;
    $("#batch-cancel").disabled = false;
    $("#batch-summary").textContent = `Retrying ${answer.jobs.length}…`;
    $("#batch-summary").focus();
    followBatch(answer.batchId);
  } catch (error) {
    if (batch.view === view) $("#batch-error").textContent = `Could not retry: ${error.message}`;
  } finally {
    $("#batch-retry").disabled = false;
  }
});

// The batches panel: every batch, newest first, with its counts; any one opens in the batch dialog.
const panel = { page: 1, opener: null };

async function showBatches() {
  $("#batches-error").textContent = "";
  let answer;
  try {
    answer = await api("GET", `/api/ai-image/batches?page=${panel.page}&pageSize=20`);
  } catch (error) {
    $("#batches-page").textContent = "";
    $("#batches-error").textContent = `The batches could not be read: ${error.message}`;
    return;
  }
  const pages = Math.max(1, Math.ceil(answer.total / 20));
  $("#batches-page").textContent = `Page ${panel.page} of ${pages} · ${answer.total} batch${answer.total === 1 ? "" : "es"}`;
  $("#batches-prev").disabled = panel.page <= 1;
  $("#batches-next").disabled = panel.page >= pages;
  $("#batches-empty").hidden = answer.items.length > 0;
  // Batches started in the same second are told apart: "(1 of 2)" after the time.
  const spoken = distinctNames(answer.items.map((item) => new Date(item.createdAt).toLocaleString()));
  $("#batches-list").replaceChildren(...answer.items.map((item, index) => {
    const when = new Date(item.createdAt).toLocaleString();
    const counts = item.counts;
    const words = { QUEUED: "Queued", PROCESSING: "Running", COMPLETED: counts.FAILED || counts.CANCELLED ? "Finished with problems" : "Done", CANCELLED: "Cancelled" };
    const said = `${counts.COMPLETED || 0} of ${item.total} done` + (counts.FAILED ? `, ${counts.FAILED} failed` : "") +
      (counts.CANCELLED ? `, ${counts.CANCELLED} cancelled` : "") + (counts.RUNNING ? `, ${counts.RUNNING} to go` : "") +
      (item.awaitingReview ? `, ${item.awaitingReview} waiting for your review` : "");
    return el("li", { "data-batch-id": item.batchId },
      el("div", {}, el("strong", { text: words[item.status] || item.status }), ` · ${said} · $${Number(item.cost).toFixed(3)}`),
      el("div", { class: "muted", text: `Started ${when}` }),
      el("button", {
        type: "button", text: "Open", "aria-label": `Open the batch started ${spoken[index]}`,
        onclick: async () => {
          $("#batches-modal").close();
          try { await openBatch(item.batchId); } catch (error) { $("#batch-error").textContent = error.message; }
        },
      }));
  }));
}

$("#open-batches").addEventListener("click", () => {
  panel.page = 1;
  // Not last time's rows (a batch "Running" that has since ended) while the list is read again.
  $("#batches-list").replaceChildren();
  $("#batches-empty").hidden = true;
  $("#batches-page").textContent = "Reading the batches…";
  $("#batches-prev").disabled = $("#batches-next").disabled = true;
  $("#batches-modal").showModal();
  showBatches();
});
$("#batches-prev").addEventListener("click", () => { panel.page -= 1; showBatches(); });
$("#batches-next").addEventListener("click", () => { panel.page += 1; showBatches(); });

$("#batch-cancel").addEventListener("click", async () => {
  if (!batch.id) return;
  try {
    showBatchSummary(await api("POST", `/api/ai-image/batch/${batch.id}/cancel`));
    // The Cancel button is now disabled: the focus goes to what the cancel did, not to the page.
    $("#batch-summary").focus();
  } catch (error) {
    $("#batch-error").textContent = `Could not cancel: ${error.message}`;
  }
});
// Closed while it runs, the batch is still followed (by its follower): its end is announced wherever the user is.
$("#batch-modal").addEventListener("close", () => loadPage());
const showBatchNotify = offerNotifications($("#batch-notify"), $("#batch-notify-state"));
