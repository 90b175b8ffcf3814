//! A load generator for BitTorrent trackers: announces as fast as the tracker answers them, over
//! UDP (BEP 15) or HTTP, for a fixed time, and prints how many got a valid answer.
//!
//! ```text
//! tracker_load udp  ADDR SECONDS [CONCURRENCY]   e.g. tracker_load udp 127.0.0.1:6969 10 4
//! tracker_load http ADDR SECONDS [CONCURRENCY]
//! tracker_load hashes                             the info hashes it announces, in hex, one a line
//! ```
//!
//! It prints one JSON line:
//! `{"mode":"udp","announces":N,"seconds":S,"per_second":R,"concurrency":C,"failures":F,"lost":L,"connects":K}`
//! where `announces` counts valid answers received within the SECONDS window, `failures` answers
//! that were errors or refusals, `lost` requests that got no answer (UDP: none within a second;
//! HTTP: the connection broke or timed out), and `connects` the BEP 15 connection ids
//! obtained (UDP) or TCP connections opened (HTTP).
//!
//! What it sends
//! - Info hashes: a fixed set of 1000, so a tracker that only serves listed torrents (such as
//!   Debian's opentracker, built with a whitelist) can be given them. Hash number `i`, for `i`
//!   in 1..=1000, is the four big-endian bytes of `i` repeated five times (hash 1 is
//!   `00000001` x 5); `tracker_load hashes` prints them. Each announce picks one at random.
//! - Peer ids and ports are random for every announce (so swarms keep growing, as on a busy
//!   tracker); `left=1` (a leech), no event, `numwant=50`.
//! - UDP: CONCURRENCY threads (default 4), each with its own socket. Each does one BEP 15
//!   connect, then keeps up to 32 announces in flight, matching answers by transaction id. An
//!   announce without an answer for 1 s is counted lost and its slot reused, so dropped
//!   packets never stall a thread. The connection id is renewed every 50 s (BEP 15 ids are good
//!   for at least a minute), and at once when the tracker answers that it is not valid.
//! - HTTP: CONCURRENCY threads (default 4), each with one keep-alive HTTP/1.1 connection and
//!   one request in flight: `GET /announce?info_hash=..&peer_id=..&port=..&uploaded=0&
//!   downloaded=0&left=1&compact=1&numwant=50`. A 200 answer whose body is a bencoded
//!   dictionary without `failure reason` is valid. When the server closes the connection after
//!   an answer (opentracker does, without saying so) the thread reconnects and resends, which
//!   is not counted as lost, and from then on opens a new connection for each request rather
//!   than finding out the hard way every time.
//!
//! Standard library only.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HASHES: u32 = 1000;
const UDP_WINDOW: usize = 32;
const UDP_LOST_AFTER: Duration = Duration::from_secs(1);
const UDP_RECONNECT_AFTER: Duration = Duration::from_secs(50);
const UDP_PROTOCOL_ID: u64 = 0x0417_2710_1980;
const IO_TIMEOUT: Duration = Duration::from_millis(100);
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
const NUMWANT: u32 = 50;

/// Info hash number `i` (1..=1000): the big-endian bytes of `i`, five times.
fn info_hash(i: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    for chunk in h.chunks_exact_mut(4) {
        chunk.copy_from_slice(&i.to_be_bytes());
    }
    h
}

/// xorshift64*: fast, and good enough to spread announces over torrents and peers.
struct Rng(u64);

impl Rng {
    fn seeded(stream: u64) -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // splitmix64 of the time and the stream number, so threads do not share a sequence.
        let mut z = nanos ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn info_hash(&mut self) -> [u8; 20] {
        info_hash(1 + self.below(u64::from(HASHES)) as u32)
    }

    fn peer_id(&mut self) -> [u8; 20] {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-TL0001-");
        for chunk in id[8..].chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        id
    }

