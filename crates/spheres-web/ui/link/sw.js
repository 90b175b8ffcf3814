// The service worker of links' pages (served at /l/sw.js, scope /l/): a link page's video,
// sound or download (GET /l/TOKEN/files/INDEX) is answered by that page's swarm
// (swarm.js: pieces from other viewers or from the node, each checked), so the player
// plays what the viewers pass each other. Only pages that said they serve their link (and say
// so again every few seconds: a worker's memory goes when the browser stops it) are answered
// this way; any other request, and any the page does not answer at once, goes to the network
// as it would without this worker.

/** @type {any} */
const sw = self;
const FILE = /^\/l\/([A-Za-z0-9_-]{16,128})\/files\/(\d{1,9})$/;

/** Client id -> the link token that page serves, and when it last said so. */
const serving = new Map();
const FORGET_MS = 30_000;

sw.addEventListener("install", () => sw.skipWaiting());
sw.addEventListener("message", (e) => {
  const m = e.data;
  if (!m || m.type !== "spheres-serve" || typeof m.token !== "string" || !e.source?.id) return;
  serving.set(e.source.id, { token: m.token, at: Date.now() });
  e.ports[0]?.postMessage("ok");
  for (const [id, s] of serving) if (Date.now() - s.at > FORGET_MS) serving.delete(id);
});
sw.addEventListener("activate", (e) => e.waitUntil(sw.clients.claim()));

sw.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  const m = url.pathname.match(FILE);
  // The page's own requests carry a query (`?from=page`): those go to the node.
  if (!m || url.search || url.origin !== location.origin || e.request.method !== "GET" || !e.clientId) return;
  const page = serving.get(e.clientId);
  if (!page || page.token !== m[1] || Date.now() - page.at > FORGET_MS) return;
  e.respondWith(answer(e, m[1], Number(m[2])));
});

/** `bytes=A-B` or `bytes=A-`; null for no range, undefined for one we leave to the node. */
function range(header) {
  if (!header) return null;
  const m = header.match(/^bytes=(\d{1,15})-(\d{0,15})$/);
  if (!m) return undefined;
  return { start: Number(m[1]), end: m[2] === "" ? null : Number(m[2]) + 1 };
}

/** The next message on `port`, or null after `ms`. */
function next(port, ms) {
  return new Promise((ok) => {
    const timer = setTimeout(() => { port.onmessage = null; ok(null); }, ms);
    port.onmessage = (e) => { clearTimeout(timer); port.onmessage = null; ok(e.data); };
  });
}

async function answer(e, token, index) {
  const wanted = range(e.request.headers.get("range"));
  const client = await sw.clients.get(e.clientId);
  if (!client || wanted === undefined) return fetch(e.request);
  const { port1, port2 } = new MessageChannel();
  client.postMessage({ type: "spheres-range", token, index, start: wanted?.start ?? 0, end: wanted?.end ?? null }, [port2]);
  const head = await next(port1, 1000);
  if (!head || !head.ok) { port1.close(); return fetch(e.request); }
  const body = new ReadableStream({
    async pull(controller) {
      port1.postMessage("pull");
      const m = await next(port1, 120_000);
      if (m && m.chunk) controller.enqueue(new Uint8Array(m.chunk));
      else if (m && m.done) { port1.close(); controller.close(); }
      else { port1.close(); controller.error(new Error(m?.error || "the page stopped answering")); }
    },
    cancel() { port1.postMessage("cancel"); port1.close(); },
  });
  const headers = {
    "content-type": head.type,
    "content-length": String(head.end - head.start),
    "accept-ranges": "bytes",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  if (!wanted) return new Response(body, { status: 200, headers });
  return new Response(body, {
    status: 206,
    headers: { ...headers, "content-range": `bytes ${head.start}-${head.end - 1}/${head.size}` },
  });
}
