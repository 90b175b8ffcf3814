//! The HTTP face of a spheres node: the web interface's files ([`ui_router`]) and the
//! streaming of torrents' files with full Range support, while they download. (The node's
//! JSON API is in the `spheres` binary, which knows the node.)
//!
//! `GET|HEAD /torrents/{info_hash}/files/{index}`: 200 for the whole file, 206 for one range
//! (`bytes=a-b`, `a-`, `-n`), 416 for a range outside the file. A read waits for pieces not yet
//! downloaded, and the engine fetches the pieces ahead of the read position first. A read that
//! gets no data for [`IDLE_TIMEOUT`] ends the response, so a stalled swarm never pins a stream
//! slot forever.
//!
//! This crate is the only one that serves HTTP to browsers; it knows the engine only through
//! `spheres_torrent::Engine`.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod markup;
pub mod range;
pub mod zip;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use spheres_metainfo::InfoHash;
use spheres_torrent::{Engine, EngineError};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use range::RangeAnswer;

/// A read that brings nothing for this long ends the response.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CHUNK: usize = 64 * 1024;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// A file of `ui/` served under `/ui/`, at the same path: relative imports between the
/// modules are the same on disk and in the browser.
macro_rules! under_ui {
    ($file:literal, $kind:expr) => {
        (
            concat!("/ui/", $file),
            include_str!(concat!("../ui/", $file)),
            $kind,
        )
    };
}

/// The web interface's files, compiled into the binary (no build step, no CDN): each one's
/// path, contents and type. The page (`/`) loads `/app.js`, a native module that imports the
/// others from `/ui/` (the API, the event stream, the router, the strings, one module per
/// view), and the strings of one language from `/ui/i18n/`. A path not here is not found.
/// (`tests/ui_files.rs` checks that every file of `ui/` is here and every import is served.)
pub const UI_FILES: &[(&str, &str, &str)] = &[
    ("/", include_str!("../ui/index.html"), HTML),
    ("/app.css", include_str!("../ui/app.css"), CSS),
    ("/app.js", include_str!("../ui/app.js"), JS),
    under_ui!("api.js", JS),
    under_ui!("call.js", JS),
    under_ui!("groupcall.js", JS),
    under_ui!("connection.js", JS),
    under_ui!("dom.js", JS),
    under_ui!("events.js", JS),
    under_ui!("i18n.js", JS),
    under_ui!("restart.js", JS),
    under_ui!("router.js", JS),
    under_ui!("unread.js", JS),
    under_ui!("util.js", JS),
    under_ui!("views/album.js", JS),
    under_ui!("views/chat.js", JS),
    under_ui!("views/chats.js", JS),
    under_ui!("views/feed.js", JS),
    under_ui!("views/home.js", JS),
    under_ui!("views/join.js", JS),
    under_ui!("views/login.js", JS),
    under_ui!("views/settings.js", JS),
    under_ui!("views/signin.js", JS),
    under_ui!("views/sphere.js", JS),
    under_ui!("views/viewer.js", JS),
    under_ui!("link/bencode.js", JS),
    under_ui!("link/sw.js", JS),
    under_ui!("link/swarm.js", JS),
    under_ui!("link/viewer.js", JS),
    under_ui!("link/wire.js", JS),
    under_ui!("i18n/en.json", JSON),
    under_ui!("i18n/fr.json", JSON),
];

/// The service worker of links' pages, served by the node at `/l/sw.js` (its scope, `/l/`,
/// is the folder it is served from).
pub const LINK_WORKER: &str = include_str!("../ui/link/sw.js");

/// The web interface: one route per file of [`UI_FILES`], each answered with its type and
/// `no-cache` (the browser asks again, so a new binary's page is never mixed with old modules).
pub fn ui_router() -> Router {
    fn asset(body: &'static str, kind: &'static str) -> Response {
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response()
    }
    UI_FILES
        .iter()
        .fold(Router::new(), |router, &(path, body, kind)| {
            router.route(path, get(move || async move { asset(body, kind) }))
        })
}

