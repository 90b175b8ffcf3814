//! Peer exchange (BEP 11, `ut_pex`): peers of a swarm tell each other whom else they are
//! connected to. For public torrents only: a private torrent's peers come from its tracker
//! and its members, never from gossip (BEP 27).
//!
//! A message is a bencoded dictionary of compact addresses: `added` (IPv4, 6 bytes each) with
//! one flag byte per peer in `added.f`, `added6` (IPv6, 18 bytes each) with `added6.f`, and
//! `dropped` / `dropped6`. Reading is strict about shapes (a list whose length is not a whole
//! number of addresses is an error) and bounded: at most [`MAX_PEX_PEERS`] of each list are
//! kept, whatever a peer sends.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use spheres_metainfo::bencode::{self, OwnedValue};

use crate::ExtensionError;

/// The name BEP 11 gives peer exchange in the extended handshake's `m` dictionary.
pub const UT_PEX: &str = "ut_pex";
/// The most addresses of each list read from, or written to, one message (BEP 11 asks
/// senders for at most 50 added and 50 dropped; libtorrent writes up to 100).
pub const MAX_PEX_PEERS: usize = 100;

/// What a peer says of one added peer (`added.f`).
pub mod flags {
    /// It prefers encrypted connections.
    pub const ENCRYPTION: u8 = 0x01;
    /// It is a seed (or will only upload).
    pub const SEED: u8 = 0x02;
    /// It speaks uTP.
    pub const UTP: u8 = 0x04;
    /// It speaks the holepunch extension.
    pub const HOLEPUNCH: u8 = 0x08;
    /// The sender connected to it (so it is reachable).
    pub const OUTGOING: u8 = 0x10;
}

/// One peer exchange message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message, with their flags.
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers it is no longer connected to.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    pub fn parse(payload: &[u8]) -> Result<PexMessage, ExtensionError> {
        let value = bencode::decode(payload)?;
        let dict = value.as_dict().ok_or(ExtensionError::NotDict)?;
        let bytes = |key: &'static str| -> Result<&[u8], ExtensionError> {
            match dict.get(key.as_bytes()) {
                None => Ok(&[]),
                Some(v) => v.as_bytes().ok_or(ExtensionError::BadField(key)),
            }
        };
        let mut out = PexMessage::default();
        for (list, flag_list, width) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
            let addrs = compact(bytes(list)?, width, list)?;
            // Flags that do not match the list one for one are ignored, not fatal.
            let f = bytes(flag_list).unwrap_or(&[]);
            let f = if f.len() == addrs.len() { f } else { &[] };
            out.added.extend(
                addrs
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| (a, f.get(i).copied().unwrap_or(0))),
            );
        }
        for (list, width) in [("dropped", 6), ("dropped6", 18)] {
            out.dropped.extend(compact(bytes(list)?, width, list)?);
        }
        Ok(out)
    }

    /// The message's bytes; IPv4 and IPv6 peers go in their own lists, at most
    /// [`MAX_PEX_PEERS`] of each.
    pub fn encode(&self) -> Vec<u8> {
        let mut lists: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut put = |list: &'static str, bytes: &[u8]| {
            let n = counts.entry(list).or_default();
            if *n < MAX_PEX_PEERS {
                *n += 1;
                lists.entry(list).or_default().extend_from_slice(bytes);
                true
            } else {
                false
            }
        };
        for (addr, f) in &self.added {
            let (list, flag_list) = match addr {
                SocketAddr::V4(_) => ("added", "added.f"),
                SocketAddr::V6(_) => ("added6", "added6.f"),
            };
            if put(list, &compact_bytes(addr)) {
                put(flag_list, &[*f]);
            }
        }
        for addr in &self.dropped {
            let list = match addr {
                SocketAddr::V4(_) => "dropped",
                SocketAddr::V6(_) => "dropped6",
            };
            put(list, &compact_bytes(addr));
        }
        // BEP 11 readers expect the lists even when empty.
        for list in ["added", "added.f", "dropped"] {
            lists.entry(list).or_default();
        }
        OwnedValue::dict(
            lists
                .into_iter()
                .map(|(k, v)| (k.as_bytes(), OwnedValue::Bytes(v))),
        )
        .encode()
    }
}

fn compact(
    bytes: &[u8],
    width: usize,
    list: &'static str,
) -> Result<Vec<SocketAddr>, ExtensionError> {
    if !bytes.len().is_multiple_of(width) {
        return Err(ExtensionError::BadField(list));
    }
    Ok(bytes
        .chunks_exact(width)
        .take(MAX_PEX_PEERS)
        .filter_map(|c| {
            let (ip, port) = c.split_at(width - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => IpAddr::from(Ipv4Addr::from(v4)),
                Err(_) => IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
            };
            Some(SocketAddr::new(ip, port))
        })
        .collect())
}

