// A/B variations of one image: start a set, watch the candidates, choose the winner.
import { api, showImage } from "./api.js";
import { $, el, onePressAtATime, status, statusText, TERMINAL } from "./dom.js";
import { ai } from "./ai.js";
import { openComparison } from "./compare.js";
import { refreshAfterDialog } from "./library.js";

const variations = { item: null, timer: null, shown: "" };

export async function openVariations(item) {
  variations.item = item;
  variations.shown = "";
  $("#variations-title").textContent = `Variations — ${item.originalName || item.id}`;
  $("#variations-error").textContent = "";
  $("#variations-status").textContent = "";
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

/** The order candidates are shown in: the recommended one first, the other standard ones, then the custom ones as typed. */
function shownOrder(candidates) {
  const rank = (candidate) => {
    const custom = /^Custom (\d+)$/.exec(candidate.name);
    if (custom) return 1000 + Number(custom[1]);
    return candidate.name.includes("Recommended") ? 0 : 1;
  };
  return [...candidates].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function renderVariations(set) {
  const focusedName = document.activeElement?.closest?.("#variation-list li")?.dataset.jobId;
  const item = variations.item;
  $("#variation-list").replaceChildren(...shownOrder(set.variations).map((candidate) => {
    const li = el("li", { "data-job-id": candidate.jobId, class: candidate.chosen ? "chosen" : "" },
      el("strong", { text: candidate.name }),
      // A custom candidate says what it was asked for.
      /^Custom \d+$/.test(candidate.name) && candidate.prompt
        ? el("p", { class: "prompt", title: candidate.prompt, text: `“${candidate.prompt}”` }) : "",
      el("div", { class: `state-${candidate.status}`, text: candidate.chosen ? "✓ Chosen: the image now" : statusText(candidate.status) }));
    if (candidate.url) {
      const img = el("img", { alt: candidate.name });
      showImage(img, candidate.url);
      li.prepend(img);
      li.append(el("div", { class: "row" },
        el("button", {
          type: "button", text: candidate.chosen ? "Chosen" : "Choose", disabled: Boolean(set.chosenJobId),
          "aria-label": `Choose ${candidate.name}`, onclick: () => chooseVariation(candidate.jobId),
        }),
        el("button", {
          type: "button", text: "Compare", "aria-label": `Compare ${candidate.name} with the photo`,
          onclick: () => openComparison({
            title: `${item.originalName || item.id}: the photo and ${candidate.name}`,
            before: { path: item.url, version: item.currentVersionId, alt: `The photo: ${item.originalName || item.id}` },
            after: { path: candidate.url, version: candidate.jobId, alt: candidate.name },
          }),
        })));
    }
    return li;
  }));
  if (focusedName) document.querySelector(`#variation-list li[data-job-id="${focusedName}"] button`)?.focus();
}

async function chooseVariation(jobId) {
  const item = variations.item;
  try {
    await api("POST", `/api/ai-image/variations/${item.id}/choose`, { jobId });
    const said = "The chosen variation is now the image; the original stays in the history.";
    status(said);
    if (variations.item !== item) return; // closed, or another media's variations meanwhile
    await refreshVariations();
    // The Choose buttons are now disabled: the focus goes to what happened, where the user is.
    $("#variations-status").textContent = said;
    $("#variations-status").focus();
  } catch (error) {
    if (variations.item === item) $("#variations-error").textContent = error.message;
  }
}

// One set per press: each variation is a job, on RunPod paid for.
$("#variations-start").addEventListener("click", () => onePressAtATime($("#variations-start"), async () => {
  const item = variations.item;
  if (!item) return;
  const customPrompts = $("#variation-prompts").value.split("\n").map((line) => line.trim()).filter(Boolean);
  $("#variations-error").textContent = "";
  try {
    await api("POST", `/api/ai-image/variations/${item.id}`, { customPrompts });
    if (variations.item === item) await refreshVariations();
  } catch (error) {
    if (variations.item === item) {
      $("#variations-error").textContent = error.code === "ab_testing_disabled"
        ? "A/B variations are off: turn on “A/B variations” in AI Settings."
        : error.message;
    }
  }
}));
$("#variations-modal").addEventListener("close", () => {
  clearTimeout(variations.timer);
  variations.item = null;
  refreshAfterDialog(ai.opener);
});
