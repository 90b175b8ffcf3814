// The link page's pure modules (crates/spheres-web/ui/link/: bencode.js, wire.js) against
// what other viewers may send: well-formed streams split anywhere, and random and mutated
// bytes, which must give a clear error or nothing, never a crash of another kind, a hang or a
// buffer that grows. Run by scripts/test (`node --test`).
import assert from "node:assert/strict";
import test from "node:test";
import { decode, encode } from "../../crates/spheres-web/ui/link/bencode.js";
import * as w from "../../crates/spheres-web/ui/link/wire.js";

/** A small deterministic random source (xorshift), so a failure repeats. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

test("bencode reads what it writes and finds the info dictionary's bytes", () => {
  const value = { announce: "ws://x/tracker", info: { name: "Lyon", "piece length": 16384, pieces: new Uint8Array(20) } };
  const bytes = encode(value);
  const { value: back, spans } = decode(bytes);
  assert.equal(back["info"]["piece length"], 16384);
  assert.deepEqual(bytes.subarray(...spans.info), encode(value.info));
});

test("bencode refuses what is not bencoding, clearly", () => {
  const bad = ["", "i01e", "i-0e", "i1", "l", "d1:ai1e", "3:ab", "i99999999999999999999e", "de trailing", "x"];
  for (const b of bad) assert.throws(() => decode(new TextEncoder().encode(b)), /bencode/, b);
  assert.throws(() => decode(new TextEncoder().encode("l".repeat(100_000))), /bencode: too deep/);
});

test("bencode survives random and mutated input", () => {
  const r = rng(7);
  const good = encode({ info: { files: [{ length: 3, path: ["a"] }], name: "n", "piece length": 16384, pieces: new Uint8Array(20) } });
  for (let i = 0; i < 20_000; i++) {
    const b = i % 2 ? good.slice() : new Uint8Array(r(64)).map(() => r(256));
    if (i % 2) for (let k = 0; k <= r(4); k++) b[r(b.length)] = r(256);
    try { decode(b); } catch (e) { assert.match(String(e.message), /^bencode: /); }
  }
});

test("the wire reader gives back a stream split anywhere", () => {
  const hash = new Uint8Array(20).fill(7);
  const id = new Uint8Array(20).fill(9);
  const stream = [w.handshake(hash, id), w.message(w.INTERESTED), w.message(w.HAVE, w.ints(5)),
    w.message(w.REQUEST, w.ints(1, 16384, 16384)), w.piece(1, 0, new Uint8Array(16384).fill(3)), new Uint8Array(4)];
  const all = new Uint8Array(stream.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of stream) { all.set(b, at); at += b.length; }
  const r = rng(3);
  for (let round = 0; round < 200; round++) {
    const reader = new w.Reader();
    const out = [];
    for (let i = 0; i < all.length;) {
      const n = 1 + r(5000);
      out.push(...reader.push(all.subarray(i, i + n)));
      i += n;
    }
    assert.equal(out.length, 6);
    assert.deepEqual(out[0].handshake.infoHash, hash);
    assert.equal(out[0].handshake.extended, true);
    assert.equal(out[2].index, 5);
    assert.deepEqual([out[3].index, out[3].begin, out[3].length], [1, 16384, 16384]);
    assert.equal(out[4].block.length, 16384);
    assert.equal(out[5].keepalive, true);
    assert.equal(reader.buffered, 0);
  }
});

test("a stream trickled a byte at a time is copied once, as one sent whole", () => {
  const r = new w.Reader();
  r.push(w.handshake(new Uint8Array(20), new Uint8Array(20)));
  const before = r.copied;
  const big = w.piece(0, 0, new Uint8Array(1 << 17).fill(5));
  const got = [];
  for (let i = 0; i < big.length; i++) got.push(...r.push(big.subarray(i, i + 1)));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].block, new Uint8Array(1 << 17).fill(5));
  // Each push peeks at the 4-byte length, and the message is copied out once at the end:
  // no copy of all that is held at each push (quadratic: 2^33 bytes here).
  assert.ok(r.copied - before <= 5 * big.length + 8, `copied ${r.copied - before} bytes for ${big.length}`);
  assert.equal(r.chunks.length, 0);
});

test("keep-alives by the thousand in one message are refused", () => {
  const r = new w.Reader();
  r.push(w.handshake(new Uint8Array(20), new Uint8Array(20)));
  assert.throws(() => r.push(new Uint8Array(4 * (w.MAX_AT_ONCE + 2))), /too many messages/);
});

test("the wire reader refuses what is not BitTorrent or too large, and holds little", () => {
  const shaken = () => { const r = new w.Reader(); r.push(w.handshake(new Uint8Array(20), new Uint8Array(20))); return r; };
  assert.throws(() => new w.Reader().push(new TextEncoder().encode("GET / HTTP/1.1\r\n")), /not the BitTorrent protocol/);
  assert.throws(() => shaken().push(w.ints(1 << 20)), /a message of/);
  assert.throws(() => shaken().push(w.message(w.HAVE, new Uint8Array(3))), /message 4/);
  assert.throws(() => shaken().push(w.message(w.REQUEST, new Uint8Array(8))), /message 6/);
  assert.throws(() => w.bitsToSet(Uint8Array.of(0xff), 5), /past the last piece/);
  assert.throws(() => w.bitsToSet(Uint8Array.of(0xff, 0), 5), /wrong size/);
  const r = rng(11);
  for (let i = 0; i < 5000; i++) {
    const reader = shaken();
    try {
      for (let k = 0; k < 20; k++) {
        reader.push(new Uint8Array(1 + r(300)).map(() => r(256)));
        assert.ok(reader.buffered <= (1 << 17) + 20, "the reader holds more than one message");
      }
    } catch (e) {
      assert.ok(e instanceof Error);
    }
  }
});

// The swarm's peers against a hostile one, over a fake data channel (no WebRTC in node).
import { Peer, Swarm } from "../../crates/spheres-web/ui/link/swarm.js";

/** A swarm of `count` pieces of `pieceLength`, and a peer of it whose channel records what
 *  we send; `feed(bytes)` is what the other side sends. */
