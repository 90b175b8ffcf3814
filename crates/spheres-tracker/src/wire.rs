//! Tracker messages as bytes: HTTP announce and scrape (BEP 3, 7, 23, 48) and UDP (BEP 15, 41).
//!
//! Pure functions only: no sockets, no clock, no state. Every parser takes untrusted bytes and
//! returns an error instead of panicking (fuzzed by `fuzz/fuzz_targets/tracker_*`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use percent_encoding::percent_decode;
use spheres_metainfo::InfoHash;
use spheres_metainfo::bencode::OwnedValue;

/// The magic constant that opens a BEP 15 connect request.
pub const UDP_PROTOCOL_ID: u64 = 0x0417_2710_1980;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Started,
    Completed,
    Stopped,
}

/// An announce, whichever transport carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// `None`: the client did not say (or said a negative number).
    pub numwant: Option<u32>,
    pub compact: bool,
    pub no_peer_id: bool,
    /// The address the client claims (`ip=` in HTTP, the IP field in UDP).
    pub ip: Option<IpAddr>,
}

/// One peer in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
}

/// What the tracker answers to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    pub interval: u32,
    pub min_interval: u32,
    pub complete: u32,
    pub incomplete: u32,
    pub peers: Vec<Peer>,
}

/// Counts for one torrent in a scrape (BEP 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    pub complete: u32,
    pub downloaded: u32,
    pub incomplete: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    #[error("parameter `{0}` is malformed")]
    Malformed(&'static str),
    #[error("UDP packet too short for its action")]
    Short,
    #[error("unknown UDP action {0}")]
    UnknownAction(u32),
    #[error("not a BEP 15 connect request (wrong protocol id)")]
    BadProtocolId,
}

fn decode(v: &str) -> Vec<u8> {
    // `+` means a space in form encoding; info hashes never carry a literal `+` unescaped
    // in clients that matter, but we follow the form rules like other trackers do.
    let v = v.as_bytes();
    if v.contains(&b'+') {
        let spaced: Vec<u8> = v
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_decode(&spaced).collect()
    } else {
        percent_decode(v).collect()
    }
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn twenty(bytes: &[u8], name: &'static str) -> Result<[u8; 20], WireError> {
    bytes.try_into().map_err(|_| WireError::Malformed(name))
}

fn number<T: std::str::FromStr>(v: &str, name: &'static str) -> Result<T, WireError> {
    v.parse().map_err(|_| WireError::Malformed(name))
}

/// Parses the query string of an HTTP announce (everything after `?`).
pub fn parse_http_announce(query: &str) -> Result<AnnounceRequest, WireError> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut req = AnnounceRequest {
        info_hash: InfoHash([0; 20]),
        peer_id: [0; 20],
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::None,
        numwant: None,
        compact: false,
        no_peer_id: false,
        ip: None,
    };
    let mut left = None;
    for (k, v) in pairs(query) {
        match k {
            "info_hash" => info_hash = Some(InfoHash(twenty(&decode(v), "info_hash")?)),
            "peer_id" => peer_id = Some(twenty(&decode(v), "peer_id")?),
            "port" => port = Some(number::<u16>(v, "port")?),
            "uploaded" => req.uploaded = number(v, "uploaded")?,
            "downloaded" => req.downloaded = number(v, "downloaded")?,
            "left" => left = Some(number::<u64>(v, "left")?),
            "event" => {
                req.event = match v {
                    "started" => Event::Started,
                    "completed" => Event::Completed,
                    "stopped" => Event::Stopped,
                    "" | "empty" | "paused" => Event::None,
                    _ => return Err(WireError::Malformed("event")),
                }
            }
            "numwant" | "num_want" => {
                let n: i64 = number(v, "numwant")?;
                req.numwant = u32::try_from(n).ok();
            }
            "compact" => req.compact = v == "1",
            "no_peer_id" => req.no_peer_id = v == "1",
            "ip" | "ipv4" | "ipv6" => {
                // A claimed address that does not parse is ignored, not an error: some
                // clients send host names here.
                if let Ok(ip) = String::from_utf8_lossy(&decode(v)).parse::<IpAddr>() {
                    req.ip = Some(ip);
                }
            }
            _ => {}
        }
    }
    req.info_hash = info_hash.ok_or(WireError::Missing("info_hash"))?;
    req.peer_id = peer_id.ok_or(WireError::Missing("peer_id"))?;
    req.port = port.ok_or(WireError::Missing("port"))?;
    // Some clients leave out `left` on a plain re-announce; unknown means "still downloading".
    req.left = left.unwrap_or(u64::MAX);
    Ok(req)
}

