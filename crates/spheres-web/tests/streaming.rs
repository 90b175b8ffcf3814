//! HTTP streaming against real engines on loopback: ranges while downloading, many concurrent
//! readers, and stalled streams that must not freeze the rest of the session.

use std::net::SocketAddr;
use std::path::Path;

use spheres_metainfo::{CreateOptions, InfoHash, create_torrent};
use spheres_testkit::{WAIT, random_bytes, wait_for};
use spheres_torrent::{AddOptions, Engine, EngineConfig, Source, TorrentState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn state(engine: &Engine, hash: &InfoHash) -> TorrentState {
    engine
        .status(hash)
        .map(|s| s.state)
        .unwrap_or(TorrentState::Error)
}

/// A file on disk, its torrent, and an engine seeding it.
struct Seeder {
    engine: Engine,
    torrent: Vec<u8>,
    hash: InfoHash,
    data: Vec<u8>,
}

async fn seeder(dir: &Path, name: &str, len: usize, seed: u64) -> Seeder {
    let data = random_bytes(len, seed);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    let (torrent, meta) = create_torrent(&path, &CreateOptions::default(), &mut |_| {}).unwrap();
    let engine = Engine::start(EngineConfig::new(dir.join("seeder-downloads")))
        .await
        .unwrap();
    let hash = engine
        .add(Source::Torrent(torrent.clone()), AddOptions::seed(&path))
        .await
        .unwrap();
    assert_eq!(hash, meta.info_hash);
    wait_for("the seeder to verify its data", || {
        state(&engine, &hash) == TorrentState::Seeding
    })
    .await;
    Seeder {
        engine,
        torrent,
        hash,
        data,
    }
}

async fn leecher(dir: &Path, limit: Option<u32>) -> (Engine, SocketAddr) {
    let mut config = EngineConfig::new(dir);
    config.download_limit_bps = limit.and_then(std::num::NonZeroU32::new);
    let engine = Engine::start(config).await.unwrap();
    let (addr, _task) = spheres_web::serve(
        spheres_web::stream_router(engine.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    std::mem::forget(_task); // lives as long as the test's runtime
    (engine, addr)
}

/// Adds `torrent` to `engine` for download into `dir`, from `peer`.
async fn fetch(engine: &Engine, torrent: &[u8], dir: &Path, peer: SocketAddr) -> InfoHash {
    let mut opts = AddOptions::download(dir);
    opts.peers = vec![peer];
    engine
        .add(Source::Torrent(torrent.to_vec()), opts)
        .await
        .unwrap()
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough to see exactly what the
/// server sends.
async fn request(addr: SocketAddr, method: &str, path: &str, range: Option<&str>) -> HttpResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(r) = range {
        req.push_str(&format!("Range: {r}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ranges_are_served_exactly_while_the_file_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeder(dir.path(), "clip.mp4", 24 << 20, 11).await;
    // 4 MiB/s: the whole file takes about 6 s, so the reads below happen mid-download.
    let (b, http) = leecher(&dir.path().join("b"), Some(4 << 20)).await;
    let hash = fetch(
        &b,
        &s.torrent,
        &dir.path().join("b"),
        s.engine.listen_addr(),
    )
    .await;
    assert_eq!(hash, s.hash);
    let url = format!("/torrents/{hash}/files/0");
    let len = s.data.len() as u64;

    // The end of the file first (a player probing the moov atom): it arrives before the rest.
    let tail = request(http, "GET", &url, Some("bytes=-1048576")).await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &s.data[s.data.len() - 1048576..]);
    assert_eq!(
        tail.header("content-range"),
        Some(format!("bytes {}-{}/{len}", len - 1048576, len - 1).as_str())
    );
    assert_eq!(tail.header("content-type"), Some("video/mp4"));
    let st = b.status(&hash).unwrap();
    assert!(
        st.have_bytes < st.total_bytes,
        "the download should still be running"
    );

    let mid = request(http, "GET", &url, Some("bytes=5000000-5999999")).await;
    assert_eq!(mid.status, 206);
    assert_eq!(mid.body, &s.data[5_000_000..6_000_000]);
    let open = request(http, "GET", &url, Some("bytes=23000000-")).await;
    assert_eq!(open.body, &s.data[23_000_000..]);

    let head = request(http, "HEAD", &url, None).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert!(head.body.is_empty());

    let bad = request(http, "GET", &url, Some(&format!("bytes={len}-"))).await;
    assert_eq!(bad.status, 416);
    assert_eq!(
        bad.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    let full = request(http, "GET", &url, None).await;
    assert_eq!(full.status, 200);
    assert!(full.body == s.data, "full body differs");

    assert_eq!(
        request(http, "GET", &format!("/torrents/{hash}/files/7"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        request(http, "GET", "/torrents/nothex/files/0", None)
            .await
            .status,
        404
    );
    wait_for("streams to close", || b.open_streams() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_readers_all_get_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeder(dir.path(), "film.mkv", 32 << 20, 12).await;
    let (b, http) = leecher(&dir.path().join("b"), Some(8 << 20)).await;
    let hash = fetch(
        &b,
        &s.torrent,
        &dir.path().join("b"),
        s.engine.listen_addr(),
    )
    .await;
    let url = format!("/torrents/{hash}/files/0");
    let readers: Vec<_> = (0..32u64)
        .map(|i| {
            let url = url.clone();
            let start = i * (1 << 20) + 12345;
            tokio::spawn(async move {
                let r = request(
                    http,
                    "GET",
                    &url,
                    Some(&format!("bytes={start}-{}", start + 300_000 - 1)),
                )
                .await;
                (start as usize, r)
            })
        })
        .collect();
    for r in readers {
        let (start, resp) = r.await.unwrap();
        assert_eq!(resp.status, 206);
        assert!(
            resp.body == s.data[start..start + 300_000],
            "reader at {start} got wrong bytes"
        );
    }
    // And the download as a whole still completes.
    wait_for("the download", || state(&b, &hash) == TorrentState::Seeding).await;
}

/// librqbit holds a blocking permit per open stream; with its default of 8 permits, 8 stalled
/// streams freeze every torrent. Here 40 streams wait on a torrent nobody seeds, and the same
/// node must still serve another torrent to a third peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_streams_do_not_freeze_seeding() {
    let dir = tempfile::tempdir().unwrap();
    let orphan = seeder(&dir.path().join("o"), "orphan.mp4", 4 << 20, 13).await;
    let s = seeder(&dir.path().join("s"), "photos.bin", 16 << 20, 14).await;
    let (b, http) = leecher(&dir.path().join("b"), None).await;

    // B gets `photos` completely, then is the only seeder left for it.
    let photos = fetch(
        &b,
        &s.torrent,
        &dir.path().join("b"),
        s.engine.listen_addr(),
    )
    .await;
    wait_for("B to complete photos", || {
        state(&b, &photos) == TorrentState::Seeding
    })
    .await;
    s.engine.shutdown().await;

    // B also has `orphan`, which nobody seeds: every read of it stalls.
    let orphan_hash = b
        .add(
            Source::Torrent(orphan.torrent.clone()),
            AddOptions::download(dir.path().join("b")),
        )
        .await
        .unwrap();
    orphan.engine.shutdown().await;
    let mut stalled = Vec::new();
    for i in 0..40u64 {
        let url = format!("/torrents/{orphan_hash}/files/0");
        stalled.push(tokio::spawn(async move {
            request(http, "GET", &url, Some(&format!("bytes={}-", i * 65536))).await
        }));
    }
    wait_for("40 stalled streams", || b.open_streams() == 40).await;

    // C downloads photos from B while those 40 streams wait.
    let c = Engine::start(EngineConfig::new(dir.path().join("c")))
        .await
        .unwrap();
    let h = fetch(&c, &s.torrent, &dir.path().join("c"), b.listen_addr()).await;
    wait_for("C to download photos from B", || {
        state(&c, &h) == TorrentState::Seeding
    })
    .await;
    assert_eq!(
        std::fs::read(dir.path().join("c/photos.bin")).unwrap(),
        s.data
    );
    assert_eq!(b.open_streams(), 40);

    // Clients that go away free their stream slots.
    for t in &stalled {
        t.abort();
    }
    wait_for("stream slots to be freed", || b.open_streams() == 0).await;
}

/// Attack: a member shares `evil.html` and `evil.svg` holding script, and someone opens them
/// from the node (a link in the gallery, or a page elsewhere that sends them there). Nothing
/// a member shares may run script on the node's origin: such files are downloads, every file
/// answer is sandboxed and never sniffed, and pictures and videos still show inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_members_never_run_script_on_the_nodes_origin() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("share");
    std::fs::create_dir_all(&folder).unwrap();
    let script =
        b"<script>fetch('/api/status').then(r=>r.text()).then(t=>document.title=t)</script>";
    std::fs::write(folder.join("evil.html"), script).unwrap();
    std::fs::write(
        folder.join("evil.svg"),
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    )
    .unwrap();
    std::fs::write(folder.join("clip.mp4"), random_bytes(5000, 3)).unwrap();
    std::fs::write(folder.join("photo.jpg"), random_bytes(5000, 4)).unwrap();
    let (torrent, meta) = create_torrent(&folder, &CreateOptions::default(), &mut |_| {}).unwrap();
    let engine = Engine::start(EngineConfig::new(dir.path().join("downloads")))
        .await
        .unwrap();
    let hash = engine
        .add(Source::Torrent(torrent), AddOptions::seed(&folder))
        .await
        .unwrap();
    wait_for("the data verified", || {
        state(&engine, &hash) == TorrentState::Seeding
    })
    .await;
    let router = spheres_web::with_security_headers(
        spheres_web::ui_router().merge(spheres_web::stream_router(engine.clone())),
    );
    let (addr, _task) = spheres_web::serve(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for (index, f) in meta.files.iter().enumerate() {
        let name = f.path.last().unwrap().clone();
        let r = request(
            addr,
            "GET",
            &format!("/torrents/{hash}/files/{index}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("sandbox"), "{name}: {csp}");
        let disposition = r.header("content-disposition").unwrap_or_default();
        let inline = name.ends_with(".mp4") || name.ends_with(".jpg");
        assert_eq!(
            disposition.starts_with("inline"),
            inline,
            "{name}: {disposition}"
        );
        assert!(
            inline || disposition.starts_with("attachment"),
            "{name}: {disposition}"
        );
    }
    // The page itself: no inline script, no frames, no referrer.
    let page = request(addr, "GET", "/", None).await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
}

/// Attack: a client opens connections and sends headers a byte at a time, never finishing
/// ("slowloris"). Each is closed once the header time is up, and connections past the
/// limit wait, so the node keeps answering everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_connections_are_bounded() {
    let limits = spheres_web::Limits {
        header_time: std::time::Duration::from_millis(500),
        connections: 8,
        per_address: 4,
    };
    let (addr, _task) = spheres_web::serve_with(
        spheres_web::ui_router(),
        "127.0.0.1:0".parse().unwrap(),
        limits,
    )
    .await
    .unwrap();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    // A fifth from the same address is closed at once, before any answer.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut got = Vec::new();
    let ended = tokio::time::timeout(WAIT, fifth.read_to_end(&mut got)).await;
    assert!(
        ended.is_ok() && !got.starts_with(b"HTTP/1.1 200"),
        "a fifth connection from one address was served"
    );
    // Each slow one is closed by the server, in bounded time (with a 408 at most).
    for s in &mut slow {
        let mut got = Vec::new();
        // 20 times the header time: far more than it needs, far less than hyper's default
        // 30 s (which would mean our limit is not applied).
        let bound = std::time::Duration::from_secs(10);
        let ended = tokio::time::timeout(bound, s.read_to_end(&mut got)).await;
        assert!(
            ended.is_ok(),
            "a slow client kept its connection past {bound:?}"
        );
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    // And the server still answers.
    let page = request(addr, "GET", "/", None).await;
    assert_eq!(page.status, 200);
}
