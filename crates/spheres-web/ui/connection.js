// The node's link to its XMPP server, shown under the header while it is not online:
// "Reconnecting to your XMPP server since 10:42 (next attempt in 20 s): why". The state comes
// from GET /api/status (`xmpp`) when the event stream opens, then from `connection` events:
// {state: "online" | "connecting" | "offline", since?, next_attempt?, error?} (times in
// seconds since 1970).
import { get } from "./api.js";
import { on } from "./events.js";
import { h } from "./dom.js";
import { t, time } from "./i18n.js";

let el = null;
let state = null;
// The notice is a live region: only what changes in words is replaced, and the countdown
// (new every second) is hidden from screen readers, so they do not read it out each tick.
const what = h("span");
const countdown = h("span", { "aria-hidden": "true" });
const why = h("span");

/** Shows the state in `element` from now on. */
export function watchConnection(element) {
  el = element;
  el.replaceChildren(what, countdown, why);
  on("connection", (e) => { state = e; redrawConnection(); });
  on("tick", () => { if (!el.hidden) redrawConnection(); });
}

/** Asks the node for the state (when the stream opens); quiet when it cannot answer yet. */
export async function checkConnection() {
  try {
    const status = await get.status();
    if (status.xmpp) { state = status.xmpp; redrawConnection(); }
  } catch { /* not logged in, or the node is starting: the page says so elsewhere */ }
}

/** Forgets the state: the node itself is out of reach, and the page says that instead. */
export function forgetConnection() {
  state = null;
  redrawConnection();
}

function set(node, text) { if (node.textContent !== text) node.textContent = text; }

/** Draws the notice again (in the language in use). */
export function redrawConnection() {
  if (!el) return;
  const s = state?.state;
  if (s !== "connecting" && s !== "offline") {
    el.hidden = true;
    return;
  }
  const since = state.since ? time(new Date(state.since * 1000)) : null;
  set(what, s === "connecting"
    ? (since ? t("xmppReconnecting", { time: since }) : t("xmppConnecting"))
    : (since ? t("xmppOfflineSince", { time: since }) : t("xmppOffline")));
  const wait = state.next_attempt ? Math.round(state.next_attempt - Date.now() / 1000) : 0;
  set(countdown, wait > 0 ? ` (${t("xmppNext", { n: wait })})` : "");
  set(why, state.error ? t("xmppError", { error: state.error }) : "");
  el.hidden = false;
}
