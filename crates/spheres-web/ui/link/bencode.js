// Bencoding (BEP 3), as much as a link's viewer needs: a torrent read from the node that
// served the page, and the few small messages peers exchange. Pure; bounded by its input.

const MAX_DEPTH = 64;

/** Decodes `bytes`. Byte strings stay bytes (Uint8Array); dictionary keys become strings
 *  (latin1, one character a byte); integers become numbers. `spans[key]` gives the bytes
 *  [start, end) of each top-level dictionary value (the info dictionary's, to hash it).
 *  Throws on anything malformed. */
export function decode(bytes) {
  let at = 0;
  const spans = {};
  const fail = (why) => { throw new Error(`bencode: ${why} at ${at}`); };
  const digits = (stop) => {
    const start = at;
    while (at < bytes.length && bytes[at] !== stop) at++;
    if (at >= bytes.length || at === start || at - start > 20) fail("bad number");
    const text = latin1(bytes.subarray(start, at));
    if (!/^-?\d+$/.test(text) || /^-?0\d/.test(text) || text === "-0") fail("bad number");
    at++;
    const n = Number(text);
    if (!Number.isSafeInteger(n)) fail("number too large");
    return n;
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail("too deep");
    const c = bytes[at];
    if (c === 0x69) { at++; return digits(0x65); } // i...e
    if (c === 0x6c) { // l...e
      at++;
      const list = [];
      while (bytes[at] !== 0x65) { if (at >= bytes.length) fail("unterminated list"); list.push(value(depth + 1)); }
      at++;
      return list;
    }
    if (c === 0x64) { // d...e
      at++;
      const dict = Object.create(null);
      while (bytes[at] !== 0x65) {
        if (at >= bytes.length) fail("unterminated dictionary");
        const key = latin1(string());
        const start = at;
        dict[key] = value(depth + 1);
        if (depth === 0) spans[key] = [start, at];
      }
      at++;
      return dict;
    }
    if (c >= 0x30 && c <= 0x39) return string();
    return fail("unexpected byte");
  };
  const string = () => {
    const n = digits(0x3a);
    if (n < 0 || at + n > bytes.length) fail("string past the end");
    const s = bytes.subarray(at, at + n);
    at += n;
    return s;
  };
  const v = value(0);
  if (at !== bytes.length) fail("trailing bytes");
  return { value: v, spans };
}

/** Encodes numbers, strings (UTF-8), bytes, arrays and plain objects (keys sorted). */
export function encode(v) {
  const parts = [];
  const text = new TextEncoder();
  const put = (x) => {
    if (typeof x === "number") parts.push(text.encode(`i${Math.trunc(x)}e`));
    else if (typeof x === "string") { const b = text.encode(x); parts.push(text.encode(`${b.length}:`), b); }
    else if (x instanceof Uint8Array) { parts.push(text.encode(`${x.length}:`), x); }
    else if (Array.isArray(x)) { parts.push(text.encode("l")); x.forEach(put); parts.push(text.encode("e")); }
    else {
      parts.push(text.encode("d"));
      for (const k of Object.keys(x).sort()) { put(k); put(x[k]); }
      parts.push(text.encode("e"));
    }
  };
  put(v);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** One character a byte: how BitTorrent's WebSocket trackers write ids. */
export function latin1(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

export function utf8(bytes) {
  return new TextDecoder().decode(bytes);
}
