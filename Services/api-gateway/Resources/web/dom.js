// The small DOM helpers every view of the admin UI uses.

export const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes (`class`, `text`, `on<event>` handlers, others as attributes) and children. */
export const el = (tag, attributes = {}, ...children) => {
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

// The page's status line (a polite live region) clears itself after a while, so an old message is
// not read as news.
let statusTimer = null;
/** Says `text` in the page's status line. */
export function status(text) {
  $("#status").textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { if ($("#status").textContent === text) $("#status").textContent = ""; }, 20000);
}

/** A thumbnail size (`?size=` of the thumbnail routes) for images shown about `cssPixels` wide. */
export const thumbnailSize = (cssPixels) => [128, 256, 512].find((size) => size >= cssPixels * (window.devicePixelRatio || 1)) ?? 512;

/** A job status as people read it (never the raw code). */
export function statusText(status) {
  return { IN_QUEUE: "Queued", QUEUED: "Queued", PROMPTING: "Preparing", SUBMITTED: "Submitted", IN_PROGRESS: "Generating",
    DOWNLOADING: "Saving", COMPLETED: "Done", FAILED: "Failed", CANCELLED: "Cancelled" }[status] || status;
}

/** The job statuses after which nothing changes. */
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

/**
 * `names` made distinct for controls named after them: a name several share gets "(2 of 3)" after
 * it, so no two controls are called the same ("Select input.jpg" three times tells a screen-reader
 * user nothing). The rest stay as they are.
 */
export function distinctNames(names) {
  const counts = new Map();
  for (const name of names) counts.set(name, (counts.get(name) || 0) + 1);
  const seen = new Map();
  return names.map((name) => {
    if (counts.get(name) === 1) return name;
    seen.set(name, (seen.get(name) || 0) + 1);
    return `${name} (${seen.get(name)} of ${counts.get(name)})`;
  });
}

/**
 * Runs `work` for a press of `button` and ignores further presses until it is done (a second press
 * on a slow server repeated paid or destructive work). aria-disabled, not disabled: a disabled
 * button would drop a keyboard user's focus to the page.
 */
export async function onePressAtATime(button, work) {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    await work();
  } finally {
    button.removeAttribute("aria-disabled");
  }
}
