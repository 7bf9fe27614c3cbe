// Catalog framing (docs/framing.md): the presets as people read them, and the output size a choice
// gives, shown next to it in the AI dialog, batches and the settings.

/** The presets, in the order they are offered; the figures are the server's (FramingPreset). */
export const FRAMING_PRESETS = [
  { value: "none", label: "The photo's own frame", minSide: null, maxSide: null },
  { value: "amazon", label: "Amazon: square, product 85 %", minSide: 1600, maxSide: 2000 },
  { value: "google", label: "Google Shopping: square, product 80 %", minSide: 1500, maxSide: 2000 },
  { value: "shopify", label: "Shopify: square 2048 px", minSide: 2048, maxSide: 2048 },
  { value: "ebay", label: "eBay: square, product 85 %", minSide: 1600, maxSide: 2000 },
];

/** Fills a <select> with the presets and chooses `value` (the photo's frame when unknown). */
export function fillFramingChoices(select, value) {
  select.replaceChildren(...FRAMING_PRESETS.map((preset) => {
    const option = document.createElement("option");
    option.value = preset.value;
    option.textContent = preset.label;
    return option;
  }));
  select.value = FRAMING_PRESETS.some((preset) => preset.value === value) ? value : "none";
}

/** What size the output will be: exact when it is known (the photo's frame of a known photo, a
 * fixed preset), else the preset's bounds (the product's own resolution decides within them). */
export function framingOutputSize(value, { width, height, upscale = 1 } = {}) {
  const preset = FRAMING_PRESETS.find((candidate) => candidate.value === value) ?? FRAMING_PRESETS[0];
  if (preset.value === "none") {
    return width && height ? `Output: ${width * upscale} × ${height * upscale} px, as the photo` : "Output: the photo's size and shape";
  }
  if (preset.minSide === preset.maxSide) return `Output: ${preset.minSide} × ${preset.maxSide} px`;
  return `Output: square, ${preset.minSide}–${preset.maxSide} px a side`;
}
