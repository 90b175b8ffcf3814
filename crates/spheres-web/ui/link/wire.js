// The BitTorrent peer wire protocol (BEP 3, with BEP 10's extension handshake) as a link's
// viewer speaks it with other browsers over WebRTC data channels, as WebTorrent does: a
// byte stream of a handshake then length-prefixed messages. Pure: bytes in, messages out;
// messages in, bytes out. Anything malformed or too large is an error (the caller drops
// the peer), never a buffer that grows.

export const BLOCK = 16 * 1024;
/** The largest message we take: a block and its header, or a bitfield of 2^20 pieces. */
const MAX_MESSAGE = (1 << 17) + 16;
const PROTOCOL = "BitTorrent protocol";
const HANDSHAKE = 68;

export const CHOKE = 0, UNCHOKE = 1, INTERESTED = 2, NOT_INTERESTED = 3, HAVE = 4,
  BITFIELD = 5, REQUEST = 6, PIECE = 7, CANCEL = 8, EXTENDED = 20;

/** The handshake: protocol, reserved bits (extension protocol: BEP 10), info hash, peer id
 *  (both 20 bytes). */
export function handshake(infoHash, peerId) {
  const b = new Uint8Array(HANDSHAKE);
  b[0] = 19;
  for (let i = 0; i < 19; i++) b[1 + i] = PROTOCOL.charCodeAt(i);
  b[25] = 0x10;
  b.set(infoHash, 28);
  b.set(peerId, 48);
  return b;
}

/** A message: its id and payload, length-prefixed. */
export function message(id, payload = new Uint8Array(0)) {
  const b = new Uint8Array(5 + payload.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, 1 + payload.length);
  b[4] = id;
  b.set(payload, 5);
  return b;
}

export function ints(...values) {
  const b = new Uint8Array(4 * values.length);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setUint32(4 * i, x));
  return b;
}

/** A piece message: index, offset, the block. */
export function piece(index, begin, block) {
  const payload = new Uint8Array(8 + block.length);
  payload.set(ints(index, begin));
  payload.set(block, 8);
  return message(PIECE, payload);
}

/** Reads a peer's stream. push(bytes) returns what it completed: first
 *  `{ handshake: { infoHash, peerId, extended } }`, then `{ id, ... }` for each message
 *  (`{ keepalive: true }` for an empty one). Throws on a malformed stream, a message longer
 *  than `maxMessage` bytes, or more than MAX_AT_ONCE messages in one push. Bytes are copied
 *  once, into the message they complete, however they were split. */
export const MAX_AT_ONCE = 4096;

export class Reader {
  /** `maxMessage`: the largest message taken (a block and its header, or the torrent's
   *  bitfield if that is larger). */
  constructor(maxMessage = MAX_MESSAGE) {
    this.max = Math.max(MAX_MESSAGE, maxMessage);
    this.chunks = [];
    this.held = 0;
    this.copied = 0; // bytes copied out, for tests: about what was pushed, however split
    this.shaken = false;
  }

  /** How many bytes it holds, not yet a whole message. */
  get buffered() { return this.held; }

  /** The first `n` held bytes (n <= held), taken out if `take`. */
  first(n, take) {
    const out = new Uint8Array(n);
    let at = 0, i = 0;
    while (at < n) {
      const c = this.chunks[i];
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (take && k < c.length) this.chunks[i] = c.subarray(k);
      else i++;
    }
    this.copied += n;
    if (take) {
      // The chunks used up go at once (not one shift each: that is quadratic).
      this.chunks.splice(0, i);
      this.held -= n;
    }
    return out;
  }

  push(bytes) {
    if (bytes.length) { this.chunks.push(bytes); this.held += bytes.length; }
    const out = [];
    for (;;) {
      if (out.length > MAX_AT_ONCE) throw new Error("too many messages at once");
      if (!this.shaken) {
        if (this.held < 1) break;
        if (this.chunks[0][0] !== 19) throw new Error("not the BitTorrent protocol");
        if (this.held < HANDSHAKE) break;
        const h = this.first(HANDSHAKE, true);
        for (let i = 0; i < 19; i++) if (h[1 + i] !== PROTOCOL.charCodeAt(i)) throw new Error("not the BitTorrent protocol");
        out.push({ handshake: { extended: (h[25] & 0x10) !== 0, infoHash: h.slice(28, 48), peerId: h.slice(48, 68) } });
        this.shaken = true;
        continue;
      }
      if (this.held < 4) break;
      const length = new DataView(this.first(4, false).buffer).getUint32(0);
      if (length > this.max) throw new Error(`a message of ${length} bytes`);
      if (this.held < 4 + length) break;
      const whole = this.first(4 + length, true);
      out.push(length === 0 ? { keepalive: true } : parse(whole.subarray(4)));
    }
    return out;
  }
}

function parse(body) {
  const id = body[0];
  const payload = body.subarray(1);
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const need = (n) => { if (payload.length !== n) throw new Error(`message ${id} of ${payload.length} bytes`); };
  switch (id) {
    case CHOKE: case UNCHOKE: case INTERESTED: case NOT_INTERESTED:
      need(0);
      return { id };
    case HAVE:
      need(4);
      return { id, index: v.getUint32(0) };
    case BITFIELD:
      return { id, bits: payload.slice() };
    case REQUEST: case CANCEL:
      need(12);
      return { id, index: v.getUint32(0), begin: v.getUint32(4), length: v.getUint32(8) };
    case PIECE:
      if (payload.length < 8) throw new Error("a short piece message");
      return { id, index: v.getUint32(0), begin: v.getUint32(4), block: payload.slice(8) };
    case EXTENDED:
      if (payload.length < 1) throw new Error("a short extended message");
      return { id, ext: payload[0], payload: payload.slice(1) };
    default:
      return { id, unknown: true };
  }
}

/** Which pieces a bitfield holds, for a torrent of `count` pieces (spare bits must be 0). */
export function bitsToSet(bits, count) {
  if (bits.length !== Math.ceil(count / 8)) throw new Error("a bitfield of the wrong size");
  const have = new Set();
  for (let i = 0; i < bits.length * 8; i++) {
    if (bits[i >> 3] & (0x80 >> (i & 7))) {
      if (i >= count) throw new Error("a bitfield past the last piece");
      have.add(i);
    }
  }
  return have;
}

export function setToBits(have, count) {
  const bits = new Uint8Array(Math.ceil(count / 8));
  for (const i of have) bits[i >> 3] |= 0x80 >> (i & 7);
  return bits;
}
