//! What travels inside the extension protocol's envelope (BEP 10, message id 20): the extended
//! handshake (extended id 0) and the metadata exchange (BEP 9, `ut_metadata`), with which a
//! peer that has only the info hash (a magnet link) gets the info dictionary from the swarm.
//!
//! Both are bencoded dictionaries; a metadata piece follows its dictionary in the same
//! message. Anything a peer sends is read strictly and bounded: unknown keys are ignored,
//! values of the wrong type are errors, sizes beyond [`MAX_METADATA`] are refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use spheres_metainfo::bencode::{self, OwnedValue, Value};

/// The name BEP 9 gives the metadata exchange in the handshake's `m` dictionary.
pub const UT_METADATA: &str = "ut_metadata";
/// Metadata travels in pieces of 16 KiB (BEP 9); the last may be shorter.
pub const METADATA_PIECE: u32 = 16 * 1024;
/// The largest info dictionary we accept from, or announce to, a peer (8 MiB: a torrent of
/// 400 000 pieces; libtorrent's own default limit is 4 MiB).
pub const MAX_METADATA: u32 = 8 * 1024 * 1024;
/// More entries than this in `m` is an attack, not a client (libtorrent sends about 6).
const MAX_EXTENSIONS: usize = 64;

/// Why an extension message cannot be read. Any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("the extension message is not bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    #[error("the extension message is not a dictionary")]
    NotDict,
    #[error("`{0}` in the extension message has the wrong type or an impossible value")]
    BadField(&'static str),
    #[error("the extension message has no `{0}`")]
    Missing(&'static str),
    #[error("metadata of {0} bytes is more than the {MAX_METADATA} allowed")]
    MetadataTooLarge(u64),
}

/// The extended handshake (BEP 10): which extensions the sender speaks, under which ids it
/// wants to receive them, and a few facts about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Extension name to the id the *sender* wants to receive it under; 0 means "no longer".
    pub extensions: BTreeMap<String, u8>,
    /// `metadata_size` (BEP 9): the info dictionary's length, when the sender has it.
    pub metadata_size: Option<u32>,
    /// `p`: the sender's listen port (useful when it dialled us from another port).
    pub listen_port: Option<u16>,
    /// `v`: the sender's client name and version, for people reading logs.
    pub client: Option<String>,
    /// `reqq`: how many requests the sender queues before dropping more.
    pub request_queue: Option<u32>,
    /// `yourip`: the address the sender sees us at.
    pub your_ip: Option<IpAddr>,
    /// `upload_only` (BEP 21): the sender will not download (a seed, or a partial seed).
    pub upload_only: bool,
    /// `sp_nonce` (spheres): a fresh random value for this connection, that the other side's
    /// proof of membership must be bound to (other clients ignore it).
    pub nonce: Option<[u8; 16]>,
    /// `sp_proof` (spheres): the sender's proof of membership of the torrent's sphere, bound
    /// to both peer ids and both nonces (docs/protocol.md).
    pub member_proof: Option<[u8; 32]>,
}

