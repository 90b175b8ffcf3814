//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<peer>&ws=<url>`.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::InfoHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
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
    #[error("the magnet link has no BitTorrent info hash (`xt=urn:btih:...`)")]
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
                    }
                }
                "dn" => magnet.display_name = Some(value),
                "tr" => magnet.trackers.push(value),
                "x.pe" => magnet.peers.push(value),
                "ws" => magnet.web_seeds.push(value),
                _ => {}
            }
        }
        if !found {
            return Err(MagnetError::NoInfoHash);
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

/// Characters left as they are in query values; everything else is percent-encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(dn) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(dn, VALUE))?;
        }
        for (key, values) in [
            ("tr", &self.trackers),
            ("x.pe", &self.peers),
            ("ws", &self.web_seeds),
        ] {
            for v in values {
                write!(f, "&{key}={}", utf8_percent_encode(v, VALUE))?;
            }
        }
        Ok(())
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