/// The page's own rules: its script and style from this origin only (no inline script, so
/// a name or a message that slips into the page as markup cannot run), never in a frame.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What a member's file may do when opened on its own: nothing. A sandboxed document has a
/// unique origin, so even an HTML or SVG file that a browser renders cannot script the node's.
pub const FILE_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

/// Adds the headers every answer of the node carries: no sniffing of types, no framing, no
/// referrer, and [`PAGE_POLICY`] unless the answer has a policy of its own (streams).
pub fn with_security_headers(router: Router) -> Router {
    async fn add(mut r: Response) -> Response {
        let h = r.headers_mut();
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            );
        }
        r
    }
    router.layer(axum::middleware::map_response(add))
}

/// Whether a browser may show a file of this type inline: audio, video and pictures, but not
/// SVG (a document that can hold script). Everything else is a download.
fn inline_type(mime: &mime_guess::Mime) -> bool {
    matches!(mime.type_().as_str(), "audio" | "video" | "image") && mime.subtype() != "svg"
}

/// How a browser may show a file, by its name: played, shown, or only downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Video,
    Audio,
    Image,
    Download,
}

/// How a file named `name` is shown: inline only what [`inline_type`] allows.
pub fn shown_as(name: &str) -> Shown {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    if !inline_type(&mime) {
        return Shown::Download;
    }
    match mime.type_().as_str() {
        "video" => Shown::Video,
        "audio" => Shown::Audio,
        _ => Shown::Image,
    }
}

/// Routes for streaming the files of the engine's torrents.
pub fn stream_router(engine: Engine) -> Router {
    Router::new()
        .route("/torrents/{hash}/files/{index}", get(stream_file))
        .with_state(engine)
}

/// How long a client may take to send a request's headers, and how many connections are
/// served at once: a client that opens connections and trickles bytes ("slowloris") ties up
/// nothing for long, and never more than the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_time: Duration,
    pub connections: usize,
    /// Connections from one address at once: one client cannot take every slot.
    pub per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_time: Duration::from_secs(20),
            connections: 512,
            per_address: 64,
        }
    }
}

/// Serves `router` on `addr` until the task is dropped; returns the bound address.
pub async fn serve(
    router: Router,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(router, addr, Limits::default()).await
}