/// Parses the query string of an HTTP scrape: zero or more `info_hash` parameters.
pub fn parse_http_scrape(query: &str) -> Result<Vec<InfoHash>, WireError> {
    pairs(query)
        .filter(|(k, _)| *k == "info_hash")
        .map(|(_, v)| twenty(&decode(v), "info_hash").map(InfoHash))
        .collect()
}

/// The bencoded body of a successful HTTP announce. With `compact`, IPv4 peers go in
/// `peers` (6 bytes each, BEP 23) and IPv6 peers in `peers6` (18 bytes each, BEP 7).
pub fn http_announce_body(resp: &AnnounceResponse, compact: bool, no_peer_id: bool) -> Vec<u8> {
    let mut entries = vec![
        ("interval", OwnedValue::Int(resp.interval.into())),
        ("min interval", OwnedValue::Int(resp.min_interval.into())),
        ("complete", OwnedValue::Int(resp.complete.into())),
        ("incomplete", OwnedValue::Int(resp.incomplete.into())),
    ];
    if compact {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in &resp.peers {
            match p.addr {
                SocketAddr::V4(a) => {
                    v4.extend_from_slice(&a.ip().octets());
                    v4.extend_from_slice(&a.port().to_be_bytes());
                }
                SocketAddr::V6(a) => {
                    v6.extend_from_slice(&a.ip().octets());
                    v6.extend_from_slice(&a.port().to_be_bytes());
                }
            }
        }
        entries.push(("peers", OwnedValue::Bytes(v4)));
        if !v6.is_empty() {
            entries.push(("peers6", OwnedValue::Bytes(v6)));
        }
    } else {
        let list = resp
            .peers
            .iter()
            .map(|p| {
                let mut d = vec![
                    ("ip", OwnedValue::string(p.addr.ip().to_string())),
                    ("port", OwnedValue::Int(p.addr.port().into())),
                ];
                if !no_peer_id {
                    d.push(("peer id", OwnedValue::Bytes(p.peer_id.to_vec())));
                }
                OwnedValue::dict(d)
            })
            .collect();
        entries.push(("peers", OwnedValue::List(list)));
    }
    OwnedValue::dict(entries).encode()
}

/// The bencoded body of a refused request; clients show the reason to their user.
pub fn http_failure_body(reason: &str) -> Vec<u8> {
    OwnedValue::dict([("failure reason", OwnedValue::string(reason))]).encode()
}

pub fn http_scrape_body(files: &[(InfoHash, ScrapeStats)]) -> Vec<u8> {
    let files = OwnedValue::dict(files.iter().map(|(h, s)| {
        let entry = OwnedValue::dict([
            ("complete", OwnedValue::Int(s.complete.into())),
            ("downloaded", OwnedValue::Int(s.downloaded.into())),
            ("incomplete", OwnedValue::Int(s.incomplete.into())),
        ]);
        (h.0, entry)
    }));
    OwnedValue::dict([("files", files)]).encode()
}

/// A UDP tracker request (BEP 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpRequest {
    Connect {
        transaction_id: u32,
    },
    Announce {
        connection_id: u64,
        transaction_id: u32,
        request: AnnounceRequest,
        /// The BEP 41 URL data (path and query of the announce URL), if the client sent it.
        url_data: Option<String>,
    },
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// At most this many info hashes in one UDP scrape (BEP 15: about 74 fit in a packet).
pub const MAX_UDP_SCRAPE: usize = 74;

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Short);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn twenty(&mut self) -> Result<[u8; 20], WireError> {
        twenty(self.take(20)?, "hash")
    }
}

