// The load of WebTorrent browsers on a WebSocket tracker (bench/ws-tracker.sh runs it).
//
//   node bench/ws-tracker.mjs URL CONNECTIONS SWARMS SECONDS PERIOD_MS
//
// CONNECTIONS WebSockets to URL, from addresses 127.0.1.x (40 each, as browsers come from many
// addresses), spread over SWARMS torrents. Each announces every PERIOD_MS
// (with a random start) as a WebTorrent browser looking for peers does: 5 offers, each with an
// SDP of about 500 bytes; each offer the tracker hands it gets an answer back, as a browser
// answers. Counted over SECONDS once every connection is open: announces answered, offers
// delivered to other browsers, answers delivered back to the offerers, and the CPU time the
// tracker (process TRACKER_PID) used meanwhile (user + system, from /proc). Prints one JSON
// line.
// Needs the `ws` package (bench/ws-tracker.sh installs it with bittorrent-tracker).
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.WS_FROM || import.meta.url);
const WebSocket = require("ws");

const [url, connections, swarms, seconds, period] = process.argv.slice(2);
const C = Number(connections), S = Number(swarms), D = Number(seconds) * 1000, P = Number(period);
// WebTorrent's ids are 20-character strings whose characters are bytes.
const id = () => randomBytes(20).toString("latin1").replace(/[^\x20-\x7e]/g, "x");
const sdp = (kind) => `v=0\r\no=- ${Date.now()} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n` +
  `m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:${randomBytes(3).toString("hex")}\r\n` +
  `a=ice-pwd:${randomBytes(12).toString("hex")}\r\na=fingerprint:sha-256 ${randomBytes(32).toString("hex").replace(/(..)(?!$)/g, "$1:")}\r\n` +
  `a=setup:${kind === "offer" ? "actpass" : "active"}\r\na=mid:0\r\na=sctp-port:5000\r\n` +
  `a=candidate:1 1 udp 2122260223 127.0.0.1 ${1024 + Math.floor(Math.random() * 60000)} typ host\r\n`;
const hashes = Array.from({ length: S }, id);

let counting = false;
const seen = { announced: 0, offers: 0, answers: 0, errors: 0, closed: 0 };
const sockets = [];
let open = 0;

// Browsers come from many addresses: 40 connections per loopback address (127.0.1.x), under
// the per-address bound a tracker may keep (ours: 64).
const PER_ADDRESS = 40;

function start(i) {
  const localAddress = `127.0.${1 + Math.floor(i / PER_ADDRESS / 250)}.${1 + (Math.floor(i / PER_ADDRESS) % 250)}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
  const info_hash = hashes[i % S], peer_id = id();
  let first = true;
  const announce = () => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const offers = Array.from({ length: 5 }, () => ({ offer: { type: "offer", sdp: sdp("offer") }, offer_id: id() }));
    ws.send(JSON.stringify({ action: "announce", info_hash, peer_id, numwant: 5, uploaded: 0, downloaded: 0, left: 1,
      event: first ? "started" : undefined, offers }));
    first = false;
  };
  ws.on("open", () => {
    open++;
    setTimeout(() => { announce(); setInterval(announce, P); }, Math.random() * P);
  });
  ws.on("message", (data) => {
    let m;
    try { m = JSON.parse(String(data)); } catch { seen.errors++; return; }
    if (m["failure reason"]) { if (counting) seen.errors++; return; }
    if (m.offer) {
      if (counting) seen.offers++;
      ws.send(JSON.stringify({ action: "announce", info_hash, peer_id, to_peer_id: m.peer_id,
        answer: { type: "answer", sdp: sdp("answer") }, offer_id: m.offer_id }));
    } else if (m.answer) {
      if (counting) seen.answers++;
    } else if (m.interval !== undefined || m.complete !== undefined) {
      if (counting) seen.announced++;
    }
  });
  ws.on("error", () => { seen.errors++; });
  ws.on("close", () => { if (counting) seen.closed++; });
  sockets.push(ws);
}

for (let i = 0; i < C; i++) start(i);
const t0 = Date.now();
while (open < C && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
if (open < C) { console.error(`only ${open} of ${C} connections opened`); process.exit(1); }
// One period for every connection to have announced once, then the window.
await new Promise((r) => setTimeout(r, P));
/** The tracker's CPU seconds so far (utime + stime, in clock ticks of 1/100 s). */
const cpu = () => {
  const stat = readFileSync(`/proc/${process.env.TRACKER_PID}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const cpu0 = cpu();
counting = true;
const began = performance.now();
await new Promise((r) => setTimeout(r, D));
counting = false;
const secs = (performance.now() - began) / 1000;
const cpuSecs = cpu() - cpu0;
console.log(JSON.stringify({ ...seen, seconds: secs, offers_per_s: seen.offers / secs, answers_per_s: seen.answers / secs,
  announces_per_s: seen.announced / secs, sent_offers_per_s: (C * 5 * 1000) / P, tracker_cpu_s: cpuSecs,
  offers_per_cpu_s: cpuSecs > 0 ? seen.offers / cpuSecs : null }));
for (const ws of sockets) ws.terminate();
process.exit(0);