function hostile(count = 4, pieceLength = 16384 * 64) {
  const torrent = { name: "t", pieceLength, hashes: new Uint8Array(20 * count), files: [], length: count * pieceLength, count, infoHash: new Uint8Array(20).fill(1) };
  const swarm = new Swarm("/l/x", torrent, {});
  const sent = [];
  const dc = { readyState: "open", bufferedAmount: 0, send: (b) => sent.push(b), close() {} };
  const peer = new Peer(swarm, { close() {} }, "them");
  peer.attach(dc);
  const feed = (bytes) => dc.onmessage({ data: bytes instanceof Uint8Array ? bytes.slice().buffer : bytes });
  feed(w.handshake(torrent.infoHash, new Uint8Array(20).fill(2)));
  return { swarm, peer, sent, feed };
}

test("a peer that sends text, or a bitfield late, is dropped", () => {
  const a = hostile();
  assert.equal(a.peer.ready, true);
  a.feed("200000000");
  assert.equal(a.peer.closed, true);
  assert.equal(a.swarm.peers.size, 0);
  const b = hostile();
  b.feed(w.message(w.HAVE, w.ints(1)));
  b.feed(w.message(w.BITFIELD, Uint8Array.of(0xf0)));
  assert.equal(b.peer.closed, true);
});

test("a piece is asked 32 blocks at a time, and a block not asked for drops the peer", async () => {
  const { peer, sent, feed } = hostile();
  feed(w.message(w.BITFIELD, Uint8Array.of(0xf0)));
  feed(w.message(w.UNCHOKE));
  const asked = () => sent.filter((b) => b[4] === w.REQUEST).length;
  const before = asked();
  const got = peer.fetch(0).catch((e) => e);
  assert.equal(asked() - before, 32, "a window, not all 64 blocks");
  feed(w.piece(0, 0, new Uint8Array(16384)));
  assert.equal(asked() - before, 33, "topped up as a block comes");
  feed(w.piece(0, 60 * 16384, new Uint8Array(16384)));
  assert.equal(peer.closed, true);
  assert.match(String((await got).message), /gone/);
});
