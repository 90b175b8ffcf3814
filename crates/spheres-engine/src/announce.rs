//! Announces a torrent to its trackers and dials the peers they give: HTTP (BEP 3, compact
//! BEP 23, IPv6 BEP 7) and UDP (BEP 15, with BEP 41's URL data so private keys in the path
//! work), tier by tier (BEP 12: within a tier, the first tracker that answers moves to the
//! front). `started` first, `completed` when the download completes, `stopped` when the
//! torrent is removed; in between, as often as the tracker asks (5 s to 1 h).
//!
//! What a tracker sends is read by `spheres-tracker`'s pure, fuzzed parsers; an answer is
//! read up to 1 MiB and 500 peers.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use spheres_tracker::wire::{
    AnnounceRequest, Answer, AnswerError, Event, http_announce_query, parse_http_answer,
    parse_udp_announce_answer, parse_udp_connect_answer, udp_announce_request, udp_connect_request,
};
use tokio::net::UdpSocket;

use crate::torrent::Torrent;
use crate::{EngineEvent, Inner};

/// The most of an HTTP tracker's answer that is read.
const MAX_ANSWER: usize = 1024 * 1024;
/// How long one tracker has to answer (UDP: per try; two tries).
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum AnnounceError {
    #[error("{0}")]
    Answer(#[from] AnswerError),
    #[error("{0}")]
    Http(String),
    #[error("no answer")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a tracker URL we cannot use: {0}")]
    BadUrl(String),
}

/// An error and what caused it, on one line (reqwest's own says only which request failed;
/// the cause says why, e.g. a certificate nobody we trust signed).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Announces once to `url`.
pub(crate) async fn announce_one(
    http: &reqwest::Client,
    url: &str,
    req: &AnnounceRequest,
) -> Result<Answer, AnnounceError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut resp = http
            .get(format!("{url}{sep}{}", http_announce_query(req)))
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| AnnounceError::Http(with_causes(&e)))?;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| AnnounceError::Http(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(AnnounceError::Http("an answer of more than 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(parse_http_answer(&body)?);
    }
    let rest = url
        .strip_prefix("udp://")
        .ok_or_else(|| AnnounceError::BadUrl(url.to_owned()))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = tokio::net::lookup_host(host)
        .await?
        .next()
        .ok_or_else(|| AnnounceError::BadUrl(url.to_owned()))?;
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0"
            .parse()
            .map_err(|_| AnnounceError::BadUrl(url.to_owned()))?
    } else {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| AnnounceError::BadUrl(url.to_owned()))?
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(addr).await?;
    let tid: u32 = rand::random();
    let connection = udp_exchange(&socket, &udp_connect_request(tid), |p| {
        parse_udp_connect_answer(p, tid)
    })
    .await?;
    let tid: u32 = rand::random();
    let packet = udp_announce_request(connection, tid, req, (!path.is_empty()).then_some(path));
    udp_exchange(&socket, &packet, |p| {
        parse_udp_announce_answer(p, tid, addr.is_ipv6())
    })
    .await
}

/// Sends `packet` and reads answers until one parses (two tries of [`TIMEOUT`]); a stray
/// datagram (another transaction) is skipped.
async fn udp_exchange<T>(
    socket: &UdpSocket,
    packet: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, AnswerError>,
) -> Result<T, AnnounceError> {
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..2 {
        socket.send(packet).await?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let Ok(n) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await else {
                break;
            };
            match parse(&buf[..n?]) {
                Ok(t) => return Ok(t),
                Err(AnswerError::Malformed("another transaction")) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(AnnounceError::Timeout)
}

/// Announces a torrent for as long as it is in the engine.
pub(crate) async fn announce_loop(t: Arc<Torrent>, engine: Weak<Inner>) {
    let Some(http) = engine.upgrade().map(|e| e.http.clone()) else {
        return;
    };
    // Announced once the data is checked: `left` is right, and peers find us ready.
    t.checked().await;
    let mut event = Event::Started;
    let mut completed_said = t.lock().picker.is_complete();
    let mut verified = t.verified.subscribe();
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let req = request(&t, &inner, event);
        // No answer at all: try again in half a minute.
        let mut interval = 30;
        // Read each round: trackers may be given later (a sphere's key arrives).
        let tiers = t.trackers();
        let mut answered_any = false;
        for tier in &tiers {
            for url in tier {
                match announce_one(&http, url, &req).await {
                    Ok(answer) => {
                        answered_any = true;
                        let _ = t.events.send(EngineEvent::Announced {
                            info_hash: t.info_hash(),
                            url: url.clone(),
                            peers: answer.peers.len(),
                        });
                        // BEP 12: the tracker that answered goes first in its tier (in the
                        // list as it is now: it may have changed meanwhile).
                        t.promote_tracker(url);
                        interval = answer.interval;
                        t.add_known(
                            answer.peers.into_iter().filter(|a| *a != inner.listen),
                            false,
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(torrent = %t.meta.name, tracker = %url, error = %e, "announce failed");
                        let _ = t.events.send(EngineEvent::TrackerError {
                            info_hash: t.info_hash(),
                            url: url.clone(),
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
        // `started` and `completed` are said until a tracker has heard them.
        if answered_any {
            event = Event::None;
        }
        drop(inner);
        // Until the tracker's interval is up, or the download completes.
        let wait = tokio::time::sleep(Duration::from_secs(interval.clamp(5, 3600).into()));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                // Trackers were given (or changed): announce to them now.
                () = t.announce_now.notified() => break,
                changed = verified.changed() => {
                    if changed.is_err() || t.closed() {
                        return;
                    }
                    if !completed_said && t.lock().picker.is_complete() {
                        completed_said = true;
                        event = Event::Completed;
                        break;
                    }
                }
            }
        }
    }
}

/// Tells the trackers we are gone (best effort: a second per tracker).
pub(crate) async fn stopped(t: &Torrent, inner: &Inner) {
    let http = inner.http.clone();
    let req = request(t, inner, Event::Stopped);
    for url in t.trackers().iter().filter_map(|tier| tier.first()) {
        let _ = tokio::time::timeout(Duration::from_secs(1), announce_one(&http, url, &req)).await;
    }
}

fn request(t: &Torrent, inner: &Inner, event: Event) -> AnnounceRequest {
    let st = t.status();
    // What we lack of the whole torrent, files left aside included (as libtorrent and
    // Transmission count it): a partial download is not a seed.
    let left = t.meta.total_length.saturating_sub(st.have_bytes);
    AnnounceRequest {
        info_hash: t.meta.info_hash,
        peer_id: inner.peer_id,
        port: inner.listen.port(),
        uploaded: st.uploaded,
        downloaded: st.downloaded,
        left,
        event,
        numwant: Some(50),
        compact: true,
        no_peer_id: true,
        ip: None,
    }
}