/// The address per-address bounds count a client as: an IPv4 address as itself (and one
/// written as IPv6, `::ffff:a.b.c.d`, as that IPv4 address); an IPv6 address as its /64, the
/// network a home or a phone is given whole (any of its 2^64 addresses is theirs to pick, so
/// counting each apart would bound nothing).
pub fn counted_as(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => ip,
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// One connection counted against its address; given back when dropped.
struct PerAddress {
    map: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn take(
        map: &std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
        limit: usize,
    ) -> Option<PerAddress> {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(PerAddress {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for PerAddress {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// [`serve`] with other [`Limits`]. HTTP/1.1; handlers may ask for the peer's address
/// (`ConnectInfo<SocketAddr>`).
pub async fn serve_with(
    router: Router,
    addr: SocketAddr,
    limits: Limits,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_over(router, addr, limits, false, |tcp| async move { Some(tcp) }).await
}

/// In the extensions of a request that came over TLS ([`serve_over`] with `over_tls`).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// As [`serve_with`], each connection going first through `handshake` (TLS, for HTTPS),
/// within the time a client has to send its headers: a connection it gives nothing for is
/// closed. `over_tls`: requests carry [`OverTls`], and answers tell browsers to come back
/// over HTTPS only (`Strict-Transport-Security`).
pub async fn serve_over<H, F, Io>(
    router: Router,
    addr: SocketAddr,
    limits: Limits,
    over_tls: bool,
    handshake: H,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    H: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Option<Io>> + Send + 'static,
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.connections));
    let by_address: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    > = std::sync::Arc::default();
    let task = tokio::spawn(async move {
        loop {
            // A connection waits for a free slot before it is even accepted.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, most likely: give the others time to finish.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(held) =
                PerAddress::take(&by_address, counted_as(peer.ip()), limits.per_address)
            else {
                tracing::debug!(%peer, "too many connections from one address; closing one");
                continue;
            };
            let router = router.clone();
            let shaking = handshake(stream);
            tokio::spawn(async move {
                let _slot = slot;
                let _held = held;
                let Ok(Some(stream)) = tokio::time::timeout(limits.header_time, shaking).await
                else {
                    tracing::debug!(%peer, "no handshake; connection closed");
                    return;
                };
                let service = hyper::service::service_fn(
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        if over_tls {
                            req.extensions_mut().insert(OverTls);
                        }
                        let answer = tower::ServiceExt::oneshot(router.clone(), req);
                        async move {
                            let mut r = answer.await?;
                            if over_tls {
                                r.headers_mut().insert(
                                    header::STRICT_TRANSPORT_SECURITY,
                                    header::HeaderValue::from_static("max-age=31536000"),
                                );
                            }
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_time);
                let io = hyper_util::rt::TokioIo::new(stream);
                // Upgrades: WebTorrent's signalling runs over WebSockets (links).
                if let Err(e) = http.serve_connection(io, service).with_upgrades().await {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn error_response(e: EngineError) -> Response {
    let status = match e {
        EngineError::NotFound(_) | EngineError::NoSuchFile(..) => StatusCode::NOT_FOUND,
        EngineError::Busy(_) | EngineError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = plain(status, format!("{e}\n"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    r
}

async fn stream_file(
    State(engine): State<Engine>,
    Path((hash, index)): Path<(String, usize)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Ok(hash) = hash.parse::<InfoHash>() else {
        return plain(StatusCode::NOT_FOUND, "not an info hash\n");
    };
    stream(&engine, hash, index, &method, &headers, None).await
}

/// Whether a stream may go on sending (checked before each chunk); it ends when this says no.
pub type KeepGoing = Box<dyn Fn() -> bool + Send + Sync>;

/// File `index` of the torrent `hash`, as much of it as the request's range asks for, read
/// from the engine as it arrives (a file still downloading plays: the engine fetches the
/// pieces the reader needs first). Files a browser could run are downloads, and whatever it
/// shows runs sandboxed ([`FILE_POLICY`]). `keep_going`, when given, is asked before each
/// chunk: a stream it stops ends there (a link revoked while someone downloads through it).
pub async fn stream(
    engine: &Engine,
    hash: InfoHash,
    index: usize,
    method: &Method,
    headers: &HeaderMap,
    keep_going: Option<KeepGoing>,
) -> Response {
    let Some(meta) = engine.metainfo(&hash) else {
        return error_response(EngineError::NotFound(hash));
    };
    let Some(file) = meta.files.get(index).filter(|f| !f.padding) else {
        return error_response(EngineError::NoSuchFile(hash, index));
    };
    let len = file.length;
    let name = file.path.last().cloned().unwrap_or_default();
    let mime = mime_guess::from_path(&name).first_or_octet_stream();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let answer = range::answer(range, len);

    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline_type(&mime) {
            "inline"
        } else {
            "attachment"
        },
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, mime.as_ref())
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, FILE_POLICY);
    let (status, start, count) = match answer {
        RangeAnswer::Full => (StatusCode::OK, 0, len),
        RangeAnswer::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::ACCEPT_RANGES, "bytes")
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::RANGE_NOT_SATISFIABLE.into_response());
        }
    };
    builder = builder.status(status).header(header::CONTENT_LENGTH, count);
    if *method == Method::HEAD || count == 0 {
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let mut reader = match engine.open_file(&hash, index).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    if let Err(e) = reader.seek(std::io::SeekFrom::Start(start)).await {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("seek failed: {e}\n"),
        );
    }
    let body = fed(move |feed| async move {
        let mut left = count;
        while left > 0 {
            if keep_going.as_ref().is_some_and(|k| !k()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "no longer open",
                ));
            }
            let mut buf = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
            let n = read_some(&mut reader, &mut buf).await?;
            buf.truncate(n);
            left -= n as u64;
            feed.send(buf).await?;
        }
        Ok(())
    });
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The files of torrent `hash` as one zip archive under the folder `folder` (stored, with its
/// exact length announced: see [`zip`]), each read from the engine as it arrives, in the
/// torrent's order. `keep_going` is asked before each chunk, as in [`stream`]. A file that
/// cannot be read ends the response early: the browser, short of the announced length, calls
/// the download failed rather than keep a truncated archive.
pub async fn zip_response(
    engine: &Engine,
    hash: InfoHash,
    folder: &str,
    method: &Method,
    keep_going: Option<KeepGoing>,
) -> Response {
    let Some(meta) = engine.metainfo(&hash) else {
        return error_response(EngineError::NotFound(hash));
    };
    let files: Vec<(usize, zip::Entry)> = meta
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.padding)
        .map(|(i, f)| {
            (
                i,
                zip::Entry {
                    path: f.path.clone(),
                    size: f.length,
                },
            )
        })
        .collect();
    let entries: Vec<zip::Entry> = files.iter().map(|(_, e)| e.clone()).collect();
    let modified = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let layout = match zip::Layout::new(folder, &entries, modified) {
        Ok(l) => l,
        Err(e) => return plain(StatusCode::CONFLICT, format!("{e}\n")),
    };
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(
            &format!("{folder}.zip"),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::CONTENT_LENGTH, layout.len())
        .header(header::ACCEPT_RANGES, "none")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if *method == Method::HEAD {
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let engine = engine.clone();
    let body = fed(move |feed| async move {
        write_zip(&engine, hash, &layout, &files, keep_going, &feed).await
    });
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `len` zero bytes, as much of them as the request's range asks: a padding file (BEP 47),
/// which web seed clients ask for like any file.
pub fn zeros(len: u64, method: &Method, headers: &HeaderMap) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, count, content_range) = match range::answer(range, len) {
        RangeAnswer::Full => (StatusCode::OK, len, None),
        RangeAnswer::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            end - start + 1,
            Some(format!("bytes {start}-{end}/{len}")),
        ),
        RangeAnswer::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
    };
    let mut b = Response::builder()
        .status(status)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, count);
    if let Some(cr) = content_range {
        b = b.header(header::CONTENT_RANGE, cr);
    }
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        // The same 64 KiB of zeros again and again: a long padding file costs no memory.
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let chunks = futures::stream::unfold(count, |left| async move {
            (left > 0).then(|| {
                let n = left.min(ZEROS.len() as u64);
                // n <= ZEROS.len(), a usize.
                let chunk = Bytes::from_static(&ZEROS[..n as usize]);
                (Ok::<_, std::io::Error>(chunk), left - n)
            })
        });
        Body::from_stream(chunks)
    };
    b.body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Where a response's body is written from: a task of its own sends it chunk by chunk.
pub struct Feed(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl Feed {
    /// Sends a chunk; an error when the reader left, or took nothing for [`IDLE_TIMEOUT`]
    /// (a client that stops reading frees what its response holds).
    pub async fn send(&self, chunk: Vec<u8>) -> std::io::Result<()> {
        match tokio::time::timeout(IDLE_TIMEOUT, self.0.send(Ok(Bytes::from(chunk)))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the reader left",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the reader stopped reading",
            )),
        }
    }
}

/// A body written by `write` in a task of its own. When `write` fails the body ends there
/// (short of its announced length, so the client knows it is not whole), and whatever
/// `write` held (a stream slot) is let go at once, whether the client reads or not.
fn fed<F, W>(write: W) -> Body
where
    W: FnOnce(Feed) -> F,
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    let failed = tx.clone();
    let work = write(Feed(tx));
    tokio::spawn(async move {
        if let Err(e) = work.await {
            tracing::debug!("response cut short: {e}");
            let _ = failed.try_send(Err(e));
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// Reads what is there of `reader` into `buf` (at least a byte), waiting at most
/// [`IDLE_TIMEOUT`] for peers to bring it.
async fn read_some(
    reader: &mut spheres_torrent::FileReader,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match tokio::time::timeout(IDLE_TIMEOUT, reader.read(buf)).await {
        Ok(Ok(0)) => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "file ended early",
        )),
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no data from peers",
        )),
    }
}

/// Sends the archive `layout` of `files` (index in the torrent, entry) down `tx`.
async fn write_zip(
    engine: &Engine,
    hash: InfoHash,
    layout: &zip::Layout,
    files: &[(usize, zip::Entry)],
    keep_going: Option<KeepGoing>,
    feed: &Feed,
) -> std::io::Result<()> {
    let mut crcs = Vec::with_capacity(files.len());
    for (i, (index, _)) in files.iter().enumerate() {
        feed.send(layout.local_header(i)).await?;
        let mut left = layout.size(i);
        let mut crc = crc32fast::Hasher::new();
        if left > 0 {
            let mut reader = engine
                .open_file(&hash, *index)
                .await
                .map_err(std::io::Error::other)?;
            while left > 0 {
                if keep_going.as_ref().is_some_and(|k| !k()) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "no longer open",
                    ));
                }
                let mut buf = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
                let n = read_some(&mut reader, &mut buf).await?;
                buf.truncate(n);
                crc.update(&buf);
                left -= n as u64;
                feed.send(buf).await?;
            }
        }
        let crc = crc.finalize();
        crcs.push(crc);
        feed.send(layout.descriptor(i, crc)).await?;
    }
    feed.send(layout.central(&crcs)).await
}

#[cfg(test)]
mod fed_tests {
    use super::*;

    /// Attack: a client asks for a file through a link and never reads. What the response
    /// holds (a stream slot) is let go after IDLE_TIMEOUT, read or not. Virtual time.
    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_reading_frees_what_its_response_held() {
        let held = std::sync::Arc::new(());
        let slot = held.clone();
        let body = fed(move |feed| async move {
            let _slot = slot;
            loop {
                feed.send(vec![0; 1024]).await?;
            }
        });
        tokio::time::sleep(IDLE_TIMEOUT / 2).await;
        assert_eq!(std::sync::Arc::strong_count(&held), 2, "let go too soon");
        tokio::time::sleep(IDLE_TIMEOUT).await;
        assert_eq!(std::sync::Arc::strong_count(&held), 1, "still held");
        drop(body);
    }

    /// A padding file of a large piece, asked for whole or in part: exactly the bytes the
    /// range names, all zeros, however long (no cap that would cut the answer short).
    #[tokio::test]
    async fn padding_answers_the_whole_range_it_is_asked() {
        let len = 100 * 1024 * 1024 + 7;
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, "bytes=5-".parse().unwrap());
        let r = zeros(len, &Method::GET, &headers);
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            r.headers()[header::CONTENT_LENGTH],
            (len - 5).to_string().as_str()
        );
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.len() as u64, len - 5);
        assert!(body.iter().all(|&b| b == 0));
        headers.insert(header::RANGE, "bytes=200000000-".parse().unwrap());
        let r = zeros(len, &Method::GET, &headers);
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }
}

#[cfg(test)]
mod counted_as_tests {
    use super::counted_as;
    use std::net::IpAddr;

    #[test]
    fn a_client_counts_as_its_ipv4_address_or_its_ipv6_network() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(counted_as(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(counted_as(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(counted_as(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            counted_as(ip("2001:db8:1:2:aaaa::1")),
            counted_as(ip("2001:db8:1:2:bbbb:cccc:dddd:eeee"))
        );
        assert_ne!(
            counted_as(ip("2001:db8:1:2::1")),
            counted_as(ip("2001:db8:1:3::1"))
        );
        assert_eq!(counted_as(ip("::1")), ip("::"));
    }
}
