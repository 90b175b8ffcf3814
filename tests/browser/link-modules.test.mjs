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
    assert.equal(reader.buffer.length, 0);
  }
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
        assert.ok(reader.buffer.length <= (1 << 17) + 20, "the reader holds more than one message");
      }
    } catch (e) {
      assert.ok(e instanceof Error);
    }
  }
});
