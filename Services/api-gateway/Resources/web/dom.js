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

/** A thumbnail size (`?size=` of the thumbnail routes) for images shown about `cssPixels` wide. */
export const thumbnailSize = (cssPixels) => [128, 256, 512].find((size) => size >= cssPixels * (window.devicePixelRatio || 1)) ?? 512;

/** A job status as people read it (never the raw code). */
export function statusText(status) {
  return { IN_QUEUE: "Queued", QUEUED: "Queued", PROMPTING: "Preparing", SUBMITTED: "Submitted", IN_PROGRESS: "Generating",
    DOWNLOADING: "Saving", COMPLETED: "Done", FAILED: "Failed", CANCELLED: "Cancelled" }[status] || status;
}

/** The job statuses after which nothing changes. */
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
