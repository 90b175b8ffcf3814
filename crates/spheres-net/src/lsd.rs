//! Local Service Discovery (BEP 14): nodes on one LAN tell each other, by multicast, which
//! torrents they have and on which port, so members in one house find each other with no
//! tracker and no server. librqbit turns its own LSD off for private torrents; this one
//! works for sphere torrents too and hands what it finds to the node.
//!
//! Wire format (one UDP datagram to 239.192.152.143:6771 or [ff15::efc0:988f]:6771):
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: <40 hex>\r\n
//! [Infohash: ...]\r\ncookie: <ours>\r\n\r\n\r\n
//! ```
//!
//! The cookie lets a node ignore its own announcements. Parsing is pure and never panics.
//!
//! A private torrent (every sphere's) is never announced by its info hash: anyone on the LAN
//! would hear it and could ask a member's node for the data. It goes by [`private_name`]
//! instead, a hash of the info hash *and of the announcing address and port*: only those who
//! already know the info hash (the sphere's members) can compute it, and it is good only from
//! the address that sent it. A stranger who repeats a name they heard, from their own address,
//! matches nothing, so no member dials them (a dial would send them the info hash in the
//! BitTorrent handshake). Only announcements of our own torrents are kept, at most
//! [`MAX_PEERS`] peers each, however much a LAN host sends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f);
pub const PORT: u16 = 6771;
/// How often each torrent is announced (BEP 14 asks for at most one per minute per torrent).
pub const EVERY: Duration = Duration::from_secs(60);
/// How long a peer heard once stays known.
pub const KEEP: Duration = Duration::from_secs(15 * 60);

/// At most this many torrents, and this many peers for each, are remembered from the LAN.
pub const MAX_TORRENTS: usize = 4096;
pub const MAX_PEERS: usize = 64;

/// A torrent we announce and look for on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torrent {
    pub info_hash: [u8; 20],
    /// Private torrents go by [`private_name`], never by info hash.
    pub private: bool,
}

impl Torrent {
    pub fn hex(&self) -> String {
        hex(&self.info_hash)
    }

    /// The name this torrent would have in an announcement from `from` of `port`.
    fn name_from(&self, from: IpAddr, port: u16) -> String {
        if self.private {
            private_name(&self.info_hash, from, port)
        } else {
            self.hex()
        }
    }

    /// Whether `name`, heard from `from` announcing `port`, is this torrent.
    #[cfg(test)]
    fn is_named(&self, name: &str, from: IpAddr, port: u16) -> bool {
        name == self.name_from(from, port)
    }

    /// What we call it when announcing `port` from `source` (`None`: a private torrent, and
    /// we do not know the address the datagram leaves from).
    fn name(&self, source: Option<IpAddr>, port: u16) -> Option<String> {
        match (self.private, source) {
            (false, _) => Some(self.hex()),
            (true, Some(ip)) => Some(private_name(&self.info_hash, ip, port)),
            (true, None) => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a private torrent is announced by from address `from` and `port`: SHA-1 over a
/// label, the info hash, the address (IPv4 as IPv4-mapped IPv6) and the port, in lowercase hex
/// like an info hash. One-way: hearing it tells nothing of the info hash, which the
/// BitTorrent handshake needs; bound to the address: repeated by anyone else, it is no name.
pub fn private_name(info_hash: &[u8; 20], from: IpAddr, port: u16) -> String {
    use sha1::{Digest, Sha1};
    let ip = match from {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6, |v4| v4.to_ipv6_mapped()),
    };
    let mut h = Sha1::new();
    h.update(b"spheres lsd private v1\0");
    h.update(info_hash);
    h.update(ip.octets());
    h.update(port.to_be_bytes());
    hex(&h.finalize())
}

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub port: u16,
    /// Info hashes, 40 lowercase hex digits each.
    pub infohashes: Vec<String>,
    pub cookie: Option<String>,
}

/// Encodes an announcement for `group` (the Host header names it).
pub fn encode(a: &Announce, group: SocketAddr) -> Vec<u8> {
    let mut s = format!(
        "BT-SEARCH * HTTP/1.1\r\nHost: {group}\r\nPort: {}\r\n",
        a.port
    );
    for h in &a.infohashes {
        s.push_str(&format!("Infohash: {h}\r\n"));
    }
    if let Some(c) = &a.cookie {
        s.push_str(&format!("cookie: {c}\r\n"));
    }
    s.push_str("\r\n\r\n");
    s.into_bytes()
}

fn is_infohash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads an announcement; `None` for anything that is not a well-formed BT-SEARCH.
pub fn parse(datagram: &[u8]) -> Option<Announce> {
    if datagram.len() > 1400 {
        return None;
    }
    let text = std::str::from_utf8(datagram).ok()?;
    let mut lines = text.split("\r\n");
    if lines.next()? != "BT-SEARCH * HTTP/1.1" {
        return None;
    }
    let mut port = None;
    let mut infohashes = Vec::new();
    let mut cookie = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "port" => port = value.parse::<u16>().ok().filter(|p| *p != 0),
            "infohash" if is_infohash(value) => infohashes.push(value.to_ascii_lowercase()),
            "cookie" if !value.is_empty() && value.len() <= 64 => cookie = Some(value.to_owned()),
            _ => {}
        }
    }
    (!infohashes.is_empty()).then_some(Announce {
        port: port?,
        infohashes,
        cookie,
    })
}

