//! Bencode (BEP 3), strict and bounded.
//!
//! Decoding borrows from the input and records the raw bytes of every dictionary, because an
//! info hash must be computed over the bytes as they were received, not over a re-encoding.
//! Decoding never panics and never recurses deeper than [`MAX_DEPTH`]: input comes from the
//! network. Encoding always writes dictionaries with sorted keys, as BEP 3 requires.

use std::collections::BTreeMap;
use std::fmt;

/// Nesting deeper than this is refused (a .torrent needs 4 or 5 levels).
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value borrowing from the input.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Dict<'a>),
}

/// A decoded dictionary: its entries in input order and the raw bytes it was decoded from.
#[derive(Clone, PartialEq, Eq)]
pub struct Dict<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
    raw: &'a [u8],
}

impl<'a> Dict<'a> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries, in the order they appeared in the input.
    pub fn entries(&self) -> &[(&'a [u8], Value<'a>)] {
        &self.entries
    }

    /// The exact input bytes of this dictionary, from `d` to its closing `e`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> Value<'a> {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if b.len() <= 64 => write!(f, "{s:?}"),
                _ => write!(f, "<{} bytes>", b.len()),
            },
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(
                    d.entries
                        .iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k), v)),
                )
                .finish(),
        }
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Value::Dict(self.clone()), f)
    }
}

/// Why some bytes are not valid bencode. `at` is the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {at}: {kind}")]
pub struct DecodeError {
    pub at: usize,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("unexpected end of input")]
    Eof,
    #[error("unexpected byte {0:#04x}")]
    Unexpected(u8),
    #[error("malformed integer")]
    BadInteger,
    #[error("integer out of range")]
    IntegerOverflow,
    #[error("string length exceeds the input")]
    StringTooLong,
    #[error("dictionary key is not a byte string")]
    KeyNotString,
    #[error("duplicate dictionary key")]
    DuplicateKey,
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("trailing bytes after the value")]
    Trailing,
}

/// Decodes exactly one value spanning the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let (value, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(DecodeError {
            at: used,
            kind: DecodeErrorKind::Trailing,
        });
    }
    Ok(value)
}

/// Decodes one value from the start of the input; returns it and the number of bytes used.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { at: self.pos, kind }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(DecodeErrorKind::Eof))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err(DecodeErrorKind::TooDeep));
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let i = self.integer(b'e')?;
                Ok(Value::Int(i))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                let start = self.pos;
                self.pos += 1;
                let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(self.err(DecodeErrorKind::KeyNotString));
                    }
                    let key_at = self.pos;
                    let key = self.bytes()?;
                    // Keys are usually sorted, so a duplicate is almost always the previous key;
                    // a full scan keeps a hostile unsorted dictionary from hiding one.
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(DecodeError {
                            at: key_at,
                            kind: DecodeErrorKind::DuplicateKey,
                        });
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                self.pos += 1;
                Ok(Value::Dict(Dict {
                    entries,
                    raw: &self.input[start..self.pos],
                }))
            }
            other => Err(self.err(DecodeErrorKind::Unexpected(other))),
        }
    }

    /// Parses a decimal integer up to `end`, consuming the terminator.
    /// Refuses leading zeros, `-0`, an empty number and anything outside i64.
    fn integer(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest.iter().position(|&b| b == end).ok_or(DecodeError {
            at: self.input.len(),
            kind: DecodeErrorKind::Eof,
        })?;
        let digits = &rest[..len];
        let bad = || DecodeError {
            at: start,
            kind: DecodeErrorKind::BadInteger,
        };
        let (negative, body) = match digits.split_first() {
            Some((b'-', body)) => (true, body),
            _ => (false, digits),
        };
        if body.is_empty()
            || !body.iter().all(u8::is_ascii_digit)
            || (body.len() > 1 && body[0] == b'0')
            || (negative && body == b"0")
        {
            return Err(bad());
        }
        let mut n: i64 = 0;
        for &d in body {
            let digit = i64::from(d - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(digit)
                    } else {
                        n.checked_add(digit)
                    }
                })
                .ok_or(DecodeError {
                    at: start,
                    kind: DecodeErrorKind::IntegerOverflow,
                })?;
        }
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError {
            at,
            kind: DecodeErrorKind::BadInteger,
        })?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(DecodeError {
                at,
                kind: DecodeErrorKind::StringTooLong,
            })?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// An owned bencode value for encoding. Dictionaries are sorted by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedValue {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<OwnedValue>),
    Dict(BTreeMap<Vec<u8>, OwnedValue>),
}

