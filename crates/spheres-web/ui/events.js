// The node's live events: one EventSource on /api/events for the whole page. Each message is
// a JSON object with a `type` (docs/api.md); views subscribe to types with on() and get the
// object. A type the page does not know is ignored: the node may be newer than the page.

// Every type the page handles, on one line: a Rust test reads this line and fails when the
// node can emit a type that is not in it.
export const KNOWN_EVENTS = ["tick", "resync", "share", "presence", "message", "sphere", "invite", "contacts", "chat", "feed", "network", "call", "connection"];

const subscribers = new Map(KNOWN_EVENTS.map((type) => [type, new Set()]));

/** Calls `fn(event)` for each event of the given type(s); answers the function that stops it. */
export function on(types, fn) {
  const list = Array.isArray(types) ? types : [types];
  for (const type of list) {
    const set = subscribers.get(type);
    // A programming error: KNOWN_EVENTS must name every type the page listens to.
    if (!set) throw new Error(`not in KNOWN_EVENTS: ${type}`);
    set.add(fn);
  }
  return () => { for (const type of list) subscribers.get(type).delete(fn); };
}

/** Hands an event to its subscribers; one that throws does not stop the others. */
export function dispatch(event) {
  const set = event && typeof event === "object" ? subscribers.get(event.type) : undefined;
  if (!set) {
    console.debug("spheres: ignored an event this page does not know", event);
    return;
  }
  for (const fn of [...set]) {
    try { fn(event); } catch (e) { console.error(e); }
  }
}

let source = null;
let handlers = { opened() {}, lost() {} };

function open() {
  source = new EventSource("/api/events");
  source.onopen = () => handlers.opened();
  source.onerror = () => handlers.lost();
  source.onmessage = (m) => {
    let event;
    try { event = JSON.parse(m.data); } catch { console.debug("spheres: an event that is not JSON", m.data); return; }
    dispatch(event);
  };
}

/** Opens the stream. `opened` runs each time it (re)connects, `lost` each time it breaks
 *  (browsers reconnect by themselves, as when the node restarts). */
export function connect(onEvents) {
  handlers = onEvents;
  open();
}

/** Opens the stream again if the browser gave up on it: it does when the node refused it,
 *  as before a login. */
export function reconnect() {
  if (source && source.readyState !== EventSource.CLOSED) return;
  source?.close();
  open();
}

// While the node restarts on purpose (signing in, joining with a link), losing the stream
// is expected: the view that asked for the restart says what happens.
let restarting = false;
export function expectRestart(yes) { restarting = yes; }
export function restartExpected() { return restarting; }