impl ExtHandshake {
    /// The id under which the sender wants to receive `name`, if it speaks it.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.extensions.get(name).copied().filter(|&id| id != 0)
    }

    pub fn parse(payload: &[u8]) -> Result<ExtHandshake, ExtensionError> {
        let value = bencode::decode(payload)?;
        let dict = value.as_dict().ok_or(ExtensionError::NotDict)?;
        let mut out = ExtHandshake::default();
        if let Some(m) = dict.get(b"m") {
            let m = m.as_dict().ok_or(ExtensionError::BadField("m"))?;
            if m.entries().len() > MAX_EXTENSIONS {
                return Err(ExtensionError::BadField("m"));
            }
            for (name, id) in m.entries() {
                // Names we cannot read are extensions we do not speak: skip them.
                let Ok(name) = std::str::from_utf8(name) else {
                    continue;
                };
                // An id out of range: that extension is not spoken with this peer.
                if let Some(id) = id.as_int().and_then(|i| u8::try_from(i).ok()) {
                    out.extensions.insert(name.to_owned(), id);
                }
            }
        }
        // A value out of range is treated as absent (no metadata from that peer, no port):
        // only a message that is not a dictionary ends the connection.
        out.metadata_size = dict
            .get(b"metadata_size")
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
            .and_then(|size| metadata_size(size).ok());
        out.listen_port = optional_int(dict.get(b"p"));
        out.request_queue = optional_int(dict.get(b"reqq"));
        // A client name is for logs: keep it short and printable, never fail on it.
        out.client = dict.get(b"v").and_then(Value::as_bytes).map(|v| {
            let mut name = String::from_utf8_lossy(v).into_owned();
            let mut end = name.len().min(64);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
            name
        });
        out.your_ip = dict
            .get(b"yourip")
            .and_then(Value::as_bytes)
            .and_then(|b| match b.len() {
                4 => <[u8; 4]>::try_from(b)
                    .ok()
                    .map(|a| IpAddr::from(Ipv4Addr::from(a))),
                16 => <[u8; 16]>::try_from(b)
                    .ok()
                    .map(|a| IpAddr::from(Ipv6Addr::from(a))),
                _ => None,
            });
        out.upload_only = dict
            .get(b"upload_only")
            .and_then(Value::as_int)
            .is_some_and(|i| i != 0);
        out.nonce = dict
            .get(b"sp_nonce")
            .and_then(Value::as_bytes)
            .and_then(|b| b.try_into().ok());
        out.member_proof = dict
            .get(b"sp_proof")
            .and_then(Value::as_bytes)
            .and_then(|b| b.try_into().ok());
        Ok(out)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut d: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
        d.insert(
            b"m".to_vec(),
            OwnedValue::dict(
                self.extensions
                    .iter()
                    .map(|(k, &v)| (k.as_bytes(), OwnedValue::Int(v.into()))),
            ),
        );
        if let Some(size) = self.metadata_size {
            d.insert(b"metadata_size".to_vec(), OwnedValue::Int(size.into()));
        }
        if let Some(p) = self.listen_port {
            d.insert(b"p".to_vec(), OwnedValue::Int(p.into()));
        }
        if let Some(v) = &self.client {
            d.insert(b"v".to_vec(), OwnedValue::string(v.clone()));
        }
        if let Some(q) = self.request_queue {
            d.insert(b"reqq".to_vec(), OwnedValue::Int(q.into()));
        }
        if let Some(ip) = self.your_ip {
            let bytes = match ip {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            d.insert(b"yourip".to_vec(), OwnedValue::Bytes(bytes));
        }
        if self.upload_only {
            d.insert(b"upload_only".to_vec(), OwnedValue::Int(1));
        }
        if let Some(n) = self.nonce {
            d.insert(b"sp_nonce".to_vec(), OwnedValue::Bytes(n.to_vec()));
        }
        if let Some(p) = self.member_proof {
            d.insert(b"sp_proof".to_vec(), OwnedValue::Bytes(p.to_vec()));
        }
        OwnedValue::Dict(d).encode()
    }
}

fn optional_int<T: TryFrom<i64>>(v: Option<&Value<'_>>) -> Option<T> {
    v.and_then(Value::as_int).and_then(|i| T::try_from(i).ok())
}

fn metadata_size(size: u64) -> Result<u32, ExtensionError> {
    match u32::try_from(size) {
        Ok(s) if s > 0 && s <= MAX_METADATA => Ok(s),
        Ok(0) => Err(ExtensionError::BadField("metadata_size")),
        _ => Err(ExtensionError::MetadataTooLarge(size)),
    }
}

/// How many 16 KiB pieces an info dictionary of `size` bytes travels in.
pub fn metadata_pieces(size: u32) -> u32 {
    size.div_ceil(METADATA_PIECE)
}

/// A metadata exchange message (BEP 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// "Send me piece `piece` of the info dictionary."
    Request { piece: u32 },
    /// Piece `piece`, of an info dictionary of `total_size` bytes.
    Data {
        piece: u32,
        total_size: u32,
        data: Vec<u8>,
    },
    /// "I will not send you that piece" (I do not have it, or will not serve you).
    Reject { piece: u32 },
}