/// Peers heard on the LAN, per torrent.
#[derive(Clone, Default)]
pub struct Heard {
    inner: Arc<Mutex<HashMap<String, HashMap<SocketAddr, Instant>>>>,
}

impl Heard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<SocketAddr, Instant>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that `peer` has `infohash`, within [`MAX_TORRENTS`] and [`MAX_PEERS`]:
    /// what has expired makes room; when nothing has, the newcomer is not kept.
    pub fn record(&self, infohash: &str, peer: SocketAddr) {
        let mut all = self.lock();
        if !all.contains_key(infohash) && all.len() >= MAX_TORRENTS {
            all.retain(|_, peers| {
                peers.retain(|_, seen| seen.elapsed() < KEEP);
                !peers.is_empty()
            });
            if all.len() >= MAX_TORRENTS {
                return;
            }
        }
        let peers = all.entry(infohash.to_owned()).or_default();
        if !peers.contains_key(&peer) && peers.len() >= MAX_PEERS {
            peers.retain(|_, seen| seen.elapsed() < KEEP);
            if peers.len() >= MAX_PEERS {
                return;
            }
        }
        peers.insert(peer, Instant::now());
    }

    /// How many torrents are remembered now.
    pub fn torrents(&self) -> usize {
        self.lock().len()
    }

    /// Peers heard for a torrent recently.
    pub fn peers(&self, infohash: &str) -> Vec<SocketAddr> {
        let mut all = self.lock();
        let Some(peers) = all.get_mut(infohash) else {
            return Vec::new();
        };
        peers.retain(|_, seen| seen.elapsed() < KEEP);
        peers.keys().copied().collect()
    }
}

/// One multicast socket: IPv4 (239.192.152.143) or IPv6 (ff15::efc0:988f), with the
/// interfaces it sends on (IPv4 addresses, or IPv6 interface indexes).
struct Lan {
    socket: tokio::net::UdpSocket,
    group: SocketAddr,
    out: Mutex<Vec<Out>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    V4(Ipv4Addr),
    V6(u32),
}

impl Lan {
    fn new(socket: std::net::UdpSocket, group: impl Into<IpAddr>) -> std::io::Result<Lan> {
        Ok(Lan {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            group: SocketAddr::new(group.into(), PORT),
            out: Mutex::new(Vec::new()),
        })
    }

