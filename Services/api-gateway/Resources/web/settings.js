// AI settings (errors shown at the field) and the RunPod key dialog.
import { api, APIError } from "./api.js";
import { $, el } from "./dom.js";
import { fillFramingChoices, framingOutputSize } from "./framing.js";
import { loadSettings, state } from "./library.js";

const SETTING_FIELDS = [
  "aiImageEnabled", "aiImageBackend", "runpodImageDelivery", "aiImageDefaultShadow", "aiImageDefaultBackground", "aiImageDefaultFraming", "aiImageFidelityMode", "aiImageInferenceSteps",
  "aiImageGuidance", "aiImageResolution", "aiImageMaxConcurrent", "aiImageEnableUpscaling", "aiImageAbTestEnabled", "aiImageReviewBeforeReplace",
  "aiImageEnableWebhooks", "aiImageWebhookUrl", "aiImagePricePerMegapixel", "aiImageMonthlyBudget", "aiImageNotifyUrl",
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

$("#open-settings").addEventListener("click", openSettings);
$("#settings-reload").addEventListener("click", openSettings);

/**
 * Opens the settings as the server has them now. When they cannot be read, the form is not shown at
 * all (old values saved from it would overwrite newer ones): the dialog says why and offers to try again.
 */
async function openSettings() {
  const form = $("#settings-form");
  clearFieldErrors(form);
  $("#settings-error").textContent = "";
  $("#settings-status").textContent = "";
  const failure = await loadSettings({ quiet: true });
  $("#settings-fields").hidden = Boolean(failure);
  $("#settings-save").hidden = Boolean(failure);
  $("#settings-reload").hidden = !failure;
  if (failure) {
    $("#settings-error").textContent = `The settings could not be read (${failure.message}). Nothing is shown, so nothing older can be saved over them.`;
    if (!$("#settings-modal").open) $("#settings-modal").showModal();
    $("#settings-reload").focus();
    return;
  }
  fillFramingChoices($("#s-framing"), state.settings.aiImageDefaultFraming);
  for (const key of SETTING_FIELDS) {
    const field = form.elements[key];
    const value = state.settings[key] ?? "";
    if (field.type === "checkbox") field.checked = value === "true";
    else if (field.type === "color") field.value = value.toLowerCase() || "#ffffff";
    else field.value = value;
  }
  $("#s-framing-size").textContent = framingOutputSize($("#s-framing").value);
  if (!$("#settings-modal").open) $("#settings-modal").showModal();
}

$("#s-framing").addEventListener("change", () => { $("#s-framing-size").textContent = framingOutputSize($("#s-framing").value); });

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
    if (error instanceof APIError && error.code?.startsWith("runpod_")) {
      showRunPodRefusal(form, error);
    } else if (!(error instanceof APIError && error.status === 400 && showFieldErrors(form, error.message))) {
      $("#settings-error").textContent = `Not saved: ${error.message}`;
    } else {
      $("#settings-error").textContent = "Not saved: correct the marked fields.";
    }
  }
});

/** RunPod would refuse the jobs: said in words, at the backend field, with the way to the key. */
function showRunPodRefusal(form, error) {
  const field = form.elements.namedItem("aiImageBackend");
  const reason = error.message.replace(/^aiImageBackend stays (\w+), nothing was changed: /, "");
  const words = {
    runpod_key_missing: "RunPod needs its API key first.",
    runpod_key_refused: "RunPod refused the stored API key.",
    runpod_endpoint_not_found: "RunPod has no such endpoint.",
  }[error.code] || `RunPod cannot be used now: ${reason}`;
  const note = el("p", { class: "field-error", id: "aiImageBackend-error" },
    `Not switched to RunPod: ${words} The backend stays the local engine. `,
    el("button", {
      type: "button", text: "Open API keys",
      onclick: () => { $("#settings-modal").close(); $("#open-keys").click(); },
    }));
  field.setAttribute("aria-invalid", "true");
  field.setAttribute("aria-describedby", note.id);
  field.after(note);
  $("#settings-error").textContent = "Not saved.";
  field.focus();
}

// MARK: API keys

$("#open-keys").addEventListener("click", async () => {
  $("#keys-error").textContent = "";
  $("#keys-status").textContent = "";
  $("#key-input").value = "";
  await loadSettings();
  $("#key-current").textContent = state.settings.runpodApiKey || "none";
  $("#notify-secret-current").textContent = state.settings.aiImageNotifySecret || "none";
  $("#notify-secret-input").value = "";
  $("#notify-secret-error").textContent = "";
  $("#notify-secret-status").textContent = "";
  $("#keys-modal").showModal();
});

// The notification signing secret: 32 random bytes made here, shown once to copy to the receiver.
$("#notify-secret-make").addEventListener("click", () => {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const text = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
  const input = $("#notify-secret-input");
  input.value = `whsec_${text}`;
  input.select();
  $("#notify-secret-status").textContent = "Copy it to the receiver, then save it.";
});
$("#notify-secret-save").addEventListener("click", async () => {
  const input = $("#notify-secret-input");
  $("#notify-secret-error").textContent = "";
  if (!input.value) {
    $("#notify-secret-error").textContent = "Make a secret first.";
    $("#notify-secret-make").focus();
    return;
  }
  try {
    const answer = await api("PUT", "/api/ai-image/settings", { aiImageNotifySecret: input.value });
    state.settings = answer.settings;
    $("#notify-secret-current").textContent = answer.settings.aiImageNotifySecret || "none";
    input.value = "";
    $("#notify-secret-status").textContent = "Secret saved.";
  } catch (error) {
    $("#notify-secret-error").textContent = `Not saved: ${error.message}`;
  }
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