fn compact_bytes(addr: &SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Whether an address a peer gossiped is one we could dial at all: no port 0, no
/// unspecified, multicast or broadcast address.
pub fn dialable(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// Whether an address is this machine's or its local networks': loopback, private,
/// link-local, unique-local or unspecified (IPv4-mapped IPv6 addresses as their IPv4).
pub fn is_local(ip: &IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
        IpAddr::V4(_) => *ip,
    };
    match ip {
        IpAddr::V4(a) => {
            a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.is_unspecified()
                || a.is_unique_local()
                || a.is_unicast_link_local()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_message_reads_as_bep_11_writes_it() {
        // Two IPv4 peers (the second a seed), one IPv6, one dropped.
        let mut raw = b"d5:added12:".to_vec();
        raw.extend([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x00, 0x50]);
        raw.extend(b"7:added.f2:");
        raw.extend([0x10, 0x02]);
        raw.extend(b"6:added618:");
        raw.extend(Ipv6Addr::LOCALHOST.octets());
        raw.extend([0x1f, 0x90]);
        raw.extend(b"7:dropped6:");
        raw.extend([192, 168, 1, 1, 0, 1]);
        raw.extend(b"e");
        let m = PexMessage::parse(&raw).unwrap();
        assert_eq!(
            m.added,
            vec![
                (a("127.0.0.1:6881"), flags::OUTGOING),
                (a("10.0.0.2:80"), flags::SEED),
                (a("[::1]:8080"), 0),
            ]
        );
        assert_eq!(m.dropped, vec![a("192.168.1.1:1")]);
    }

    #[test]
    fn messages_round_trip_and_are_bounded() {
        let m = PexMessage {
            added: vec![(a("127.0.0.1:1"), flags::SEED), (a("[::1]:2"), flags::UTP)],
            dropped: vec![a("127.0.0.2:3"), a("[::2]:4")],
        };
        assert_eq!(PexMessage::parse(&m.encode()).unwrap(), m);
        let empty = PexMessage::default().encode();
        assert_eq!(empty, b"d5:added0:7:added.f0:7:dropped0:e");
        assert!(PexMessage::parse(&empty).unwrap().is_empty());

        let many = PexMessage {
            added: (0..300u16)
                .map(|p| (SocketAddr::from(([10, 0, 0, 1], p + 1)), 0))
                .collect(),
            dropped: Vec::new(),
        };
        let again = PexMessage::parse(&many.encode()).unwrap();
        assert_eq!(again.added.len(), MAX_PEX_PEERS, "written bounded");
        // Read bounded too, whatever a peer sends.
        let mut raw = format!("d5:added{}:", 6 * 1000).into_bytes();
        raw.extend(std::iter::repeat_n(1u8, 6 * 1000));
        raw.push(b'e');
        assert_eq!(PexMessage::parse(&raw).unwrap().added.len(), MAX_PEX_PEERS);
    }

    #[test]
    fn bad_messages_are_refused_and_odd_flags_ignored() {
        for raw in [
            &b"le"[..],
            b"d5:added5:abcdee",
            b"d6:added67:abcdefge",
            b"d7:dropped1:xe",
            b"d5:addedi1ee",
            b"d5:added0:e junk",
        ] {
            assert!(
                PexMessage::parse(raw).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // Flags of the wrong length: the peers stay, without flags.
        let mut raw = b"d5:added6:".to_vec();
        raw.extend([127, 0, 0, 1, 0, 9]);
        raw.extend(b"7:added.f3:abce");
        let m = PexMessage::parse(&raw).unwrap();
        assert_eq!(m.added, vec![(a("127.0.0.1:9"), 0)]);
    }

    #[test]
    fn local_addresses_are_told_apart() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.9",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_local(&local.parse().unwrap()), "{local}");
        }
        for public in ["8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_local(&public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_dialable_addresses_are_dialled() {
        assert!(dialable(&a("127.0.0.1:6881")));
        assert!(dialable(&a("[::1]:6881")));
        for bad in [
            "127.0.0.1:0",
            "0.0.0.0:1",
            "224.0.0.1:1",
            "255.255.255.255:1",
            "[::]:1",
            "[ff02::1]:1",
        ] {
            assert!(!dialable(&a(bad)), "{bad}");
        }
    }
}