    /// Follows the machine's interfaces (a laptop moves between networks, a cable goes in):
    /// joins the group on new ones, and sends on those present now. Says whether there is any.
    fn refresh(&self) -> bool {
        let sock = socket2::SockRef::from(&self.socket);
        let now: Vec<Out> = if self.group.is_ipv4() {
            local_ipv4().into_iter().map(Out::V4).collect()
        } else {
            ipv6_interfaces().into_iter().map(Out::V6).collect()
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = Vec::new();
        for o in now {
            let joined = out.contains(&o)
                || match o {
                    Out::V4(ip) => sock.join_multicast_v4(&GROUP_V4, &ip).is_ok(),
                    Out::V6(index) => sock.join_multicast_v6(&GROUP_V6, index).is_ok(),
                };
            if joined {
                present.push(o);
            }
        }
        *out = present;
        !out.is_empty()
    }

    /// Sends out of every interface (the system's choice when none is known) the datagrams
    /// `build` makes for the addresses that interface sends from.
    async fn send(&self, build: impl Fn(&[IpAddr]) -> Vec<Vec<u8>>) {
        let sock = socket2::SockRef::from(&self.socket);
        let outs = self.out.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if outs.is_empty() {
            for datagram in build(&[]) {
                let _ = self.socket.send_to(&datagram, self.group).await;
            }
            return;
        }
        let mut sent = false;
        for out in &outs {
            let (chosen, sources) = match *out {
                Out::V4(ip) => (sock.set_multicast_if_v4(&ip), vec![IpAddr::V4(ip)]),
                Out::V6(index) => (
                    sock.set_multicast_if_v6(index),
                    ipv6_addresses(index).into_iter().map(IpAddr::V6).collect(),
                ),
            };
            if let Err(e) = chosen {
                tracing::debug!(error = %e, "cannot pick an interface for LSD");
                continue;
            }
            for datagram in build(&sources) {
                match self.socket.send_to(&datagram, self.group).await {
                    Ok(_) => sent = true,
                    Err(e) => tracing::debug!(error = %e, "cannot send an LSD announcement"),
                }
            }
        }
        // The interfaces seen at start are gone (a laptop changed networks): let the system
        // choose, as it would for a socket with no interface set.
        if !sent {
            let reset = match outs.first() {
                Some(Out::V4(_)) => sock.set_multicast_if_v4(&Ipv4Addr::UNSPECIFIED),
                _ => sock.set_multicast_if_v6(0),
            };
            if reset.is_ok() {
                for datagram in build(&[]) {
                    let _ = self.socket.send_to(&datagram, self.group).await;
                }
            }
        }
    }
}

/// The names of `torrents` as announced on `port` from any of `sources` (an interface may
/// send from any of its addresses), a few to a datagram.
fn datagrams(
    torrents: &[Torrent],
    sources: &[IpAddr],
    port: u16,
    cookie: &str,
    group: SocketAddr,
) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for t in torrents {
        if t.private {
            names.extend(sources.iter().filter_map(|s| t.name(Some(*s), port)));
        } else {
            names.extend(t.name(None, port));
        }
    }
    // A few names per datagram, to stay well under a packet.
    names
        .chunks(20)
        .map(|chunk| {
            let a = Announce {
                port,
                infohashes: chunk.to_vec(),
                cookie: Some(cookie.to_owned()),
            };
            encode(&a, group)
        })
        .collect()
}

