// A link's torrent in the viewer's browser: its pieces come from other viewers of the link
// over WebRTC (found through the link's WebSocket tracker, WebTorrent's protocol, so
// WebTorrent's own clients trade with it) or, when no viewer has a piece or a viewer is
// slow, from the node that made the link; every piece is checked against the torrent's
// hashes before it is kept, played or passed on. What this browser holds it gives to the
// link's other viewers while the page stays open.
//
// Who sends what here: the node that served the page sends the torrent and the pieces
// asked for (trusted as the page itself is); other viewers send handshakes, messages and
// blocks (checked: sizes bounded by wire.js, blocks only for what we asked, pieces by
// their SHA-1), offers and answers through the tracker (the browser's WebRTC reads them).
// Memory: pieces kept up to KEEP bytes (then played and not kept), one pending request
// queue per peer, MAX_PEERS peers.

import { decode, encode, latin1, utf8 } from "./bencode.js";
import * as w from "./wire.js";

const MAX_PEERS = 16;
const OFFERS = 5;
/** Bytes of pieces this page keeps to play again and to give to others. */
const KEEP = 512 * 1024 * 1024;
/** How far ahead of a reader pieces are fetched. */
const AHEAD = 8 * 1024 * 1024;
/** A peer that sends nothing of a piece for this long loses it to another source. */
const STALL_MS = 4000;
/** The node gives each address a few streams through links: a page takes two at most. */
const HTTP_AT_ONCE = 2;
const UPLOADS_QUEUED = 256;
const BUFFERED = 1024 * 1024;

/** The torrent a link serves (GET /l/TOKEN/torrent): what this module needs of it. */
export async function readTorrent(bytes) {
  const { value, spans } = decode(bytes);
  const info = value.info;
  if (!info || !spans.info) throw new Error("a torrent without info");
  const pieceLength = info["piece length"];
  const hashes = info.pieces;
  if (!Number.isSafeInteger(pieceLength) || pieceLength < w.BLOCK || !(hashes instanceof Uint8Array) || hashes.length % 20) {
    throw new Error("a torrent with bad pieces");
  }
  const files = [];
  let length = 0;
  if (Array.isArray(info.files)) {
    for (const f of info.files) {
      const attr = f.attr instanceof Uint8Array ? latin1(f.attr) : "";
      files.push({ path: [info.name, ...f.path].map(utf8).join("/"), length: f.length, offset: length, pad: attr.includes("p") });
      length += f.length;
    }
  } else {
    files.push({ path: utf8(info.name), length: info.length, offset: 0, pad: false });
    length = info.length;
  }
  const count = hashes.length / 20;
  if (!Number.isSafeInteger(length) || Math.ceil(length / pieceLength) !== count) throw new Error("a torrent whose pieces do not cover it");
  const infoHash = new Uint8Array(await crypto.subtle.digest("SHA-1", bytes.subarray(spans.info[0], spans.info[1])));
  return { name: utf8(info.name), pieceLength, hashes, files, length, count, infoHash };
}

function randomId(prefix = "") {
  const bytes = crypto.getRandomValues(new Uint8Array(20 - prefix.length));
  // Printable ASCII: the same one character a byte for every tracker and client.
  return prefix + [...bytes].map((b) => String.fromCharCode(0x30 + (b % 75))).join("");
}

