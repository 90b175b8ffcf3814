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
/** The largest piece the page takes (a torrent of larger ones plays from the node). */
const MAX_PIECE = 16 * 1024 * 1024;
/** Pieces played and not kept (past KEEP), the last few: bytes at most. */
const RECENT = 64 * 1024 * 1024;
/** Blocks asked of a peer at once for one piece, topped up as they come. */
const WINDOW = 32;
/** The slowest a peer may give a piece: slower, and it is asked elsewhere. */
const MIN_RATE = 256 * 1024;
/** A node request that brings nothing for this long is given up. */
const NODE_TIMEOUT = 30_000;
const UPLOADS_QUEUED = 256;
const BUFFERED = 1024 * 1024;

/** The torrent a link serves (GET /l/TOKEN/torrent): what this module needs of it. */
export async function readTorrent(bytes) {
  const { value, spans } = decode(bytes);
  const info = value.info;
  if (!info || !spans.info) throw new Error("a torrent without info");
  const pieceLength = info["piece length"];
  const hashes = info.pieces;
  if (!Number.isSafeInteger(pieceLength) || pieceLength < w.BLOCK || pieceLength > MAX_PIECE || !(hashes instanceof Uint8Array) || hashes.length % 20) {
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
    this.left = torrent.length; // bytes not kept yet
    this.recent = new Map(); // index -> bytes, not kept (past KEEP), the last few
    this.recentBytes = 0;
    this.waiting = new Map(); // index -> Promise of bytes
    this.peers = new Set();
    this.offers = new Map(); // offer id -> { pc, dc }
    this.httpBusy = 0;
    this.announced = 0; // when we last announced (with offers)
    this.httpQueue = []; // { p, go }: pieces waiting for one of the node's slots
    this.urgent = new Set(); // pieces a reader waits for now: first in that queue
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
    if (urgent) this.urgent.add(p);
    let pending = this.waiting.get(p);
    if (!pending) {
      pending = this.fetchPiece(p, urgent).finally(() => { this.waiting.delete(p); this.urgent.delete(p); });
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
      const data = await this.fromPeers(p, wait, nodeFailures > 0, urgent && nodeFailures === 0);
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
  async fromPeers(p, wait, patient, urgent = false) {
    const start = Date.now();
    let failures = 0;
    while (!this.closed && failures < 3) {
      const peer = this.sourceFor(p);
      if (peer) {
        try {
          const data = await peer.fetch(p, urgent);
          if (await this.check(p, data)) {
            this.stats.fromPeers += data.length;
            this.keep(p, data);
            return data;
          }
          peer.close();
        } catch {
          // that peer choked, left, stalled or was too slow: another source, and that one
          // rests (closed after three times)
          peer.strike();
        }
        failures++;
        continue;
      }
      // A piece fetched ahead that a reader now waits for waits no longer than a reader would.
      const until = start + (this.urgent.has(p) && !patient ? Math.min(wait, 1000) : wait);
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
      if (!peer.ready) {
        if (now - peer.created < 3000) return true;
        continue;
      }
      // One that keeps us choked past its first seconds is not counted on.
      if (peer.has.has(p) && (patient || !peer.chokingUs || now - peer.since < 3000)) return true;
    }
    // Offers answered at all are answered within a moment of the announce.
    return this.offers.size > 0 && this.swarmSize > 1 && now - this.announced < 3000;
  }

  /** The peer to ask for piece `p`: one that has it, lets us ask, and is the least busy. */
  sourceFor(p) {
    let best = null;
    for (const peer of this.peers) {
      if (!peer.ready || peer.chokingUs || !peer.has.has(p) || peer.asked.size >= 4 || peer.restUntil > Date.now()) continue;
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
      this.left -= data.length;
    } else {
      this.recent.set(p, data);
      this.recentBytes += data.length;
      while (this.recentBytes > RECENT && this.recent.size > 1) {
        const [oldest, bytes] = this.recent.entries().next().value;
        this.recent.delete(oldest);
        this.recentBytes -= bytes.length;
      }
    }
    this.changed();
  }

  /** Piece `p` from the node that made the link: its files' ranges (padding is zeros), one
   *  after another, two pieces at a time. A link that closed (403, 404, 410) closes the
   *  swarm: its page stops giving too. */
  async fromNode(p) {
    if (this.httpBusy >= HTTP_AT_ONCE) await new Promise((go) => this.httpQueue.push({ p, go }));
    else this.httpBusy++;
    try {
      const { pieceLength, files } = this.torrent;
      const start = p * pieceLength;
      const out = new Uint8Array(this.pieceSize(p));
      const end = start + out.length;
      for (const [index, f] of files.entries()) {
        const from = Math.max(start, f.offset);
        const to = Math.min(end, f.offset + f.length);
        if (from >= to || f.pad) continue;
        // `?from=page`: the page's own request, which its service worker leaves alone.
        for (let tries = 1; ; tries++) {
          const r = await fetch(`${this.base}/files/${index}?from=page`, {
            credentials: "same-origin",
            headers: { range: `bytes=${from - f.offset}-${to - f.offset - 1}` },
            signal: AbortSignal.timeout(NODE_TIMEOUT),
          });
          const bytes = new Uint8Array(await r.arrayBuffer());
          if (r.status === 206 && bytes.length === to - from) { out.set(bytes, from - start); break; }
          if ([403, 404, 410].includes(r.status)) {
            this.close();
            throw new Error(`the link closed (${r.status})`);
          }
          // Busy (its streams through links all taken): again, a little later.
          if (r.status !== 503 || tries >= 5 || this.closed) throw new Error(`the node answered ${r.status} for piece ${p}`);
          await new Promise((ok) => setTimeout(ok, 500 * tries));
        }
      }
      return out;
    } finally {
      // The slot goes straight to the next in line: a piece a reader waits for first (after
      // a seek, the pieces fetched ahead of the old position wait), else the oldest.
      let at = this.httpQueue.findIndex((q) => this.urgent.has(q.p));
      if (at < 0) at = 0;
      const [next] = this.httpQueue.splice(at, 1);
      if (next) next.go();
      else this.httpBusy--;
    }
  }

  /** Whether the link still opens (after its tracker closed): if not, the swarm closes. */
  async checkOpen() {
    try {
      const r = await fetch(`${this.base}/torrent`, { method: "HEAD", credentials: "same-origin" });
      if ([403, 404, 410].includes(r.status)) this.close();
    } catch {
      // the node is unreachable: viewers may still give each other what they hold
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
      // The node ends a link's tracker when the link closes.
      this.checkOpen();
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
    const left = this.left;
    this.announced = Date.now();
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
      let channel = null;
      let peer = null;
      pc.ondatachannel = (e) => { channel = e.channel; peer?.attach(channel); };
      try {
        await pc.setRemoteDescription(m.offer);
        await pc.setLocalDescription(await pc.createAnswer());
      } catch (err) {
        pc.close(); // an offer the browser refuses takes no place
        throw err;
      }
      if (this.closed || this.peers.size >= MAX_PEERS) { pc.close(); return; }
      peer = new Peer(this, pc, m.peer_id);
      if (channel) peer.attach(channel);
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
      try {
        await mine.pc.setRemoteDescription(m.answer);
      } catch (err) {
        mine.pc.close();
        throw err;
      }
      new Peer(this, mine.pc, m.peer_id).attach(mine.dc);
    }
  }
}

/** Another viewer (or a WebTorrent client) over one data channel. */
export class Peer {
  constructor(swarm, pc, remoteId) {
    this.swarm = swarm;
    this.pc = pc;
    this.remoteId = remoteId;
    this.reader = new w.Reader(Math.ceil(swarm.torrent.count / 8) + 1);
    this.created = Date.now();
    this.ready = false; // handshakes exchanged
    this.messages = 0; // since the handshake
    this.wanted = 0; // pieces it has that we lack
    this.strikes = 0;
    this.restUntil = 0;
    this.since = 0;
    this.shook = false; // our handshake sent
    this.has = new Set();
    this.chokingUs = true;
    this.choking = true;
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
        // BitTorrent is bytes: a text message is not (and would be read as a length).
        if (!(e.data instanceof ArrayBuffer)) throw new Error("a text message");
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
    const first = m.id !== w.EXTENDED && !m.keepalive && this.messages++ === 0;
    switch (m.id) {
      case w.BITFIELD:
        // Once, first (after the extension handshake): as BEP 3 has it.
        if (!first) throw new Error("a bitfield after other messages");
        this.has = w.bitsToSet(m.bits, s.torrent.count);
        this.wanted = 0;
        for (const p of this.has) if (!s.pieces.has(p)) this.wanted++;
        this.wantOrNot();
        break;
      case w.HAVE:
        if (m.index >= s.torrent.count) throw new Error("a piece past the last");
        if (this.has.has(m.index)) break;
        this.has.add(m.index);
        if (!s.pieces.has(m.index)) this.wanted++;
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
        if (this.choking) { this.choking = false; this.send(w.message(w.UNCHOKE)); }
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
    const want = this.wanted > 0;
    if (want && !this.amInterested) { this.amInterested = true; this.send(w.message(w.INTERESTED)); }
    if (!want && this.amInterested) { this.amInterested = false; this.send(w.message(w.NOT_INTERESTED)); }
  }

  /** We now keep piece `p`. */
  have(p) {
    if (this.ready) this.send(w.message(w.HAVE, w.ints(p)));
    if (this.has.has(p)) this.wanted--;
    if (this.amInterested) this.wantOrNot();
  }

  /** It failed us on a piece: it rests 10 s; the third time, it goes. */
  strike() {
    this.strikes++;
    this.restUntil = Date.now() + 10_000;
    if (this.strikes >= 3) this.close();
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

  /** Asks for piece `p`, WINDOW blocks at a time, topped up as they come; resolves with it
   *  whole (unchecked). Fails when no block comes for STALL_MS, or when the piece takes
   *  longer than MIN_RATE allows (urgent: a reader waits, so 2 MiB/s and 1.5 s at least). */
  fetch(p, urgent = false) {
    const size = this.swarm.pieceSize(p);
    return new Promise((ok, fail) => {
      const blocks = Math.ceil(size / w.BLOCK);
      const length = (b) => Math.min(w.BLOCK, size - b * w.BLOCK);
      const a = { data: new Uint8Array(size), got: new Set(), blocks, next: 0, ok, fail, timer: null, deadline: null, stall: () => {}, more: () => {} };
      a.stall = () => { clearTimeout(a.timer); a.timer = setTimeout(() => a.fail(new Error("stalled")), STALL_MS); };
      a.more = () => {
        while (a.next < blocks && a.next - a.got.size < WINDOW) {
          this.send(w.message(w.REQUEST, w.ints(p, a.next * w.BLOCK, length(a.next))));
          a.next++;
        }
      };
      const done = () => { clearTimeout(a.timer); clearTimeout(a.deadline); this.asked.delete(p); };
      a.ok = (data) => { done(); ok(data); };
      a.fail = (err) => {
        if (this.asked.get(p) !== a) return;
        done();
        for (let b = 0; b < a.next; b++) if (!a.got.has(b)) this.send(w.message(w.CANCEL, w.ints(p, b * w.BLOCK, length(b))));
        fail(err);
      };
      const allowed = urgent ? Math.max(1500, size / 2048) : Math.max(STALL_MS, (size / MIN_RATE) * 1000);
      a.deadline = setTimeout(() => a.fail(new Error("too slow")), allowed);
      this.asked.set(p, a);
      a.stall();
      a.more();
    });
  }

  block(m) {
    const a = this.asked.get(m.index);
    if (!a) return; // not asked for (or given up): dropped
    const b = m.begin / w.BLOCK;
    const size = this.swarm.pieceSize(m.index);
    if (!Number.isInteger(b) || b >= a.blocks || m.block.length !== Math.min(w.BLOCK, size - m.begin)) throw new Error("a block we did not ask for");
    if (a.got.has(b)) return;
    if (b >= a.next) throw new Error("a block we did not ask for");
    a.data.set(m.block, m.begin);
    a.got.add(b);
    a.stall();
    if (a.got.size === a.blocks) a.ok(a.data);
    else a.more();
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