pub fn parse_udp_request(packet: &[u8]) -> Result<UdpRequest, WireError> {
    let mut c = Cursor(packet);
    let connection_id = c.u64()?;
    let action = c.u32()?;
    let transaction_id = c.u32()?;
    match action {
        0 => {
            if connection_id != UDP_PROTOCOL_ID {
                return Err(WireError::BadProtocolId);
            }
            Ok(UdpRequest::Connect { transaction_id })
        }
        1 => {
            let info_hash = InfoHash(c.twenty()?);
            let peer_id = c.twenty()?;
            let downloaded = c.u64()?;
            let left = c.u64()?;
            let uploaded = c.u64()?;
            let event = match c.u32()? {
                1 => Event::Completed,
                2 => Event::Started,
                3 => Event::Stopped,
                _ => Event::None,
            };
            let ip = match c.u32()? {
                0 => None,
                raw => Some(IpAddr::V4(Ipv4Addr::from(raw))),
            };
            let _key = c.u32()?;
            let numwant = u32::try_from(c.u32()? as i32).ok();
            let port = c.u16()?;
            let url_data = parse_bep41_options(c.0);
            Ok(UdpRequest::Announce {
                connection_id,
                transaction_id,
                request: AnnounceRequest {
                    info_hash,
                    peer_id,
                    port,
                    uploaded,
                    downloaded,
                    left,
                    event,
                    numwant,
                    compact: true,
                    no_peer_id: true,
                    ip,
                },
                url_data,
            })
        }
        2 => {
            let info_hashes: Vec<InfoHash> =
                c.0.chunks_exact(20)
                    .take(MAX_UDP_SCRAPE)
                    .filter_map(|h| twenty(h, "hash").ok().map(InfoHash))
                    .collect();
            if info_hashes.is_empty() {
                return Err(WireError::Short);
            }
            Ok(UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            })
        }
        other => Err(WireError::UnknownAction(other)),
    }
}

/// BEP 41 options: 0 = end, 1 = no-op, 2 = URL data (length byte, then bytes). Fragments of
/// URL data concatenate. Malformed options end the list, as the BEP says.
fn parse_bep41_options(mut rest: &[u8]) -> Option<String> {
    let mut url = Vec::new();
    while let Some((&kind, tail)) = rest.split_first() {
        match kind {
            0 => break,
            1 => rest = tail,
            2 => {
                let Some((&len, tail)) = tail.split_first() else {
                    break;
                };
                let Some(data) = tail.get(..len as usize) else {
                    break;
                };
                url.extend_from_slice(data);
                rest = &tail[len as usize..];
            }
            _ => break,
        }
    }
    (!url.is_empty()).then(|| String::from_utf8_lossy(&url).into_owned())
}

pub fn udp_connect_response(transaction_id: u32, connection_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&connection_id.to_be_bytes());
    out
}

/// An announce answer. `ipv6` selects 18-byte peer entries (a request that came over IPv6);
/// peers of the other family are left out, as BEP 15 has one address size per packet.
pub fn udp_announce_response(transaction_id: u32, resp: &AnnounceResponse, ipv6: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + resp.peers.len() * 18);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&resp.interval.to_be_bytes());
    out.extend_from_slice(&resp.incomplete.to_be_bytes());
    out.extend_from_slice(&resp.complete.to_be_bytes());
    for p in &resp.peers {
        match (p.addr, ipv6) {
            (SocketAddr::V4(a), false) => {
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            (SocketAddr::V6(a), true) => {
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            _ => {}
        }
    }
    out
}

pub fn udp_scrape_response(transaction_id: u32, stats: &[ScrapeStats]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + stats.len() * 12);
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for s in stats {
        out.extend_from_slice(&s.complete.to_be_bytes());
        out.extend_from_slice(&s.downloaded.to_be_bytes());
        out.extend_from_slice(&s.incomplete.to_be_bytes());
    }
    out
}

pub fn udp_error_response(transaction_id: u32, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + message.len());
    out.extend_from_slice(&3u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}

/// Client side: the bytes of a UDP connect request (used by tests and the benchmark).
pub fn udp_connect_request(transaction_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&UDP_PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out
}