    fn port(&mut self) -> u16 {
        1024 + self.below(65536 - 1024) as u16
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    announces: u64,
    failures: u64,
    lost: u64,
    connects: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.announces += o.announces;
        self.failures += o.failures;
        self.lost += o.lost;
        self.connects += o.connects;
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ---- UDP (BEP 15) ------------------------------------------------------------------------

fn udp_connect_packet(tid: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&UDP_PROTOCOL_ID.to_be_bytes());
    // action 0 = connect, already zero
    p[12..].copy_from_slice(&tid.to_be_bytes());
    p
}

fn udp_announce_packet(conn: u64, tid: u32, rng: &mut Rng) -> [u8; 98] {
    let mut p = [0u8; 98];
    p[0..8].copy_from_slice(&conn.to_be_bytes());
    p[8..12].copy_from_slice(&1u32.to_be_bytes()); // action 1 = announce
    p[12..16].copy_from_slice(&tid.to_be_bytes());
    p[16..36].copy_from_slice(&rng.info_hash());
    p[36..56].copy_from_slice(&rng.peer_id());
    // downloaded 56..64 = 0
    p[64..72].copy_from_slice(&1u64.to_be_bytes()); // left
    // uploaded 72..80 = 0, event 80..84 = 0 (none), ip 84..88 = 0 (the sender's)
    p[88..92].copy_from_slice(&(rng.next_u64() as u32).to_be_bytes()); // key
    p[92..96].copy_from_slice(&NUMWANT.to_be_bytes());
    p[96..98].copy_from_slice(&rng.port().to_be_bytes());
    p
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn udp_worker(addr: SocketAddr, deadline: Instant, seed: u64) -> io::Result<Counts> {
    let local: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind(SocketAddr::new(local, 0))?;
    sock.connect(addr)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;

    let mut rng = Rng::seeded(seed);
    let mut counts = Counts::default();
    let mut tid = rng.next_u64() as u32;
    // The connection id and when it was issued; a connect request in flight.
    let mut conn: Option<(u64, Instant)> = None;
    let mut connecting: Option<(u32, Instant)> = None;
    let mut in_flight: HashMap<u32, Instant> = HashMap::with_capacity(UDP_WINDOW * 2);
    let mut last_sweep = Instant::now();
    let mut buf = [0u8; 4096];

    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let renew = conn.is_none_or(|(_, at)| now - at > UDP_RECONNECT_AFTER);
        if renew && connecting.is_none_or(|(_, sent)| now - sent > UDP_LOST_AFTER) {
            tid = tid.wrapping_add(1);
            // A failed send (nothing listening yet) is retried like a lost answer.
            let _ = sock.send(&udp_connect_packet(tid));
            connecting = Some((tid, now));
        }
        // While a new id is on its way, the old one is still good.
        if let Some((id, _)) = conn {
            while in_flight.len() < UDP_WINDOW {
                tid = tid.wrapping_add(1);
                match sock.send(&udp_announce_packet(id, tid, &mut rng)) {
                    Ok(_) => {
                        in_flight.insert(tid, now);
                    }
                    Err(_) => break, // e.g. a refused port reported by ICMP; retried below
                }
            }
        }
        if now - last_sweep > IO_TIMEOUT {
            let before = in_flight.len();
            in_flight.retain(|_, sent| now - *sent < UDP_LOST_AFTER);
            counts.lost += (before - in_flight.len()) as u64;
            last_sweep = now;
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => {
                // Nothing listening (yet): do not spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if n < 8 || Instant::now() >= deadline {
            continue;
        }
        let (action, got) = (be_u32(&buf[0..4]), be_u32(&buf[4..8]));
        match action {
            0 if n >= 16 && connecting.is_some_and(|(t, _)| t == got) => {
                conn = Some((be_u64(&buf[8..16]), Instant::now()));
                connecting = None;
                counts.connects += 1;
            }
            1 if in_flight.remove(&got).is_some() => {
                // interval, leechers, seeders, then peers: anything shorter is not an answer
                // (opentracker sends 8 bytes for a torrent it does not serve).
                if n >= 20 {
                    counts.announces += 1;
                } else {
                    counts.failures += 1;
                }
            }
            3 if in_flight.remove(&got).is_some() => {
                counts.failures += 1;
                let message = String::from_utf8_lossy(&buf[8..n]).to_ascii_lowercase();
                if message.contains("connection") {
                    conn = None;
                }
            }
            _ => {} // late, duplicate or foreign
        }
    }
    Ok(counts)
}

// ---- HTTP --------------------------------------------------------------------------------

fn percent_encode(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push('%');
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

fn http_request(host: &str, rng: &mut Rng) -> Vec<u8> {
    let mut r = String::with_capacity(256);
    r.push_str("GET /announce?info_hash=");
    percent_encode(&mut r, &rng.info_hash());
    r.push_str("&peer_id=");
    percent_encode(&mut r, &rng.peer_id());
    r.push_str(&format!(
        "&port={}&uploaded=0&downloaded=0&left=1&compact=1&numwant={NUMWANT} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        rng.port()
    ));
    r.into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How one request went.
enum Exchange {
    /// An answer: whether it was a valid announce, whether the connection stays open.
    Answer { valid: bool, keep_alive: bool },
    /// The connection was already closed when we used it: nothing was answered.
    Stale,
    /// It broke or timed out half way.
    Broken,
}

/// Reads more bytes into `buf`; Ok(0) is the end of the stream.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn http_exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Exchange {
    buf.clear();
    if stream.write_all(request).is_err() {
        return Exchange::Stale;
    }
    // Headers.
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        match fill(stream, buf) {
            Ok(0) if buf.is_empty() => return Exchange::Stale,
            Err(e) if buf.is_empty() && !is_timeout(&e) => return Exchange::Stale,
            Ok(0) | Err(_) => return Exchange::Broken,
            Ok(_) => {}
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    let version = parts.next().unwrap_or("");
    let ok = parts.next() == Some("200");
    let mut keep_alive = version == "http/1.1";
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim() {
            "content-length" => length = value.parse::<usize>().ok(),
            "connection" if value.contains("close") => keep_alive = false,
            "connection" if value.contains("keep-alive") => keep_alive = true,
            "transfer-encoding" if value.contains("chunked") => chunked = true,
            _ => {}
        }
    }
    if chunked {
        // Neither tracker measured here sends chunked announces; not worth decoding.
        return Exchange::Broken;
    }
    // Body: Content-Length bytes, or everything up to the end of the stream.
    match length {
        Some(len) => {
            while buf.len() < head_end + len {
                match fill(stream, buf) {
                    Ok(0) | Err(_) => return Exchange::Broken,
                    Ok(_) => {}
                }
            }
        }
        None => {
            keep_alive = false;
            loop {
                match fill(stream, buf) {
                    Ok(0) => break,
                    Err(_) => return Exchange::Broken,
                    Ok(_) => {}
                }
            }
        }
    }
    let body = &buf[head_end..length.map_or(buf.len(), |l| head_end + l)];
    let valid = ok && body.first() == Some(&b'd') && find(body, b"14:failure reason").is_none();
    Exchange::Answer { valid, keep_alive }
}

fn http_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    s.set_write_timeout(Some(HTTP_TIMEOUT))?;
    Ok(s)
}

fn http_worker(addr: SocketAddr, host: &str, deadline: Instant, seed: u64) -> Counts {
    let mut rng = Rng::seeded(seed);
    let mut counts = Counts::default();
    let mut conn: Option<TcpStream> = None;
    // Set once the server has closed a connection after answering without saying so: from then
    // on this worker opens a new connection for every request, as a client would learn to.
    let mut server_closes = false;
    let mut buf = Vec::with_capacity(16 * 1024);
    while Instant::now() < deadline {
        let reused = conn.is_some();
        let stream = match conn {
            Some(ref mut s) => s,
            None => match http_connect(addr) {
                Ok(s) => {
                    counts.connects += 1;
                    conn.insert(s)
                }
                Err(_) => {
                    counts.lost += 1;
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let request = http_request(host, &mut rng);
        let outcome = http_exchange(stream, &request, &mut buf);
        let in_time = Instant::now() < deadline;
        match outcome {
            Exchange::Answer { valid, keep_alive } => {
                if in_time {
                    if valid {
                        counts.announces += 1;
                    } else {
                        counts.failures += 1;
                    }
                }
                if !keep_alive || server_closes {
                    conn = None;
                }
            }
            // The server closed the connection after its last answer: open a new one and
            // resend.
            Exchange::Stale if reused => {
                conn = None;
                server_closes = true;
            }
            Exchange::Stale | Exchange::Broken => {
                if in_time {
                    counts.lost += 1;
                }
                conn = None;
            }
        }
    }
    counts
}

// ---- main --------------------------------------------------------------------------------

const USAGE: &str =
    "usage: tracker_load udp|http ADDR SECONDS [CONCURRENCY]\n       tracker_load hashes";

fn run(args: &[String]) -> Result<(), String> {
    let mode = args.first().map(String::as_str).ok_or(USAGE)?;
    if mode == "hashes" {
        let mut out = String::with_capacity(41 * HASHES as usize);
        for i in 1..=HASHES {
            for b in info_hash(i) {
                out.push_str(&format!("{b:02x}"));
            }
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    }
    if mode != "udp" && mode != "http" {
        return Err(USAGE.into());
    }
    let host = args.get(1).ok_or(USAGE)?.clone();
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let seconds: f64 = args
        .get(2)
        .ok_or(USAGE)?
        .parse()
        .map_err(|_| "SECONDS must be a number")?;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("SECONDS must be positive".into());
    }
    let concurrency: usize = match args.get(3) {
        Some(c) => c
            .parse()
            .map_err(|_| "CONCURRENCY must be a whole number")?,
        None => 4,
    };
    if concurrency == 0 {
        return Err("CONCURRENCY must be at least 1".into());
    }

    let window = Duration::from_secs_f64(seconds);
    let deadline = Instant::now() + window;
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let host = host.clone();
            let udp = mode == "udp";
            thread::spawn(move || {
                if udp {
                    udp_worker(addr, deadline, i as u64)
                } else {
                    Ok(http_worker(addr, &host, deadline, i as u64))
                }
            })
        })
        .collect();
    let mut total = Counts::default();
    for w in workers {
        match w.join() {
            Ok(Ok(c)) => total.add(c),
            Ok(Err(e)) => return Err(format!("worker: {e}")),
            Err(_) => return Err("a worker panicked".into()),
        }
    }
    let secs = window.as_secs_f64();
    println!(
        "{{\"mode\":\"{mode}\",\"announces\":{},\"seconds\":{secs},\"per_second\":{:.1},\"concurrency\":{concurrency},\"failures\":{},\"lost\":{},\"connects\":{}}}",
        total.announces,
        total.announces as f64 / secs,
        total.failures,
        total.lost,
        total.connects
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracker_load: {e}");
            ExitCode::from(2)
        }
    }
}