impl OwnedValue {
    pub fn string(s: impl Into<String>) -> Self {
        OwnedValue::Bytes(s.into().into_bytes())
    }

    /// A dictionary from `(key, value)` pairs; sorted on encoding whatever the order given.
    pub fn dict<K: AsRef<[u8]>>(entries: impl IntoIterator<Item = (K, OwnedValue)>) -> Self {
        OwnedValue::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_vec(), v))
                .collect(),
        )
    }

    /// Encodes to canonical bencode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            OwnedValue::Bytes(b) => encode_bytes(b, out),
            OwnedValue::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            OwnedValue::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

impl From<&Value<'_>> for OwnedValue {
    fn from(v: &Value<'_>) -> Self {
        match v {
            Value::Int(i) => OwnedValue::Int(*i),
            Value::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            Value::List(l) => OwnedValue::List(l.iter().map(OwnedValue::from).collect()),
            Value::Dict(d) => OwnedValue::Dict(
                d.entries
                    .iter()
                    .map(|(k, v)| (k.to_vec(), OwnedValue::from(v)))
                    .collect(),
            ),
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_types_and_keeps_raw_dict_bytes() {
        let input = b"d3:cow3:moo4:spaml1:ai-42ee3:subd1:xi0eee";
        let v = decode(input).unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d.get(b"cow").unwrap().as_bytes(), Some(&b"moo"[..]));
        let spam = d.get(b"spam").unwrap().as_list().unwrap();
        assert_eq!(spam[1].as_int(), Some(-42));
        assert_eq!(d.get(b"sub").unwrap().as_dict().unwrap().raw(), b"d1:xi0ee");
        assert_eq!(d.raw(), input);
    }

    #[test]
    fn refuses_malformed_integers() {
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"ie",
            b"i-e",
            b"i1",
            b"i9223372036854775808e",
            b"i1x2e",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
    }

    #[test]
    fn refuses_bad_strings_and_structure() {
        assert_eq!(
            decode(b"5:abc").unwrap_err().kind,
            DecodeErrorKind::StringTooLong
        );
        assert_eq!(
            decode(b"01:a").unwrap_err().kind,
            DecodeErrorKind::BadInteger
        );
        assert_eq!(
            decode(b"-1:a").unwrap_err().kind,
            DecodeErrorKind::Unexpected(b'-')
        );
        assert_eq!(
            decode(b"di1ei2ee").unwrap_err().kind,
            DecodeErrorKind::KeyNotString
        );
        assert_eq!(
            decode(b"d1:ai1e1:ai2ee").unwrap_err().kind,
            DecodeErrorKind::DuplicateKey
        );
        assert_eq!(
            decode(b"i1ei2e").unwrap_err().kind,
            DecodeErrorKind::Trailing
        );
        assert_eq!(decode(b"l").unwrap_err().kind, DecodeErrorKind::Eof);
        assert_eq!(decode(b"").unwrap_err().kind, DecodeErrorKind::Eof);
        assert_eq!(
            decode(b"18446744073709551616:").unwrap_err().kind,
            DecodeErrorKind::IntegerOverflow
        );
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let mut deep = vec![b'l'; 100_000];
        deep.extend(vec![b'e'; 100_000]);
        assert_eq!(decode(&deep).unwrap_err().kind, DecodeErrorKind::TooDeep);
        let mut ok = vec![b'l'; MAX_DEPTH];
        ok.extend(vec![b'e'; MAX_DEPTH]);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn encoding_sorts_keys_and_round_trips() {
        let mut map = BTreeMap::new();
        map.insert(b"zeta".to_vec(), OwnedValue::Int(-1));
        map.insert(b"alpha".to_vec(), OwnedValue::string("é"));
        map.insert(
            b"list".to_vec(),
            OwnedValue::List(vec![OwnedValue::Int(0), OwnedValue::Bytes(vec![])]),
        );
        let encoded = OwnedValue::Dict(map).encode();
        assert_eq!(encoded, "d5:alpha2:é4:listli0e0:e4:zetai-1ee".as_bytes());
        let decoded = decode(&encoded).unwrap();
        assert_eq!(OwnedValue::from(&decoded).encode(), encoded);
    }
}