/// Client side: the bytes of a UDP announce, with BEP 41 URL data when given.
pub fn udp_announce_request(
    connection_id: u64,
    transaction_id: u32,
    req: &AnnounceRequest,
    url_data: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(120);
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&req.info_hash.0);
    out.extend_from_slice(&req.peer_id);
    out.extend_from_slice(&req.downloaded.to_be_bytes());
    out.extend_from_slice(&req.left.to_be_bytes());
    out.extend_from_slice(&req.uploaded.to_be_bytes());
    let event: u32 = match req.event {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    };
    out.extend_from_slice(&event.to_be_bytes());
    let ip = match req.ip {
        Some(IpAddr::V4(a)) => u32::from(a),
        _ => 0,
    };
    out.extend_from_slice(&ip.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let numwant = req.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32);
    out.extend_from_slice(&numwant.to_be_bytes());
    out.extend_from_slice(&req.port.to_be_bytes());
    if let Some(url) = url_data {
        for chunk in url.as_bytes().chunks(255) {
            out.push(2);
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
    }
    out
}

/// Client side: parses the peers of a compact list (6 bytes per IPv4 peer, 18 per IPv6).
pub fn parse_compact_peers(bytes: &[u8], ipv6: bool) -> Vec<SocketAddr> {
    let size = if ipv6 { 18 } else { 6 };
    bytes
        .chunks_exact(size)
        .map(|c| {
            let port = u16::from_be_bytes([c[size - 2], c[size - 1]]);
            let ip = if ipv6 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&c[..16]);
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            };
            SocketAddr::new(ip, port)
        })
        .collect()
}

/// Client side: what a tracker answered to our announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Seconds until the next announce.
    pub interval: u32,
    pub peers: Vec<SocketAddr>,
}

/// Why a tracker's answer cannot be used (client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The tracker refused, and said why (shown to the person).
    #[error("the tracker refused: {0}")]
    Refused(String),
    #[error("the tracker's answer is not what BEP 3 or BEP 15 says: {0}")]
    Malformed(&'static str),
}

/// The most peers taken from one answer, whatever the tracker sends.
pub const MAX_ANSWER_PEERS: usize = 500;
/// A refusal's reason is cut to this many bytes before anyone shows it.
const MAX_REASON: usize = 200;

fn reason(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_REASON)]);
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Client side: the query string of an HTTP announce (after `?`), compact, percent-encoded.
pub fn http_announce_query(req: &AnnounceRequest) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
    let mut q = format!(
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        percent_encode(&req.info_hash.0, NON_ALPHANUMERIC),
        percent_encode(&req.peer_id, NON_ALPHANUMERIC),
        req.port,
        req.uploaded,
        req.downloaded,
        req.left,
    );
    match req.event {
        Event::Started => q.push_str("&event=started"),
        Event::Completed => q.push_str("&event=completed"),
        Event::Stopped => q.push_str("&event=stopped"),
        Event::None => {}
    }
    if let Some(n) = req.numwant {
        q.push_str(&format!("&numwant={n}"));
    }
    q
}

/// Client side: reads an HTTP tracker's bencoded answer (BEP 3, compact BEP 23, IPv6 BEP 7).
/// At most [`MAX_ANSWER_PEERS`] peers are kept; peers with port 0 are dropped.
pub fn parse_http_answer(body: &[u8]) -> Result<Answer, AnswerError> {
    use spheres_metainfo::bencode::{self, Value};
    let value = bencode::decode(body).map_err(|_| AnswerError::Malformed("not bencode"))?;
    let d = value
        .as_dict()
        .ok_or(AnswerError::Malformed("not a dictionary"))?;
    if let Some(why) = d.get(b"failure reason").and_then(Value::as_bytes) {
        return Err(AnswerError::Refused(reason(why)));
    }
    let interval = d
        .get(b"interval")
        .and_then(Value::as_int)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or(AnswerError::Malformed("interval"))?;
    let mut peers = Vec::new();
    match d.get(b"peers") {
        Some(Value::Bytes(b)) => peers.extend(parse_compact_peers(b, false)),
        Some(Value::List(list)) => {
            for p in list {
                let Some(p) = p.as_dict() else { continue };
                let ip = p
                    .get(b"ip")
                    .and_then(Value::as_bytes)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| s.parse::<IpAddr>().ok());
                let port = p
                    .get(b"port")
                    .and_then(Value::as_int)
                    .and_then(|i| u16::try_from(i).ok());
                if let (Some(ip), Some(port)) = (ip, port) {
                    peers.push(SocketAddr::new(ip, port));
                }
            }
        }
        None => {}
        Some(_) => return Err(AnswerError::Malformed("peers")),
    }
    if let Some(b) = d.get(b"peers6").and_then(Value::as_bytes) {
        peers.extend(parse_compact_peers(b, true));
    }
    peers.retain(|p| p.port() != 0);
    peers.truncate(MAX_ANSWER_PEERS);
    Ok(Answer { interval, peers })
}

