//! The tracker's sockets: an HTTP router (mountable in any axum server, or served alone) and a
//! UDP loop. Both turn bytes into [`Tracker`] calls through [`crate::wire`] and never panic on
//! what they receive.
//!
//! URLs: `/announce` and `/scrape` for an open tracker; `/<key>/announce` and `/<key>/scrape`
//! carry a private key (a UDP client sends the same path as BEP 41 URL data). The key sits in
//! the path, not the query, because clients add a `key=` parameter of their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha1::{Digest, Sha1};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::tracker::{Tracker, TrackerConfig};
use crate::wire::{self, UdpRequest};

fn bencoded(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

async fn announce(
    State(t): State<Arc<Tracker>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    key: Option<Path<String>>,
    RawQuery(query): RawQuery,
) -> Response {
    let req = match wire::parse_http_announce(query.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "bad announce");
            return bencoded(
                StatusCode::BAD_REQUEST,
                wire::http_failure_body(&e.to_string()),
            );
        }
    };
    let key = key.as_ref().map(|k| k.0.as_str());
    match t.announce(&req, remote, key, Instant::now()) {
        Ok(resp) => bencoded(
            StatusCode::OK,
            wire::http_announce_body(&resp, req.compact, req.no_peer_id),
        ),
        Err(refusal) => {
            tracing::info!(%remote, info_hash = %req.info_hash, %refusal, "announce refused");
            bencoded(
                StatusCode::OK,
                wire::http_failure_body(&refusal.to_string()),
            )
        }
    }
}

async fn scrape(
    State(t): State<Arc<Tracker>>,
    key: Option<Path<String>>,
    RawQuery(query): RawQuery,
) -> Response {
    let hashes = match wire::parse_http_scrape(query.as_deref().unwrap_or("")) {
        Ok(h) => h,
        Err(e) => {
            return bencoded(
                StatusCode::BAD_REQUEST,
                wire::http_failure_body(&e.to_string()),
            );
        }
    };
    let key = key.as_ref().map(|k| k.0.as_str());
    match t.scrape(&hashes, key, Instant::now()) {
        Ok(files) => bencoded(StatusCode::OK, wire::http_scrape_body(&files)),
        Err(refusal) => bencoded(
            StatusCode::OK,
            wire::http_failure_body(&refusal.to_string()),
        ),
    }
}

/// The tracker's HTTP routes. Serve with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn http_router(tracker: Arc<Tracker>) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/{key}/announce", get(announce))
        .route("/{key}/scrape", get(scrape))
        .with_state(tracker)
}

/// Stateless BEP 15 connection ids: a keyed hash of the client's address and the minute,
/// accepted for the current and the previous minute. Nothing to store, nothing to expire, and
/// a spoofed source address never learns a valid id.
struct ConnectionIds {
    secret: [u8; 32],
}

impl ConnectionIds {
    fn new() -> Self {
        ConnectionIds {
            secret: rand::random(),
        }
    }

    fn minute() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60)
    }

    fn id(&self, addr: &SocketAddr, minute: u64) -> u64 {
        let mut h = Sha1::new();
        h.update(self.secret);
        h.update(minute.to_be_bytes());
        match addr.ip() {
            std::net::IpAddr::V4(a) => h.update(a.octets()),
            std::net::IpAddr::V6(a) => h.update(a.octets()),
        }
        h.update(addr.port().to_be_bytes());
        let d = h.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&d[..8]);
        u64::from_be_bytes(out)
    }

    fn issue(&self, addr: &SocketAddr) -> u64 {
        self.id(addr, Self::minute())
    }

    fn valid(&self, addr: &SocketAddr, id: u64) -> bool {
        let now = Self::minute();
        id == self.id(addr, now) || id == self.id(addr, now.saturating_sub(1))
    }
}

/// The key in BEP 41 URL data of the form `/<key>/announce[?...]`.
fn key_from_url_data(url: &str) -> Option<&str> {
    let path = url.split('?').next().unwrap_or("");
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(key), Some(rest)) if !key.is_empty() && rest.starts_with("announce") => Some(key),
        _ => None,
    }
}

