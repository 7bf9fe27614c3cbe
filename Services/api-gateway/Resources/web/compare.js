// Before / after: the split is a handle on the picture (drag it anywhere on the picture, or arrow
// keys on the slider it carries); the full-screen view adds zoom and pan. The picture sits on a
// neutral grey, never a checkerboard, unless one of the two images really has transparency.
import { imageURL } from "./api.js";
import { $, el } from "./dom.js";

const ZOOMS = { min: 1, max: 8, step: 1.5 };

/**
 * A comparison of two images behind the token. `before` and `after` are `{ path, version, alt }`;
 * `zoomable` adds zoom (buttons, the wheel, + and −) and pan (drag, arrow keys on the picture).
 * Returns the element; `element.split` is the slider (the keyboard's way in).
 */
export function comparison({ before, after, zoomable = false }) {
  const view = { split: 50, zoom: 1, x: 0, y: 0 };
  const beforeImg = el("img", { alt: before.alt, draggable: "false" });
  const afterImg = el("img", { alt: after.alt, draggable: "false" });
  const beforeLayer = el("div", { class: "layer before" }, beforeImg);
  const afterLayer = el("div", { class: "layer after" }, afterImg);
  const divider = el("div", { class: "divider", "aria-hidden": "true" }, el("span", { class: "knob" }));
  const split = el("input", { type: "range", class: "split", min: 0, max: 100, value: 50, "aria-label": "Compare before and after" });
  const stage = el("div", { class: "stage" }, beforeLayer, afterLayer, divider, split);
  const root = el("div", { class: `comparison${zoomable ? " zoomable" : ""}` }, stage);
  root.split = split;
  const zoomText = el("output", { class: "zoom-level", "aria-live": "polite" });

  function render() {
    const transform = `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
    beforeImg.style.transform = transform;
    afterImg.style.transform = transform;
    beforeLayer.style.clipPath = `inset(0 ${100 - view.split}% 0 0)`;
    afterLayer.style.clipPath = `inset(0 0 0 ${view.split}%)`;
    divider.style.left = `${view.split}%`;
    split.value = String(view.split);
    // Said, not only seen: how much of each image shows.
    split.setAttribute("aria-valuetext", `${view.split}% before on the left, ${100 - view.split}% after on the right`);
    zoomText.textContent = `${Math.round(view.zoom * 100)}%`;
    root.dataset.zoom = String(view.zoom);
  }

  /** Keeps the picture covering the stage: it can be moved only as far as the zoom lets it. */
  function clamp() {
    const box = stage.getBoundingClientRect();
    const reachX = ((view.zoom - 1) * box.width) / 2;
    const reachY = ((view.zoom - 1) * box.height) / 2;
    view.x = Math.max(-reachX, Math.min(reachX, view.x));
    view.y = Math.max(-reachY, Math.min(reachY, view.y));
  }

  /** Zooms to `zoom`, keeping the point `at` (relative to the stage's centre) where it is. */
  function zoomTo(zoom, at = { x: 0, y: 0 }) {
    const next = Math.max(ZOOMS.min, Math.min(ZOOMS.max, zoom));
    view.x = at.x - (next * (at.x - view.x)) / view.zoom;
    view.y = at.y - (next * (at.y - view.y)) / view.zoom;
    view.zoom = next;
    clamp();
    render();
  }

  function splitAt(clientX) {
    const box = stage.getBoundingClientRect();
    view.split = Math.round(Math.max(0, Math.min(100, ((clientX - box.left) / box.width) * 100)));
    render();
  }

  split.addEventListener("input", () => { view.split = Number(split.value); render(); });

  // Pointer: the handle (or anywhere, when not zoomed in) moves the split; elsewhere it pans.
  let drag = null;
  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const onKnob = event.target.closest?.(".knob") || event.target === split;
    drag = onKnob || view.zoom === 1 ? { kind: "split" } : { kind: "pan", x: event.clientX - view.x, y: event.clientY - view.y };
    stage.setPointerCapture?.(event.pointerId);
    if (drag.kind === "split") splitAt(event.clientX);
    event.preventDefault();
  });
  stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.kind === "split") { splitAt(event.clientX); return; }
    view.x = event.clientX - drag.x;
    view.y = event.clientY - drag.y;
    clamp();
    render();
  });
  const stop = () => { drag = null; };
  stage.addEventListener("pointerup", stop);
  stage.addEventListener("pointercancel", stop);

  if (zoomable) {
    stage.tabIndex = 0;
    stage.setAttribute("role", "img");
    stage.setAttribute("aria-label", "The picture: + and − zoom, 0 fits it, arrow keys move it when zoomed in");
    stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = stage.getBoundingClientRect();
      const at = { x: event.clientX - box.left - box.width / 2, y: event.clientY - box.top - box.height / 2 };
      zoomTo(view.zoom * (event.deltaY < 0 ? 1.25 : 0.8), at);
    }, { passive: false });
    stage.addEventListener("keydown", (event) => {
      if (event.target !== stage) return;
      const box = stage.getBoundingClientRect();
      const moves = { ArrowLeft: [0.1, 0], ArrowRight: [-0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1] };
      if (event.key === "+" || event.key === "=") zoomTo(view.zoom * ZOOMS.step);
      else if (event.key === "-") zoomTo(view.zoom / ZOOMS.step);
      else if (event.key === "0") zoomTo(1);
      else if (moves[event.key]) {
        view.x += moves[event.key][0] * box.width;
        view.y += moves[event.key][1] * box.height;
        clamp();
        render();
      } else return;
      event.preventDefault();
    });
    root.append(el("div", { class: "zoom-tools", role: "group", "aria-label": "Zoom" },
      el("button", { type: "button", text: "−", "aria-label": "Zoom out", onclick: () => zoomTo(view.zoom / ZOOMS.step) }),
      zoomText,
      el("button", { type: "button", text: "+", "aria-label": "Zoom in", onclick: () => zoomTo(view.zoom * ZOOMS.step) }),
      el("button", { type: "button", text: "Fit", "aria-label": "Fit the picture", onclick: () => zoomTo(1) })));
  }

  render();
  Promise.all([load(beforeImg, before), load(afterImg, after)]).then((transparent) => {
    root.classList.toggle("transparent", transparent.some(Boolean));
    root.dataset.loaded = "true";
  });
  return root;
}

/** Shows the image and tells whether it has transparent pixels (read from a small copy). */
async function load(img, { path, version }) {
  try {
    img.src = await imageURL(path, version, img);
    await img.decode();
  } catch {
    img.classList.add("broken");
    return false;
  }
  const canvas = document.createElement("canvas");
  canvas.width = 48;
  canvas.height = 48;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(img, 0, 0, 48, 48);
  const pixels = context.getImageData(0, 0, 48, 48).data;
  for (let index = 3; index < pixels.length; index += 4) if (pixels[index] < 250) return true;
  return false;
}

/** The comparison full screen, with zoom and pan; the focus goes back to the opener when it closes. */
export function openComparison({ title, before, after }) {
  const dialog = $("#compare-modal");
  const opener = document.activeElement;
  $("#compare-title").textContent = title;
  const view = comparison({ before, after, zoomable: true });
  $("#compare-body").replaceChildren(view);
  dialog.addEventListener("close", () => { $("#compare-body").replaceChildren(); opener?.focus?.(); }, { once: true });
  dialog.showModal();
  view.split.focus();
}