/// Client side: the connection id in a UDP tracker's answer to our connect request with
/// `transaction_id`.
pub fn parse_udp_connect_answer(packet: &[u8], transaction_id: u32) -> Result<u64, AnswerError> {
    udp_header(packet, transaction_id, 0)?;
    let id = packet
        .get(8..16)
        .ok_or(AnswerError::Malformed("short connect answer"))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(id);
    Ok(u64::from_be_bytes(b))
}

/// Client side: a UDP tracker's answer to our announce with `transaction_id`, sent over
/// IPv6 (`ipv6`: 18-byte peers) or IPv4.
pub fn parse_udp_announce_answer(
    packet: &[u8],
    transaction_id: u32,
    ipv6: bool,
) -> Result<Answer, AnswerError> {
    udp_header(packet, transaction_id, 1)?;
    let head = packet
        .get(8..20)
        .ok_or(AnswerError::Malformed("short announce answer"))?;
    let interval = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let mut peers = parse_compact_peers(&packet[20..], ipv6);
    peers.retain(|p| p.port() != 0);
    peers.truncate(MAX_ANSWER_PEERS);
    Ok(Answer { interval, peers })
}

/// Checks a UDP answer's action and transaction id; an error answer (action 3) is a refusal.
fn udp_header(packet: &[u8], transaction_id: u32, action: u32) -> Result<(), AnswerError> {
    let head = packet
        .get(..8)
        .ok_or(AnswerError::Malformed("short answer"))?;
    let got = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let tid = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if tid != transaction_id {
        return Err(AnswerError::Malformed("another transaction"));
    }
    if got == 3 {
        return Err(AnswerError::Refused(reason(&packet[8..])));
    }
    if got != action {
        return Err(AnswerError::Malformed("unexpected action"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spheres_metainfo::bencode;

    #[test]
    fn a_client_reads_what_our_tracker_writes() {
        let peers = vec![
            Peer {
                peer_id: [1; 20],
                addr: "10.0.0.1:6881".parse().unwrap(),
            },
            Peer {
                peer_id: [2; 20],
                addr: "[2001:db8::1]:51413".parse().unwrap(),
            },
        ];
        let resp = AnnounceResponse {
            interval: 1800,
            min_interval: 60,
            complete: 1,
            incomplete: 1,
            peers,
        };
        let addrs: Vec<SocketAddr> = resp.peers.iter().map(|p| p.addr).collect();
        for (compact, no_peer_id) in [(true, false), (false, false), (false, true)] {
            let a = parse_http_answer(&http_announce_body(&resp, compact, no_peer_id)).unwrap();
            assert_eq!(
                a,
                Answer {
                    interval: 1800,
                    peers: addrs.clone()
                }
            );
        }
        assert_eq!(
            parse_http_answer(&http_failure_body("no such key")),
            Err(AnswerError::Refused("no such key".into()))
        );
        assert!(parse_http_answer(b"garbage").is_err());
        assert!(parse_http_answer(b"d5:peers3:abce").is_err(), "no interval");
        // Our query reads back as the announce it was made from.
        let req = AnnounceRequest {
            info_hash: InfoHash([0xAB; 20]),
            peer_id: *b"-SP0100-abc def+&=%x",
            port: 51413,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Completed,
            numwant: Some(50),
            compact: true,
            no_peer_id: false,
            ip: None,
        };
        assert_eq!(
            parse_http_announce(&http_announce_query(&req)).unwrap(),
            req
        );
        // UDP, both families, and the error answer.
        assert_eq!(
            parse_udp_connect_answer(&udp_connect_response(7, 99), 7),
            Ok(99)
        );
        assert!(parse_udp_connect_answer(&udp_connect_response(7, 99), 8).is_err());
        let v4 =
            parse_udp_announce_answer(&udp_announce_response(9, &resp, false), 9, false).unwrap();
        assert_eq!(v4.peers, addrs[..1]);
        let v6 =
            parse_udp_announce_answer(&udp_announce_response(9, &resp, true), 9, true).unwrap();
        assert_eq!(v6.peers, addrs[1..]);
        assert_eq!(
            parse_udp_announce_answer(&udp_error_response(9, "bad key\n"), 9, false),
            Err(AnswerError::Refused("bad key".into()))
        );
    }

    const HASH_Q: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

    #[test]
    fn parses_an_http_announce() {
        let q = format!(
            "info_hash={HASH_Q}&peer_id=-lt2080-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&event=started&compact=1&numwant=-1&key=zz&ip=10.0.0.9"
        );
        let r = parse_http_announce(&q).unwrap();
        assert_eq!(
            r.info_hash.to_hex(),
            "123456789abcdef123456789abcdef123456789a"
        );
        assert_eq!(&r.peer_id, b"-lt2080-abcdefghijkl");
        assert_eq!((r.port, r.uploaded, r.downloaded, r.left), (6881, 1, 2, 3));
        assert_eq!(r.event, Event::Started);
        assert_eq!(r.numwant, None);
        assert!(r.compact);
        assert_eq!(r.ip, Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn refuses_incomplete_or_malformed_announces() {
        let missing = parse_http_announce("peer_id=-lt2080-abcdefghijkl&port=1").unwrap_err();
        assert_eq!(missing, WireError::Missing("info_hash"));
        let short =
            parse_http_announce("info_hash=abc&peer_id=-lt2080-abcdefghijkl&port=1").unwrap_err();
        assert_eq!(short, WireError::Malformed("info_hash"));
        let q = format!("info_hash={HASH_Q}&peer_id=-lt2080-abcdefghijkl&port=70000");
        assert_eq!(
            parse_http_announce(&q).unwrap_err(),
            WireError::Malformed("port")
        );
    }

    #[test]
    fn encodes_compact_v4_and_v6_peers() {
        let resp = AnnounceResponse {
            interval: 60,
            min_interval: 10,
            complete: 1,
            incomplete: 1,
            peers: vec![
                Peer {
                    peer_id: [1; 20],
                    addr: "1.2.3.4:258".parse().unwrap(),
                },
                Peer {
                    peer_id: [2; 20],
                    addr: "[::1]:5".parse().unwrap(),
                },
            ],
        };
        let body = http_announce_body(&resp, true, false);
        let v = bencode::decode(&body).unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(
            d.get(b"peers").unwrap().as_bytes().unwrap(),
            &[1, 2, 3, 4, 1, 2]
        );
        let p6 = d.get(b"peers6").unwrap().as_bytes().unwrap();
        assert_eq!(
            parse_compact_peers(p6, true),
            vec!["[::1]:5".parse::<SocketAddr>().unwrap()]
        );
        let long = http_announce_body(&resp, false, false);
        let v = bencode::decode(&long).unwrap();
        assert_eq!(
            v.as_dict()
                .unwrap()
                .get(b"peers")
                .unwrap()
                .as_list()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn udp_requests_round_trip_with_bep41_url_data() {
        assert_eq!(
            parse_udp_request(&udp_connect_request(7)).unwrap(),
            UdpRequest::Connect { transaction_id: 7 }
        );
        let req = AnnounceRequest {
            info_hash: InfoHash([9; 20]),
            peer_id: [8; 20],
            port: 51413,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Completed,
            numwant: Some(30),
            compact: true,
            no_peer_id: true,
            ip: None,
        };
        let long_path = format!("/{}/announce", "k".repeat(300));
        let bytes = udp_announce_request(42, 5, &req, Some(&long_path));
        match parse_udp_request(&bytes).unwrap() {
            UdpRequest::Announce {
                connection_id,
                transaction_id,
                request,
                url_data,
            } => {
                assert_eq!((connection_id, transaction_id), (42, 5));
                assert_eq!(request, req);
                assert_eq!(url_data.as_deref(), Some(long_path.as_str()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_udp_request(&bytes[..97]), Err(WireError::Short));
        let mut bad = udp_connect_request(1);
        bad[0] = 9;
        assert_eq!(parse_udp_request(&bad), Err(WireError::BadProtocolId));
    }
}
