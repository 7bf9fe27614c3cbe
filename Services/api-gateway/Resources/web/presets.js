// Saved option presets (`/api/ai-image/presets`): a name for a set of generation options, chosen in
// the AI dialog and the batch set-up, and saved from either.
import { api } from "./api.js";
import { el } from "./dom.js";

/**
 * Wires one dialog's preset controls: `select` (choosing a preset puts its options into the form:
 * the form's defaults first, then what the preset sets), `name` and `save` (saves the form's options
 * under that name) and `said` (what happened, a polite live region). `read()` gives the form's
 * options, `apply(options)` sets the form from the defaults plus `options`.
 * Returns `refresh()`, which reads the presets again (call it when the dialog opens).
 */
export function presetControls({ select, name, save, said, read, apply }) {
  let presets = [];
  // Only the latest reading is shown: one answered after a later one (the dialog's opening read
  // late, after a save read the list with the new preset) would drop what the later one showed.
  let readings = 0;

  async function refresh(chosen = "") {
    const reading = ++readings;
    let read;
    try {
      read = (await api("GET", "/api/ai-image/presets")).presets;
    } catch (error) {
      if (reading !== readings) return;
      said.textContent = `The presets could not be read: ${error.message}`;
      read = [];
    }
    if (reading !== readings) return;
    presets = read;
    select.replaceChildren(el("option", { value: "", text: "None: the options below" }),
      ...presets.map((preset) => el("option", { value: preset.id, text: preset.name })));
    select.value = presets.some((preset) => preset.id === chosen) ? chosen : "";
    select.disabled = presets.length === 0;
  }

  select.addEventListener("change", () => {
    const preset = presets.find((each) => each.id === select.value);
    const options = preset ? preset.options : {};
    apply(options);
    // What this dialog has no control for is said, never dropped without a word.
    const unshown = [
      options.shadowStyle === "none" ? "no shadow" : null,
      options.framing && typeof options.framing === "object" ? "its own frame" : null,
      options.customInstructions ? "its instructions" : null,
    ].filter(Boolean);
    said.textContent = !preset ? "The default options are set below."
      : `The options of “${preset.name}” are set below` +
        (unshown.length ? `, except ${unshown.join(", ")}, which this dialog cannot show: the settings' defaults are used instead.` : ".");
  });

  save.addEventListener("click", async () => {
    const wanted = name.value.trim();
    if (!wanted) {
      said.textContent = "Give the preset a name first.";
      name.focus();
      return;
    }
    save.disabled = true;
    try {
      const answer = await api("POST", "/api/ai-image/presets", { name: wanted, options: read() },
        { "Idempotency-Key": `ui-preset-${crypto.randomUUID()}` });
      name.value = "";
      await refresh(answer.preset.id);
      said.textContent = `Saved the options as “${answer.preset.name}”.`;
      // The button was disabled while saving (the focus left it): back to the new preset's choice.
      select.focus();
    } catch (error) {
      said.textContent = `Could not save the preset: ${error.message}`;
      name.focus();
    } finally {
      save.disabled = false;
    }
  });

  return refresh;
}
