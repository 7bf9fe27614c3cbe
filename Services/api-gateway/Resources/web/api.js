// The public HTTP API, as the admin UI uses it: the bearer token, JSON calls, images behind the
// token, and Server-Sent Events read with fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = "cyclorama.token";

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  // Called when the API refuses the token the session holds (401): the app signs out and says why.
  onUnauthorized: () => {},
};

/** A request's headers: `extra` and the session's token, with the token they carry (`sentWith`). */
function credentials(extra = {}) {
  const sentWith = session.token;
  const headers = { ...extra };
  if (sentWith) headers["Authorization"] = `Bearer ${sentWith}`;
  return { headers, sentWith };
}

/**
 * The APIError for a failed `response` to a request that carried token `sentWith`. A 401 signs out
 * only while that token is still the session's: a refusal answered late, after the user signed in
 * again with another token (or signed out), must not sign the new session out, nor a request sent
 * with no token (a follower still running after sign-out) rewrite the sign-in page's message.
 */
async function failure(response, sentWith) {
  let code = "http_" + response.status;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401 && sentWith && sentWith === session.token) session.onUnauthorized(message);
  return new APIError(response.status, code, message);
}

/** A JSON call; resolves to the parsed body, rejects with APIError (status 0: no answer). */
export async function api(method, path, body, extraHeaders = {}) {
  const { headers, sentWith } = credentials({ Accept: "application/json", ...extraHeaders });
  const init = { method, headers };
  if (body instanceof Blob || body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new APIError(0, "network", `the server did not answer (${error.message})`);
  }
  if (!response.ok) throw await failure(response, sentWith);
  return response.status === 204 ? null : response.json();
}

// Object URLs of images fetched with the token, by API path (and a version, to refresh), least
// recently used first. An afternoon of comparisons would otherwise keep every full-size image in
// memory until sign-out: beyond these bounds the least recently used are let go (an <img> already
// showing one keeps showing it; the next request for it fetches it again). Never let go: one loaded
// in the last seconds (its <img> may not have read it yet) or one an <img> on the page still has to
// load (a lazy tile below the fold).
const IMAGE_CACHE_BYTES = 64 * 1024 * 1024;
const IMAGE_CACHE_ENTRIES = 300;
const IMAGE_FRESH_MS = 2000;
const imageCache = new Map(); // key → { loading: Promise<url>, bytes (0 while loading), loadedAt, users: Set<WeakRef<img>> }
let imageCacheBytes = 0;

function stillNeeded(entry, now) {
  if (entry.bytes === 0 || now - entry.loadedAt < IMAGE_FRESH_MS) return true;
  for (const ref of entry.users) {
    const img = ref.deref();
    if (!img || !img.isConnected) entry.users.delete(ref);
    else if (!img.complete) return true;
  }
  return false;
}

function trimImageCache() {
  const now = Date.now();
  for (const [key, entry] of imageCache) {
    if (imageCacheBytes <= IMAGE_CACHE_BYTES && imageCache.size <= IMAGE_CACHE_ENTRIES) return;
    if (stillNeeded(entry, now)) continue;
    imageCache.delete(key);
    imageCacheBytes -= entry.bytes;
    entry.loading.then((url) => URL.revokeObjectURL(url));
  }
}

/** An object URL for an image behind the token (e.g. /api/media/<id>/file); `img`: the element it is for. */
export async function imageURL(path, version = "", img = null) {
  const key = `${path}#${version}`;
  let entry = imageCache.get(key);
  if (entry) {
    imageCache.delete(key); // the most recently used last
    imageCache.set(key, entry);
  } else {
    entry = { loading: null, bytes: 0, loadedAt: 0, users: new Set() };
    const created = entry;
    created.loading = (async () => {
      const { headers, sentWith } = credentials();
      const response = await fetch(path, { headers });
      if (!response.ok) throw await failure(response, sentWith);
      const blob = await response.blob();
      return { url: URL.createObjectURL(blob), bytes: Math.max(1, blob.size) };
    })().then(({ url, bytes }) => {
      if (imageCache.get(key) === created) {
        created.bytes = bytes;
        created.loadedAt = Date.now();
        imageCacheBytes += bytes;
      }
      return url;
    });
    imageCache.set(key, created);
  }
  if (img) entry.users.add(new WeakRef(img));
  try {
    const url = await entry.loading;
    trimImageCache();
    return url;
  } catch (error) {
    if (imageCache.get(key) === entry) imageCache.delete(key);
    throw error;
  }
}

/** An object URL for a file behind the token, not cached (a download: revoke it once saved). */
export async function freshObjectURL(path) {
  const { headers, sentWith } = credentials();
  const response = await fetch(path, { headers });
  if (!response.ok) throw await failure(response, sentWith);
  return URL.createObjectURL(await response.blob());
}

/** Sets `img.src` to an image behind the token; shows the alt text if it cannot be loaded. */
export function showImage(img, path, version = "") {
  const key = `${path}#${version}`;
  img.dataset.image = key;
  imageURL(path, version, img).then((url) => {
    if (img.dataset.image === key) img.src = url; // a later request for this img wins
  }).catch(() => { img.classList.add("broken"); });
}

/** Frees every cached image (on sign-out). */
export function forgetImages() {
  for (const entry of imageCache.values()) entry.loading.then((url) => URL.revokeObjectURL(url), () => {});
  imageCache.clear();
  imageCacheBytes = 0;
}

/** Whether a failed call is worth repeating as it was: no answer, a server error, rate limited. */
export function isTransient(error) {
  return error?.status === 0 || error?.status === 429 || error?.status >= 500;
}

/**
 * Follows `GET /api/ai-image/events?<query>` and calls `onEvent(name, data)` for each event until
 * the stream ends or `signal` aborts. Resolves when the stream is over.
 */
export async function followEvents(query, onEvent, signal) {
  const { headers, sentWith } = credentials({ Accept: "text/event-stream" });
  const response = await fetch(`/api/ai-image/events?${query}`, { headers, signal });
  if (!response.ok) throw await failure(response, sentWith);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length === 0) continue; // a keep-alive comment
      let parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch { continue; }
      onEvent(name, parsed);
    }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Repeats `call` while it fails without an answer (or with a server error), waiting 1 s, 2 s, ...
 * up to 15 s between tries and telling `onTrouble` each time; other errors are thrown. Only for
 * calls that are safe to repeat: reads, and POSTs with an Idempotency-Key.
 */
export async function persist(call, signal, onTrouble) {
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