function idBytes(id) {
  return Uint8Array.from(id, (c) => c.charCodeAt(0));
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Resolves when `pc` has gathered its addresses (offers and answers go whole, as
 *  WebTorrent sends them), or after 5 s with what it has. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((ok) => {
    const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); ok(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, 5000);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class Swarm {
  /** Opens the swarm of the link at `base` (`/l/TOKEN`). `rtc`: the RTCPeerConnection
   *  configuration (no STUN server by default: nothing goes to a third party). */
  static async open(base, { rtc = { iceServers: [] }, p2p = true } = {}) {
    const r = await fetch(`${base}/torrent`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`the link's torrent: ${r.status}`);
    const torrent = await readTorrent(new Uint8Array(await r.arrayBuffer()));
    const swarm = new Swarm(base, torrent, rtc);
    if (p2p) swarm.track();
    return swarm;
  }

  constructor(base, torrent, rtc) {
    this.base = base;
    this.torrent = torrent;
    this.rtc = rtc;
    this.peerId = randomId("-SP0001-");
    this.pieces = new Map(); // index -> bytes, kept
    this.kept = 0;
    this.recent = new Map(); // index -> bytes, not kept (past KEEP), the last few
    this.waiting = new Map(); // index -> Promise of bytes
    this.peers = new Set();
    this.offers = new Map(); // offer id -> { pc, dc }
    this.httpBusy = 0;
    this.httpQueue = [];
    this.closed = false;
    this.stats = { fromPeers: 0, fromNode: 0, toPeers: 0 };
    this.listeners = new Set();
  }

  /** What the page shows and tests read. */
  status() {
    return { ...this.stats, peers: [...this.peers].filter((p) => p.ready).length, have: this.pieces.size, pieces: this.torrent.count };
  }

  onChange(fn) { this.listeners.add(fn); }
  changed() { for (const fn of this.listeners) fn(this.status()); }

  close() {
    this.closed = true;
    clearTimeout(this.announceTimer);
    this.ws?.close();
    for (const p of this.peers) p.close();
    for (const { pc } of this.offers.values()) pc.close();
    this.offers.clear();
  }

  // ---- Reading ----

  /** The bytes [start, end) of file `index`, piece after piece as they are here, the pieces
   *  ahead fetched meanwhile. */
  async *read(index, start, end) {
    const file = this.torrent.files[index];
    const { pieceLength } = this.torrent;
    let at = file.offset + start;
    const stop = file.offset + end;
    while (at < stop) {
      const p = Math.floor(at / pieceLength);
      this.ahead(p + 1, Math.min(stop, at + AHEAD));
      const data = await this.piece(p, true);
      const from = at - p * pieceLength;
      const to = Math.min(data.length, stop - p * pieceLength);
      yield data.slice(from, to);
      at += to - from;
    }
  }

  ahead(first, until) {
    const last = Math.floor((until - 1) / this.torrent.pieceLength);
    for (let p = first; p <= last && p < this.torrent.count; p++) this.piece(p, false).catch(() => {});
  }

  /** Piece `p`: here, or fetched once however many readers ask. `urgent`: a reader waits for
   *  it now (no waiting for a viewer to connect). */
  piece(p, urgent) {
    const here = this.pieces.get(p) || this.recent.get(p);
    if (here) return Promise.resolve(here);
    let pending = this.waiting.get(p);
    if (!pending) {
      pending = this.fetchPiece(p, urgent).finally(() => this.waiting.delete(p));
      this.waiting.set(p, pending);
    }
    return pending;
  }

  pieceSize(p) {
    const { pieceLength, length } = this.torrent;
    return Math.min(pieceLength, length - p * pieceLength);
  }

  async fetchPiece(p, urgent) {
    // A moment for a viewer that has it (or may: one still connecting) to let us ask: short
    // when a reader waits for this piece, longer for one fetched ahead; and when the node
    // cannot be reached, as long as a viewer has it.
    let nodeFailures = 0;
    for (;;) {
      const wait = nodeFailures ? 5000 : urgent ? 1000 : 2000;
      const data = await this.fromPeers(p, wait, nodeFailures > 0);
      if (data) return data;
      try {
        const data = await this.fromNode(p);
        if (!(await this.check(p, data))) throw new Error(`piece ${p} from the node does not match its hash`);
        this.stats.fromNode += data.length;
        this.keep(p, data);
        return data;
      } catch (err) {
        nodeFailures++;
        if (this.closed || nodeFailures >= 5 || ![...this.peers].some((x) => x.has.has(p))) throw err;
      }
    }
  }

  /** Piece `p` from a viewer that has it, waiting up to `wait` ms for one to let us ask;
   *  null if none did. `patient`: count on viewers that keep us choked too. */
  async fromPeers(p, wait, patient) {
    const until = Date.now() + wait;
    let failures = 0;
    while (!this.closed && failures < 3) {
      const peer = this.sourceFor(p);
      if (peer) {
        try {
          const data = await peer.fetch(p);
          if (await this.check(p, data)) {
            this.stats.fromPeers += data.length;
            this.keep(p, data);
            return data;
          }
          peer.close();
        } catch {
          // that peer choked, left or stalled: another source
        }
        failures++;
        continue;
      }
      if (Date.now() >= until || !this.mayComeFromPeers(p, patient)) break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    return null;
  }

  /** Whether a viewer may soon give piece `p`: one has it (and has not let us ask yet), one
   *  is connecting, or our offers wait for answers while others are in the swarm. */
  mayComeFromPeers(p, patient = false) {
    const now = Date.now();
    for (const peer of this.peers) {
      if (!peer.ready) return true;
      // One that keeps us choked past its first seconds is not counted on.
      if (peer.has.has(p) && (patient || !peer.chokingUs || now - peer.since < 3000)) return true;
    }
    return this.offers.size > 0 && this.swarmSize > 1;
  }

  /** The peer to ask for piece `p`: one that has it, lets us ask, and is the least busy. */
  sourceFor(p) {
    let best = null;
    for (const peer of this.peers) {
      if (!peer.ready || peer.chokingUs || !peer.has.has(p) || peer.asked.size >= 4) continue;
      if (!best || peer.asked.size < best.asked.size) best = peer;
    }
    return best;
  }

  async check(p, data) {
    if (data.length !== this.pieceSize(p)) return false;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", data));
    return same(digest, this.torrent.hashes.subarray(20 * p, 20 * p + 20));
  }

  keep(p, data) {
    if (this.pieces.has(p)) return;
    if (this.kept + data.length <= KEEP) {
      this.pieces.set(p, data);
      this.kept += data.length;
      for (const peer of this.peers) peer.have(p);
    } else {
      this.recent.set(p, data);
      if (this.recent.size > 8) this.recent.delete(this.recent.keys().next().value);
    }
    this.changed();
  }

  /** Piece `p` from the node that made the link: its files' ranges (padding is zeros). */
  async fromNode(p) {
    if (this.httpBusy >= HTTP_AT_ONCE) await new Promise((ok) => this.httpQueue.push(ok));
    this.httpBusy++;
    try {
      const { pieceLength, files } = this.torrent;
      const start = p * pieceLength;
      const out = new Uint8Array(this.pieceSize(p));
      const end = start + out.length;
      await Promise.all(files.map(async (f, index) => {
        const from = Math.max(start, f.offset);
        const to = Math.min(end, f.offset + f.length);
        if (from >= to || f.pad) return;
        // `?from=page`: the page's own request, which its service worker leaves alone.
        for (let tries = 1; ; tries++) {
          const r = await fetch(`${this.base}/files/${index}?from=page`, {
            credentials: "same-origin",
            headers: { range: `bytes=${from - f.offset}-${to - f.offset - 1}` },
          });
          const bytes = new Uint8Array(await r.arrayBuffer());
          if (r.status === 206 && bytes.length === to - from) { out.set(bytes, from - start); return; }
          // Busy (its streams through links all taken): again, a little later.
          if (r.status !== 503 || tries >= 5 || this.closed) throw new Error(`the node answered ${r.status} for piece ${p}`);
          await new Promise((ok) => setTimeout(ok, 500 * tries));
        }
      }));
      return out;
    } finally {
      this.httpBusy--;
      this.httpQueue.shift()?.();
    }
  }

  // ---- The tracker ----

  track() {
    const url = new URL(`${this.base}/tracker`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => this.announce("started");
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      this.fromTracker(m).catch((err) => console.warn("tracker message", err));
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.ws = null;
      this.retry = Math.min(60_000, (this.retry || 2000) * 2);
      setTimeout(() => { if (!this.closed) this.track(); }, this.retry);
    };
  }

  async announce(event) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const room = MAX_PEERS - this.peers.size - this.offers.size;
    const offers = [];
    for (let i = 0; i < Math.min(OFFERS, room); i++) offers.push(await this.offer());
    const left = this.torrent.length - [...this.pieces.keys()].reduce((n, p) => n + this.pieceSize(p), 0);
    ws.send(JSON.stringify({
      action: "announce",
      info_hash: latin1(this.torrent.infoHash),
      peer_id: this.peerId,
      numwant: offers.length,
      uploaded: this.stats.toPeers,
      downloaded: this.stats.fromPeers + this.stats.fromNode,
      left: Math.max(0, left),
      ...(event ? { event } : {}),
      offers,
    }));
  }

  async offer() {
    const pc = new RTCPeerConnection(this.rtc);
    const dc = pc.createDataChannel("bittorrent");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const id = randomId();
    this.offers.set(id, { pc, dc });
    // An offer nobody answers is dropped by the next announce.
    setTimeout(() => { if (this.offers.get(id)?.pc === pc) { this.offers.delete(id); pc.close(); } }, 50_000);
    return { offer: { type: "offer", sdp: pc.localDescription.sdp }, offer_id: id };
  }

  async fromTracker(m) {
    if (typeof m !== "object" || !m || m.action !== "announce") return;
    if (typeof m.interval === "number") {
      clearTimeout(this.announceTimer);
      this.announceTimer = setTimeout(() => this.announce(), Math.max(30, m.interval) * 1000);
    }
    if (typeof m.complete === "number") this.swarmSize = m.complete + (m.incomplete || 0);
    if (typeof m.peer_id !== "string" || typeof m.offer_id !== "string" || m.peer_id === this.peerId) return;
    if (m.offer && m.offer.type === "offer" && typeof m.offer.sdp === "string") {
      if (this.peers.size >= MAX_PEERS || [...this.peers].some((p) => p.remoteId === m.peer_id)) return;
      const pc = new RTCPeerConnection(this.rtc);
      const peer = new Peer(this, pc, m.peer_id);
      pc.ondatachannel = (e) => peer.attach(e.channel);
      await pc.setRemoteDescription(m.offer);
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      this.ws?.send(JSON.stringify({
        action: "announce",
        info_hash: latin1(this.torrent.infoHash),
        peer_id: this.peerId,
        to_peer_id: m.peer_id,
        answer: { type: "answer", sdp: pc.localDescription.sdp },
        offer_id: m.offer_id,
      }));
    } else if (m.answer && m.answer.type === "answer" && typeof m.answer.sdp === "string") {
      const mine = this.offers.get(m.offer_id);
      if (!mine) return;
      this.offers.delete(m.offer_id);
      if (this.peers.size >= MAX_PEERS) { mine.pc.close(); return; }
      const peer = new Peer(this, mine.pc, m.peer_id);
      peer.attach(mine.dc);
      await mine.pc.setRemoteDescription(m.answer);
    }
  }
}

/** Another viewer (or a WebTorrent client) over one data channel. */
class Peer {
  constructor(swarm, pc, remoteId) {
    this.swarm = swarm;
    this.pc = pc;
    this.remoteId = remoteId;
    this.reader = new w.Reader();
    this.ready = false; // handshakes exchanged
    this.since = 0;
    this.shook = false; // our handshake sent
    this.has = new Set();
    this.chokingUs = true;
    this.choking = true;
    this.interested = false;
    this.amInterested = false;
    this.asked = new Map(); // piece -> { blocks, got, ok, fail, timer }
    this.uploads = [];
    swarm.peers.add(this);
    // A connection that never opens is given up.
    this.openTimer = setTimeout(() => { if (!this.ready) this.close(); }, 20_000);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.close();
    };
  }

  attach(dc) {
    this.dc = dc;
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = BUFFERED / 4;
    // Once: a channel handed over open may still fire its open event.
    dc.onopen = () => {
      if (this.shook) return;
      this.shook = true;
      this.send(w.handshake(this.swarm.torrent.infoHash, idBytes(this.swarm.peerId)));
    };
    dc.onclose = () => this.close();
    dc.onbufferedamountlow = () => this.pump();
    dc.onmessage = (e) => {
      try {
        for (const m of this.reader.push(new Uint8Array(e.data))) this.receive(m);
      } catch (err) {
        console.warn("a viewer sent what is not BitTorrent", err);
        this.close();
      }
    };
    if (dc.readyState === "open") dc.onopen(null);
  }

  send(bytes) {
    if (this.dc?.readyState === "open") this.dc.send(bytes);
  }

  receive(m) {
    const s = this.swarm;
    if (m.handshake) {
      if (!same(m.handshake.infoHash, s.torrent.infoHash)) throw new Error("another torrent");
      clearTimeout(this.openTimer);
      this.ready = true;
      this.since = Date.now();
      if (m.handshake.extended) this.send(w.message(w.EXTENDED, Uint8Array.of(0, ...encode({ m: {}, v: "spheres" }))));
      if (s.pieces.size) this.send(w.message(w.BITFIELD, w.setToBits(s.pieces.keys(), s.torrent.count)));
      s.changed();
      return;
    }
    switch (m.id) {
      case w.BITFIELD:
        this.has = w.bitsToSet(m.bits, s.torrent.count);
        this.wantOrNot();
        break;
      case w.HAVE:
        if (m.index >= s.torrent.count) throw new Error("a piece past the last");
        this.has.add(m.index);
        this.wantOrNot();
        break;
      case w.CHOKE:
        this.chokingUs = true;
        for (const a of this.asked.values()) a.fail(new Error("choked"));
        break;
      case w.UNCHOKE:
        this.chokingUs = false;
        break;
      case w.INTERESTED:
        this.interested = true;
        if (this.choking) { this.choking = false; this.send(w.message(w.UNCHOKE)); }
        break;
      case w.NOT_INTERESTED:
        this.interested = false;
        break;
      case w.REQUEST:
        if (this.choking || m.length > w.BLOCK || !s.pieces.has(m.index) || this.uploads.length >= UPLOADS_QUEUED) break;
        if (m.begin + m.length > s.pieceSize(m.index)) throw new Error("a request past the piece");
        this.uploads.push(m);
        this.pump();
        break;
      case w.CANCEL:
        this.uploads = this.uploads.filter((u) => !(u.index === m.index && u.begin === m.begin));
        break;
      case w.PIECE:
        this.block(m);
        break;
      default:
        break; // keep-alives, extensions we do not speak
    }
  }

  /** Interested while it has a piece we lack. */
  wantOrNot() {
    const want = [...this.has].some((p) => !this.swarm.pieces.has(p));
    if (want && !this.amInterested) { this.amInterested = true; this.send(w.message(w.INTERESTED)); }
    if (!want && this.amInterested) { this.amInterested = false; this.send(w.message(w.NOT_INTERESTED)); }
  }

  have(p) {
    if (this.ready) this.send(w.message(w.HAVE, w.ints(p)));
    if (this.amInterested) this.wantOrNot();
  }

  /** Blocks asked for, sent while the channel is not too full. */
  pump() {
    const s = this.swarm;
    while (this.uploads.length && this.dc?.readyState === "open" && this.dc.bufferedAmount < BUFFERED) {
      const u = this.uploads.shift();
      const data = s.pieces.get(u.index);
      if (!data) continue;
      this.send(w.piece(u.index, u.begin, data.subarray(u.begin, u.begin + u.length)));
      s.stats.toPeers += u.length;
    }
    s.changed();
  }

  /** Asks for piece `p`, block by block; resolves with it whole (unchecked). */
  fetch(p) {
    const size = this.swarm.pieceSize(p);
    return new Promise((ok, fail) => {
      const blocks = Math.ceil(size / w.BLOCK);
      const a = { data: new Uint8Array(size), got: new Set(), blocks, ok, fail, timer: null, stall: () => {} };
      a.stall = () => { clearTimeout(a.timer); a.timer = setTimeout(() => a.fail(new Error("stalled")), STALL_MS); };
      a.ok = (data) => { clearTimeout(a.timer); this.asked.delete(p); ok(data); };
      a.fail = (err) => {
        clearTimeout(a.timer);
        if (this.asked.get(p) !== a) return;
        this.asked.delete(p);
        for (let b = 0; b < blocks; b++) if (!a.got.has(b)) this.send(w.message(w.CANCEL, w.ints(p, b * w.BLOCK, Math.min(w.BLOCK, size - b * w.BLOCK))));
        fail(err);
      };
      this.asked.set(p, a);
      a.stall();
      for (let b = 0; b < blocks; b++) this.send(w.message(w.REQUEST, w.ints(p, b * w.BLOCK, Math.min(w.BLOCK, size - b * w.BLOCK))));
    });
  }

  block(m) {
    const a = this.asked.get(m.index);
    if (!a) return; // not asked for (or given up): dropped
    const b = m.begin / w.BLOCK;
    const size = this.swarm.pieceSize(m.index);
    if (!Number.isInteger(b) || b >= a.blocks || m.block.length !== Math.min(w.BLOCK, size - m.begin)) throw new Error("a block we did not ask for");
    if (a.got.has(b)) return;
    a.data.set(m.block, m.begin);
    a.got.add(b);
    a.stall();
    if (a.got.size === a.blocks) a.ok(a.data);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.openTimer);
    for (const a of [...this.asked.values()]) a.fail(new Error("gone"));
    this.uploads = [];
    try { this.dc?.close(); } catch { /* closed already */ }
    this.pc.close();
    this.swarm.peers.delete(this);
    this.swarm.changed();
  }
}