/// Runs LSD over IPv4 and IPv6 on every interface that can multicast: announces `ours()`
/// (our port and the torrents to announce, read each round) every [`EVERY`], and records
/// what others announce. Returns the table of what was heard; the tasks run until the
/// runtime stops. Fails only when neither IPv4 nor IPv6 can be used.
pub fn start(
    port: u16,
    ours: impl Fn() -> Vec<Torrent> + Send + Sync + 'static,
) -> std::io::Result<Heard> {
    let cookie = format!("spheres-{:016x}", rand_u64());
    let mut lans = Vec::new();
    let mut first_error = None;
    // IPv4: on every interface with an address, or on the system's choice when none has one.
    match shared_socket(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).and_then(|s| Lan::new(s, GROUP_V4)) {
        Ok(lan) => {
            let joined = if lan.refresh() {
                Ok(())
            } else {
                socket2::SockRef::from(&lan.socket)
                    .join_multicast_v4(&GROUP_V4, &Ipv4Addr::UNSPECIFIED)
            };
            match joined {
                Ok(()) => lans.push(lan),
                Err(e) => first_error = Some(e),
            }
        }
        Err(e) => first_error = Some(e),
    }
    // IPv6: only where some interface has it.
    match shared_socket(IpAddr::V6(Ipv6Addr::UNSPECIFIED)).and_then(|s| Lan::new(s, GROUP_V6)) {
        Ok(lan) if lan.refresh() => lans.push(lan),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "no IPv6 local service discovery"),
    }
    if lans.is_empty() {
        return Err(first_error.unwrap_or_else(|| std::io::Error::other("no interface")));
    }
    let lans: Arc<Vec<Lan>> = Arc::new(lans);
    let heard = Heard::default();
    let ours = Arc::new(ours);
    // Someone announcing a torrent we have gets an answer at once (at most every few
    // seconds), so a node that just arrived does not wait a whole round to find us.
    let answer = Arc::new(tokio::sync::Notify::new());
    for i in 0..lans.len() {
        let (lans, heard, my_cookie) = (lans.clone(), heard.clone(), cookie.clone());
        let (ours, answer) = (ours.clone(), answer.clone());
        tokio::spawn(async move {
            let socket = &lans[i].socket;
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(a) = parse(&buf[..n]) else {
                    tracing::debug!(%from, "ignoring a datagram that is not a BT-SEARCH");
                    continue;
                };
                if a.cookie.as_deref() == Some(my_cookie.as_str()) {
                    continue;
                }
                // Only our own torrents are kept: a name we cannot match is nothing to us.
                let peer = peer_address(from, a.port);
                let mut ours_heard = false;
                // One hash per torrent of ours and datagram, whatever the datagram holds.
                for t in ours() {
                    let expected = t.name_from(peer.ip(), a.port);
                    if a.infohashes.contains(&expected) {
                        heard.record(&t.hex(), peer);
                        ours_heard = true;
                    }
                }
                if ours_heard {
                    answer.notify_one();
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut last: Vec<Torrent> = Vec::new();
        let mut last_sent = Instant::now() - EVERY;
        let mut asked = false;
        loop {
            let now = ours();
            let answer_due = asked && last_sent.elapsed() >= Duration::from_secs(3);
            // New torrents are announced at once; all of them every EVERY, or when asked.
            if now != last || last_sent.elapsed() >= EVERY || answer_due {
                asked = false;
                for lan in lans.iter() {
                    lan.refresh();
                }
                for lan in lans.iter() {
                    lan.send(|sources| datagrams(&now, sources, port, &cookie, lan.group))
                        .await;
                }
                last = now;
                last_sent = Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = answer.notified() => asked = true,
            }
        }
    });
    Ok(heard)
}

/// Where to reach a peer that announced from `from`: its address (with the interface, for an
/// IPv6 link-local one) and the port it announced.
fn peer_address(from: SocketAddr, port: u16) -> SocketAddr {
    match from {
        SocketAddr::V6(v6) => {
            let ip = *v6.ip();
            if let Some(v4) = ip.to_ipv4_mapped() {
                return SocketAddr::from((v4, port));
            }
            let scope = if ip.is_unicast_link_local() {
                v6.scope_id()
            } else {
                0
            };
            SocketAddr::V6(std::net::SocketAddrV6::new(ip, port, 0, scope))
        }
        SocketAddr::V4(v4) => SocketAddr::from((*v4.ip(), port)),
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A UDP socket on `any`:6771 (0.0.0.0, or [::] for IPv6 only) shared with other programs
/// (SO_REUSEADDR/PORT), looping our own multicast back; groups are joined by `Lan::refresh`.
fn shared_socket(any: IpAddr) -> std::io::Result<std::net::UdpSocket> {
    let addr = SocketAddr::new(any, PORT);
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if any.is_ipv6() {
        s.set_only_v6(true)?;
        s.set_multicast_loop_v6(true)?;
    } else {
        s.set_multicast_loop_v4(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The IPv6 addresses of interface `index` (/proc/net/if_inet6).
fn ipv6_addresses(index: u32) -> Vec<Ipv6Addr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let i = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let raw = u128::from_str_radix(f.first()?, 16).ok()?;
            (i == index).then(|| Ipv6Addr::from(raw))
        })
        .collect()
}

/// Indexes of the interfaces with an IPv6 address, loopback left out (/proc/net/if_inet6:
/// address, index, prefix length, scope, flags, name, all in hex but the name).
fn ipv6_interfaces() -> Vec<u32> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(index), Some(name)) = (f.get(1), f.get(5)) else {
            continue;
        };
        if *name == "lo" {
            continue;
        }
        if let Ok(i) = u32::from_str_radix(index, 16)
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

/// This machine's IPv4 addresses (from /proc/net/fib_trie's local entries), loopback left out.
fn local_ipv4() -> Vec<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut out = Vec::new();
    let mut previous: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("|-- ") {
            previous = rest.parse().ok();
        } else if t.contains("/32 host LOCAL")
            && let Some(ip) = previous
            && !ip.is_loopback()
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_junk_is_ignored() {
        let a = Announce {
            port: 6881,
            infohashes: vec!["0123456789abcdef0123456789abcdef01234567".into()],
            cookie: Some("c1".into()),
        };
        let group = SocketAddr::from((GROUP_V4, PORT));
        let bytes = encode(&a, group);
        assert!(bytes.starts_with(b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n"));
        assert_eq!(parse(&bytes), Some(a));
        // Header names are case-insensitive; a second hash is kept; bad ones are not.
        let other = b"BT-SEARCH * HTTP/1.1\r\nhost: x\r\nport: 51413\r\ninfohash: ABCDEF0123456789ABCDEF0123456789ABCDEF01\r\nInfohash: nothex\r\n\r\n\r\n";
        let got = parse(other).unwrap();
        assert_eq!(got.port, 51413);
        assert_eq!(
            got.infohashes,
            vec!["abcdef0123456789abcdef0123456789abcdef01".to_owned()]
        );
        for junk in [
            &b""[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            b"BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n",
            b"BT-SEARCH * HTTP/1.1\r\nPort: 99999\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn peers_are_reached_where_they_announced_from() {
        let ll: SocketAddr = "[fe80::1%3]:6771".parse().unwrap();
        assert_eq!(peer_address(ll, 51413).to_string(), "[fe80::1%3]:51413");
        let global: SocketAddr = "[2001:db8::5%3]:6771".parse().unwrap();
        assert_eq!(peer_address(global, 7).to_string(), "[2001:db8::5]:7");
        let mapped: SocketAddr = "[::ffff:192.168.1.9]:6771".parse().unwrap();
        assert_eq!(peer_address(mapped, 7).to_string(), "192.168.1.9:7");
        let v4: SocketAddr = "192.168.1.9:6771".parse().unwrap();
        assert_eq!(peer_address(v4, 7).to_string(), "192.168.1.9:7");
    }

    #[test]
    fn heard_peers_are_kept_per_torrent() {
        let h = Heard::default();
        let p: SocketAddr = "192.168.1.7:6881".parse().unwrap();
        h.record("aa", p);
        assert_eq!(h.peers("aa"), vec![p]);
        assert!(h.peers("bb").is_empty());
    }

    /// Attack: a LAN host floods announcements of made-up torrents and peers. The table
    /// stays within its bounds, and what was heard first is still there.
    #[test]
    fn a_flood_from_the_lan_stays_bounded() {
        let h = Heard::default();
        let first: SocketAddr = "192.168.1.7:6881".parse().unwrap();
        h.record("aa", first);
        for i in 0..(MAX_TORRENTS as u32 * 2) {
            h.record(&format!("{i:040x}"), first);
        }
        assert_eq!(h.torrents(), MAX_TORRENTS);
        for port in 1..=(MAX_PEERS as u16 * 4) {
            h.record("aa", SocketAddr::new(first.ip(), port));
        }
        let peers = h.peers("aa");
        assert_eq!(peers.len(), MAX_PEERS);
        assert!(peers.contains(&first));
    }

    /// Attack: a stranger hears a member's name for a private torrent and announces it again
    /// from their own address (any port they like). Members who know the torrent match the
    /// member's announcement, never the stranger's, so nobody dials the stranger.
    #[test]
    fn private_names_hide_the_info_hash_and_cannot_be_replayed() {
        let t = Torrent {
            info_hash: [0x5a; 20],
            private: true,
        };
        let member: IpAddr = "192.168.1.20".parse().unwrap();
        let stranger: IpAddr = "192.168.1.66".parse().unwrap();
        let name = t.name(Some(member), 6881).unwrap();
        assert_eq!(name.len(), 40);
        assert!(is_infohash(&name));
        assert!(!name.contains("5a5a5a"), "{name}");
        assert!(
            t.is_named(&name, member, 6881),
            "members compute the same name"
        );
        assert!(
            !t.is_named(&name, stranger, 6881),
            "replayed from another address"
        );
        assert!(
            !t.is_named(&name, member, 6882),
            "replayed with another port"
        );
        assert!(
            !t.is_named(&t.hex(), member, 6881),
            "a private torrent by its hash"
        );
        // The same address written as IPv4-mapped IPv6 is the same address.
        let mapped = IpAddr::V6("::ffff:192.168.1.20".parse().unwrap());
        assert!(t.is_named(&name, mapped, 6881));
        // Nothing to send from an unknown address: never the info hash instead.
        assert_eq!(t.name(None, 6881), None);
        let public = Torrent {
            private: false,
            ..t
        };
        assert_eq!(public.name(None, 6881).unwrap(), public.hex());
        let group: SocketAddr = "239.192.152.143:6771".parse().unwrap();
        let sent = datagrams(&[t, public], &[member], 6881, "c", group);
        let text = String::from_utf8(sent.concat()).unwrap();
        assert!(
            text.contains(&name) && text.matches(&t.hex()).count() == 1,
            "{text}"
        );
    }
}
