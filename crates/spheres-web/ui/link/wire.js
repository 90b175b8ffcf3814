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
 *  (`{ keepalive: true }` for an empty one). Throws on a malformed stream. */
export class Reader {
  constructor() {
    this.buffer = new Uint8Array(0);
    this.shaken = false;
  }

  push(bytes) {
    const joined = new Uint8Array(this.buffer.length + bytes.length);
    joined.set(this.buffer);
    joined.set(bytes, this.buffer.length);
    let at = 0;
    const out = [];
    for (;;) {
      const left = joined.length - at;
      if (!this.shaken) {
        if (left < 1) break;
        if (joined[at] !== 19) throw new Error("not the BitTorrent protocol");
        if (left < HANDSHAKE) break;
        for (let i = 0; i < 19; i++) if (joined[at + 1 + i] !== PROTOCOL.charCodeAt(i)) throw new Error("not the BitTorrent protocol");
        out.push({ handshake: {
          extended: (joined[at + 25] & 0x10) !== 0,
          infoHash: joined.slice(at + 28, at + 48),
          peerId: joined.slice(at + 48, at + 68),
        } });
        this.shaken = true;
        at += HANDSHAKE;
        continue;
      }
      if (left < 4) break;
      const length = new DataView(joined.buffer, joined.byteOffset + at, 4).getUint32(0);
      if (length > MAX_MESSAGE) throw new Error(`a message of ${length} bytes`);
      if (left < 4 + length) break;
      const body = joined.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      out.push(length === 0 ? { keepalive: true } : parse(body));
    }
    this.buffer = joined.slice(at);
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