/// Answers one UDP datagram; `None` means stay silent (garbage or a forged connection id).
fn handle_udp(
    tracker: &Tracker,
    ids: &ConnectionIds,
    packet: &[u8],
    remote: SocketAddr,
) -> Option<Vec<u8>> {
    let request = match wire::parse_udp_request(packet) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "bad UDP tracker packet");
            return None;
        }
    };
    match request {
        UdpRequest::Connect { transaction_id } => Some(wire::udp_connect_response(
            transaction_id,
            ids.issue(&remote),
        )),
        UdpRequest::Announce {
            connection_id,
            transaction_id,
            request,
            url_data,
        } => {
            if !ids.valid(&remote, connection_id) {
                return Some(wire::udp_error_response(
                    transaction_id,
                    "connection id expired",
                ));
            }
            let key = url_data.as_deref().and_then(key_from_url_data);
            let ipv6 = remote.is_ipv6() && remote.ip().to_canonical().is_ipv6();
            match tracker.announce(&request, remote, key, Instant::now()) {
                Ok(resp) => Some(wire::udp_announce_response(transaction_id, &resp, ipv6)),
                Err(refusal) => {
                    tracing::info!(%remote, info_hash = %request.info_hash, %refusal, "UDP announce refused");
                    Some(wire::udp_error_response(
                        transaction_id,
                        &refusal.to_string(),
                    ))
                }
            }
        }
        UdpRequest::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } => {
            if !ids.valid(&remote, connection_id) {
                return Some(wire::udp_error_response(
                    transaction_id,
                    "connection id expired",
                ));
            }
            // UDP scrape has no room for a key, so a private tracker answers zeros for
            // torrents it will not disclose, keeping the answer's positions aligned.
            let visible = tracker
                .scrape(&info_hashes, None, Instant::now())
                .unwrap_or_default();
            let stats: Vec<_> = info_hashes
                .iter()
                .map(|h| {
                    visible
                        .iter()
                        .find(|(v, _)| v == h)
                        .map(|(_, s)| *s)
                        .unwrap_or_default()
                })
                .collect();
            Some(wire::udp_scrape_response(transaction_id, &stats))
        }
    }
}

fn udp_loop(
    socket: &std::net::UdpSocket,
    tracker: &Tracker,
    ids: &ConnectionIds,
    stop: &AtomicBool,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, remote)) => {
                if let Some(reply) = handle_udp(tracker, ids, &buf[..n], remote)
                    && let Err(e) = socket.send_to(&reply, remote)
                {
                    tracing::debug!(%remote, error = %e, "UDP tracker send failed");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // ICMP errors from earlier sends surface here on some systems.
            Err(e) => tracing::debug!(error = %e, "UDP tracker receive error"),
        }
    }
}

/// A running tracker; its sockets close when this is dropped.
pub struct RunningTracker {
    pub tracker: Arc<Tracker>,
    pub http_addr: Option<SocketAddr>,
    pub udp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// Tells the UDP threads to return (they wake at least every 200 ms).
    stop: Arc<AtomicBool>,
}

impl RunningTracker {
    /// The announce URL for HTTP, with `key` in the path when given.
    pub fn http_announce_url(&self, key: Option<&str>) -> Option<String> {
        self.http_addr.map(|a| match key {
            Some(k) => format!("http://{a}/{k}/announce"),
            None => format!("http://{a}/announce"),
        })
    }

    pub fn udp_announce_url(&self, key: Option<&str>) -> Option<String> {
        self.udp_addr.map(|a| match key {
            Some(k) => format!("udp://{a}/{k}/announce"),
            None => format!("udp://{a}/announce"),
        })
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds and serves a tracker on the given addresses (port 0 picks a free port).
pub async fn start(
    config: TrackerConfig,
    http: Option<SocketAddr>,
    udp: Option<SocketAddr>,
) -> std::io::Result<RunningTracker> {
    let tracker = Arc::new(Tracker::new(config));
    let mut tasks = Vec::new();
    let mut http_addr = None;
    let mut udp_addr = None;
    if let Some(addr) = http {
        let listener = TcpListener::bind(addr).await?;
        http_addr = Some(listener.local_addr()?);
        let app = http_router(tracker.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP tracker stopped");
            }
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(addr) = udp {
        // Plain OS threads blocking on one socket: per datagram this costs two syscalls and
        // nothing else, where an async loop adds a readiness round trip per packet.
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        udp_addr = Some(socket.local_addr()?);
        let ids = Arc::new(ConnectionIds::new());
        let loops = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..loops {
            let (socket, ids, tracker, stop) = (
                socket.try_clone()?,
                ids.clone(),
                tracker.clone(),
                stop.clone(),
            );
            std::thread::Builder::new()
                .name(format!("tracker-udp-{i}"))
                .spawn(move || udp_loop(&socket, &tracker, &ids, &stop))?;
        }
    }
    Ok(RunningTracker {
        tracker,
        http_addr,
        udp_addr,
        tasks,
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_bep41_paths() {
        assert_eq!(key_from_url_data("/abc/announce"), Some("abc"));
        assert_eq!(key_from_url_data("/abc/announce?x=1"), Some("abc"));
        assert_eq!(key_from_url_data("/announce"), None);
        assert_eq!(key_from_url_data("//announce"), None);
    }

    #[test]
    fn connection_ids_are_bound_to_the_address() {
        let ids = ConnectionIds::new();
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let id = ids.issue(&a);
        assert!(ids.valid(&a, id));
        assert!(!ids.valid(&b, id));
    }
}