impl MetadataMessage {
    pub fn parse(payload: &[u8]) -> Result<MetadataMessage, ExtensionError> {
        let (value, used) = bencode::decode_prefix(payload)?;
        let dict = value.as_dict().ok_or(ExtensionError::NotDict)?;
        let int = |key: &'static str| -> Result<u64, ExtensionError> {
            dict.get(key.as_bytes())
                .ok_or(ExtensionError::Missing(key))?
                .as_int()
                .and_then(|i| u64::try_from(i).ok())
                .ok_or(ExtensionError::BadField(key))
        };
        let piece = u32::try_from(int("piece")?).map_err(|_| ExtensionError::BadField("piece"))?;
        let rest = &payload[used..];
        let message = match int("msg_type")? {
            0 => MetadataMessage::Request { piece },
            1 => {
                let total_size = metadata_size(int("total_size")?)?;
                // The piece must be one of the dictionary's, and exactly as long as it says.
                let start = u64::from(piece) * u64::from(METADATA_PIECE);
                let expected = u64::from(total_size)
                    .checked_sub(start)
                    .filter(|&left| left > 0)
                    .map(|left| left.min(METADATA_PIECE.into()))
                    .ok_or(ExtensionError::BadField("piece"))?;
                if rest.len() as u64 != expected {
                    return Err(ExtensionError::BadField("data"));
                }
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest.to_vec(),
                }
            }
            2 => MetadataMessage::Reject { piece },
            _ => return Err(ExtensionError::BadField("msg_type")),
        };
        if !matches!(message, MetadataMessage::Data { .. }) && !rest.is_empty() {
            return Err(ExtensionError::BadField("data"));
        }
        Ok(message)
    }

    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut d = vec![
            ("msg_type", OwnedValue::Int(kind)),
            ("piece", OwnedValue::Int((*piece).into())),
        ];
        if let MetadataMessage::Data { total_size, .. } = self {
            d.push(("total_size", OwnedValue::Int((*total_size).into())));
        }
        let mut out = OwnedValue::dict(d).encode();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorrent_handshake_reads() {
        // As libtorrent 2.0 sends it (shortened), with keys we do not know.
        let raw = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5012e1:pi6881e4:reqqi500e11:upload_onlyi0e1:v17:libtorrent/2.0.116:yourip4:\x7f\x00\x00\x01e";
        let h = ExtHandshake::parse(raw).unwrap();
        assert_eq!(h.id_of(UT_METADATA), Some(2));
        assert_eq!(h.id_of("ut_pex"), Some(1));
        assert_eq!(h.id_of("ut_nothing"), None);
        assert_eq!(h.metadata_size, Some(5012));
        assert_eq!(h.listen_port, Some(6881));
        assert_eq!(h.request_queue, Some(500));
        assert_eq!(h.client.as_deref(), Some("libtorrent/2.0.11"));
        assert_eq!(h.your_ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert!(!h.upload_only);
    }

    #[test]
    fn our_handshake_round_trips() {
        let h = ExtHandshake {
            extensions: [(UT_METADATA.to_owned(), 3), ("ut_pex".to_owned(), 0)].into(),
            metadata_size: Some(40_000),
            listen_port: Some(51413),
            client: Some("spheres 0.1".into()),
            request_queue: Some(250),
            your_ip: Some("::1".parse().unwrap()),
            upload_only: true,
            nonce: Some([7; 16]),
            member_proof: Some([9; 32]),
        };
        let again = ExtHandshake::parse(&h.encode()).unwrap();
        assert_eq!(again, h);
        assert_eq!(again.id_of("ut_pex"), None, "0 means disabled");
    }

    #[test]
    fn bad_handshakes_are_refused_and_bad_values_ignored() {
        for (raw, why) in [
            (&b"le"[..], "not a dict"),
            (b"d1:mi1ee", "m not a dict"),
            (b"d1:pi1ee junk", "trailing bytes"),
        ] {
            assert!(ExtHandshake::parse(raw).is_err(), "{why}");
        }
        let many: String = (0..65).map(|i| format!("2:{i:02}i1e")).collect();
        assert!(ExtHandshake::parse(format!("d1:md{many}ee").as_bytes()).is_err());
        // Values out of range are as if absent: the peer stays, without that feature.
        for raw in [
            &b"d1:md1:xi300eee"[..],
            b"d1:md1:xi-1eee",
            b"d13:metadata_sizei0ee",
            b"d13:metadata_sizei99999999999ee",
            b"d1:pi70000ee",
            b"d4:reqqi-5ee",
        ] {
            let h = ExtHandshake::parse(raw).unwrap();
            assert_eq!(
                h,
                ExtHandshake::default(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn metadata_messages_are_the_bytes_bep_9_says() {
        let r = MetadataMessage::Request { piece: 0 };
        assert_eq!(r.encode(), b"d8:msg_typei0e5:piecei0ee");
        let d = MetadataMessage::Data {
            piece: 1,
            total_size: METADATA_PIECE + 3,
            data: b"abc".to_vec(),
        };
        assert_eq!(
            d.encode(),
            b"d8:msg_typei1e5:piecei1e10:total_sizei16387eeabc"
        );
        let j = MetadataMessage::Reject { piece: 7 };
        for m in [r, d, j] {
            assert_eq!(MetadataMessage::parse(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn metadata_pieces_must_be_the_length_they_claim() {
        let piece = |piece: u32, total: u32, len: usize| {
            let mut raw =
                format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total}ee").into_bytes();
            raw.extend(std::iter::repeat_n(b'x', len));
            MetadataMessage::parse(&raw)
        };
        assert!(piece(0, 20_000, 16_384).is_ok());
        assert!(piece(1, 20_000, 3_616).is_ok());
        assert!(piece(0, 20_000, 100).is_err(), "short middle piece");
        assert!(piece(1, 20_000, 16_384).is_err(), "long last piece");
        assert!(piece(2, 20_000, 0).is_err(), "a piece past the end");
        assert!(piece(0, MAX_METADATA + 1, 16_384).is_err(), "too large");
        assert!(piece(u32::MAX, 20_000, 1).is_err());
        assert!(MetadataMessage::parse(b"d8:msg_typei0e5:piecei0eeextra").is_err());
        assert!(MetadataMessage::parse(b"d8:msg_typei9e5:piecei0ee").is_err());
        assert!(MetadataMessage::parse(b"d8:msg_typei0ee").is_err());
        assert_eq!(metadata_pieces(20_000), 2);
        assert_eq!(metadata_pieces(16_384), 1);
    }
}
