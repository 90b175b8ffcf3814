//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<peer>&ws=<url>`,
//! and for BitTorrent v2 (BEP 52) `xt=urn:btmh:1220<SHA-256 hash>`, beside the v1 one for a
//! hybrid torrent, alone for a v2-only one.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::InfoHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info hash; for a v2-only link, the v2 one cut to 20 bytes (as peers and
    /// trackers know the torrent).
    pub info_hash: InfoHash,
    /// The v2 info hash (`urn:btmh:`), when the link has one.
    pub info_hash_v2: Option<[u8; 32]>,
    pub display_name: Option<String>,
    pub trackers: Vec<String>,
    /// `x.pe` peer addresses (`host:port`), as given.
    pub peers: Vec<String>,
    pub web_seeds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (it must start with `magnet:?`)")]
    NotMagnet,
    #[error("the magnet link has no BitTorrent info hash (`xt=urn:btih:...` or `xt=urn:btmh:...`)")]
    NoInfoHash,
    #[error("the magnet link's info hash is neither 40 hex nor 32 base32 characters")]
    BadInfoHash,
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let query = s
            .strip_prefix("magnet:?")
            .or_else(|| s.strip_prefix("MAGNET:?"))
            .ok_or(MagnetError::NotMagnet)?;
        let mut magnet = Magnet {
            info_hash: InfoHash([0; 20]),
            info_hash_v2: None,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
        };
        let mut found = false;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match key {
                "xt" => {
                    if let Some(hash) = value
                        .strip_prefix("urn:btih:")
                        .or_else(|| value.strip_prefix("URN:BTIH:"))
                    {
                        magnet.info_hash = parse_btih(hash)?;
                        found = true;
                    } else if let Some(hash) = value
                        .strip_prefix("urn:btmh:")
                        .or_else(|| value.strip_prefix("URN:BTMH:"))
                    {
                        magnet.info_hash_v2 = Some(parse_btmh(hash)?);
                    }
                }
                "dn" => magnet.display_name = Some(value),
                "tr" => magnet.trackers.push(value),
                "x.pe" => magnet.peers.push(value),
                "ws" => magnet.web_seeds.push(value),
                _ => {}
            }
        }
        match magnet.info_hash_v2 {
            _ if found => {}
            Some(v2) => magnet.info_hash.0.copy_from_slice(&v2[..20]),
            None => return Err(MagnetError::NoInfoHash),
        }
        Ok(magnet)
    }
}

fn parse_btih(s: &str) -> Result<InfoHash, MagnetError> {
    let mut out = [0u8; 20];
    match s.len() {
        40 => hex::decode_to_slice(s, &mut out).map_err(|_| MagnetError::BadInfoHash)?,
        32 => {
            let bytes = data_encoding::BASE32
                .decode(s.to_ascii_uppercase().as_bytes())
                .map_err(|_| MagnetError::BadInfoHash)?;
            out.copy_from_slice(bytes.get(..20).ok_or(MagnetError::BadInfoHash)?);
        }
        _ => return Err(MagnetError::BadInfoHash),
    }
    Ok(InfoHash(out))
}

/// A multihash of a SHA-256 hash: `1220` then 64 hex digits.
fn parse_btmh(s: &str) -> Result<[u8; 32], MagnetError> {
    let hex_hash = s
        .strip_prefix("1220")
        .filter(|h| h.len() == 64)
        .ok_or(MagnetError::BadInfoHash)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).map_err(|_| MagnetError::BadInfoHash)?;
    Ok(out)
}

/// Characters left as they are in query values; everything else is percent-encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v2_only = self
            .info_hash_v2
            .is_some_and(|v2| v2[..20] == self.info_hash.0);
        let mut parts = Vec::new();
        if !v2_only {
            parts.push(format!("xt=urn:btih:{}", self.info_hash.to_hex()));
        }
        if let Some(v2) = &self.info_hash_v2 {
            parts.push(format!("xt=urn:btmh:1220{}", hex::encode(v2)));
        }
        if let Some(dn) = &self.display_name {
            parts.push(format!("dn={}", utf8_percent_encode(dn, VALUE)));
        }
        for (key, values) in [
            ("tr", &self.trackers),
            ("x.pe", &self.peers),
            ("ws", &self.web_seeds),
        ] {
            for v in values {
                parts.push(format!("{key}={}", utf8_percent_encode(v, VALUE)));
            }
        }
        write!(f, "magnet:?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_base32() {
        let m: Magnet = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Holiday%20%C3%A9t%C3%A9.mp4&tr=http%3A%2F%2Ft%2Fa%3Fk%3D1&x.pe=127.0.0.1:6881"
            .parse()
            .unwrap();
        assert_eq!(m.display_name.as_deref(), Some("Holiday été.mp4"));
        assert_eq!(m.trackers, vec!["http://t/a?k=1"]);
        assert_eq!(m.peers, vec!["127.0.0.1:6881"]);
        let again: Magnet = m.to_string().parse().unwrap();
        assert_eq!(again, m);

        let b32: Magnet = "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
            .parse()
            .unwrap();
        assert_eq!(b32.info_hash, m.info_hash);
    }

    #[test]
    fn v2_hashes_ride_as_multihashes() {
        let v2 = [0xab; 32];
        let hybrid = Magnet {
            info_hash: InfoHash([1; 20]),
            info_hash_v2: Some(v2),
            display_name: Some("a b".into()),
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
        };
        let text = hybrid.to_string();
        assert!(text.starts_with("magnet:?xt=urn:btih:0101"), "{text}");
        assert!(text.contains(&format!("&xt=urn:btmh:1220{}&dn=a%20b", "ab".repeat(32))));
        assert_eq!(text.parse::<Magnet>().unwrap(), hybrid);

        // v2-only: the btmh alone, and the 20 bytes peers know it by.
        let only: Magnet = format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32))
            .parse()
            .unwrap();
        assert_eq!(only.info_hash, InfoHash([0xab; 20]));
        assert_eq!(only.info_hash_v2, Some(v2));
        assert_eq!(
            only.to_string(),
            format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32))
        );
        assert_eq!(
            "magnet:?xt=urn:btmh:1114abcd".parse::<Magnet>(),
            Err(MagnetError::BadInfoHash)
        );
    }

    #[test]
    fn refuses_what_is_not_a_usable_magnet() {
        assert_eq!("http://x".parse::<Magnet>(), Err(MagnetError::NotMagnet));
        assert_eq!(
            "magnet:?dn=x".parse::<Magnet>(),
            Err(MagnetError::NoInfoHash)
        );
        assert_eq!(
            "magnet:?xt=urn:btih:zz".parse::<Magnet>(),
            Err(MagnetError::BadInfoHash)
        );
    }
}
