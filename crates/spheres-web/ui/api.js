// The node's JSON API, on this origin. Every change carries `X-Spheres: 1`, which another
// site's page cannot add without a preflight the node never grants (docs/api.md).
import { say } from "./dom.js";
import { t } from "./i18n.js";

/** @typedef {import("../types/api").Status} Status */
/** @typedef {import("../types/api").SphereInfo} SphereInfo */
/** @typedef {import("../types/api").ShareInfo} ShareInfo */
/** @typedef {import("../types/api").RoomMessage} RoomMessage */
/** @typedef {import("../types/api").Member} Member */
/** @typedef {import("../types/api").Invite} Invite */
/** @typedef {import("../types/api").Contacts} Contacts */
/** @typedef {import("../types/api").ChatLine} ChatLine */
/** @typedef {import("../types/api").LinkPreview} LinkPreview */
/** @typedef {import("../types/api").InviteLink} InviteLink */
/** @typedef {import("../types/api").LinkInfo} LinkInfo */
/** @typedef {import("../types/api").NodeEvent} NodeEvent */
/** @typedef {import("../types/api").Connection} Connection */

/** @typedef {RequestInit & { json?: unknown }} ApiOptions */

/** An error from the node; `login` when it wants a login first. */
export class ApiError extends Error {
  /** @param {string} message @param {boolean} login */
  constructor(message, login) {
    super(message);
    this.login = login;
  }
}

/** Calls `/api` + `path`. `opts` are fetch's, plus `json` (a body sent as JSON). Answers the
 *  parsed body; throws an ApiError with the node's message, with `login` set when the node
 *  wants a login first. With `signal` aborted, throws an AbortError.
 *  @param {string} path @param {ApiOptions} [opts] @returns {Promise<any>} */
export async function api(path, opts = {}) {
  /** @type {ApiOptions & { headers: Record<string, string> }} */
  const init = { ...opts, headers: { ...(/** @type {Record<string, string>} */ (opts.headers) || {}) } };
  if (init.method && init.method !== "GET") init.headers["X-Spheres"] = "1";
  if (init.json !== undefined) {
    init.body = JSON.stringify(init.json);
    init.headers["Content-Type"] = "application/json";
    delete init.json;
  }
  const res = await fetch("/api" + path, init);
  const body = await res.json().catch(() => ({}));
  // Aborted while the body was read: the caller has gone, tell it so rather than answer {}.
  init.signal?.throwIfAborted();
  if (!res.ok) throw new ApiError(body.error || res.statusText, res.status === 401 && !!body.login);
  return body;
}

const enc = encodeURIComponent;

/** The node's answers, typed as the node declares them (types/api.d.ts, generated from the
 *  Rust types and checked by `tsc --checkJs`). */
export const get = {
  /** @param {AbortSignal} [signal] @returns {Promise<Status>} */
  status: (signal) => api("/status", { signal }),
  /** @param {AbortSignal} [signal] @returns {Promise<SphereInfo[]>} */
  spheres: (signal) => api("/spheres", { signal }),
  /** @param {string} sphere @param {AbortSignal} [signal] @returns {Promise<ShareInfo[]>} */
  shares: (sphere, signal) => api(`/spheres/${enc(sphere)}/shares`, { signal }),
  /** @param {string} sphere @param {AbortSignal} [signal] @returns {Promise<RoomMessage[]>} */
  messages: (sphere, signal) => api(`/spheres/${enc(sphere)}/messages`, { signal }),
  /** @param {string} sphere @param {AbortSignal} [signal] @returns {Promise<Member[]>} */
  members: (sphere, signal) => api(`/spheres/${enc(sphere)}/members`, { signal }),
  /** @param {string} sphere @param {AbortSignal} [signal] @returns {Promise<{ free: number }>} */
  space: (sphere, signal) => api(`/spheres/${enc(sphere)}/space`, { signal }),
  /** @param {AbortSignal} [signal] @returns {Promise<LinkInfo[]>} */
  links: (signal) => api("/links", { signal }),
  /** @param {AbortSignal} [signal] @returns {Promise<Invite[]>} */
  invites: (signal) => api("/invites", { signal }),
  /** @param {AbortSignal} [signal] @returns {Promise<Contacts>} */
  contacts: (signal) => api("/contacts", { signal }),
  /** @param {string} jid @param {AbortSignal} [signal] @returns {Promise<ChatLine[]>} */
  chat: (jid, signal) => api(`/chats/${enc(jid)}`, { signal }),
  chatSecurity: (jid, signal) => api(`/chats/${enc(jid)}/security`, { signal }),
};

/** Sends a file with PUT (XHR, for the upload's progress); resolves with the node's answer.
 *  Rejects with the node's message, or with an AbortError when `signal` aborts. */
export function putFile(url, file, onprogress, signal) {
  return new Promise((ok, ko) => {
    if (signal?.aborted) { ko(signal.reason); return; }
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    signal?.addEventListener("abort", stop, { once: true });
    xhr.onloadend = () => signal?.removeEventListener("abort", stop);
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-Spheres", "1");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onprogress(ev.loaded); };
    xhr.onload = () => {
      if (xhr.status < 300) {
        let answer = null; try { answer = JSON.parse(xhr.responseText); } catch {}
        return ok(answer);
      }
      let m = xhr.statusText; try { m = JSON.parse(xhr.responseText).error; } catch {}
      ko(new Error(m));
    };
    xhr.onerror = () => ko(new Error(file.name));
    xhr.onabort = () => ko(new DOMException(`${file.name}: stopped`, "AbortError"));
    xhr.send(file);
  });
}

/** A request given up because its view went away: nothing to say about it. */
export function aborted(e) { return e?.name === "AbortError"; }

let showLogin = () => {};
/** What to do when the node wants a login (the app shows the login view). */
export function onLoginNeeded(fn) { showLogin = fn; }
export function needLogin() { showLogin(); }

/** An action failed: says why in the live region. */
export function fail(e) {
  if (!aborted(e)) say(t("error", { msg: e.message }));
}

/** A view could not load: the login screen when that is why, else says why. */
export function failLoad(e) {
  if (aborted(e)) return;
  if (e.login) showLogin();
  else fail(e);
}
