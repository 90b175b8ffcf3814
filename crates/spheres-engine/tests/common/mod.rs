#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spheres_engine::{Admission, Engine, EngineConfig, Open};
use spheres_metainfo::{CreateOptions, Metainfo, create_torrent};
use spheres_wire::{Decoder, Handshake, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A folder of four files (one spanning pieces, one smaller than a piece, one with a short
/// last piece, one empty) and its torrent, made by our maker with 32 KiB pieces (several blocks each).
pub struct Share {
    pub dir: tempfile::TempDir,
    /// The shared folder itself (`dir/seed/album`).
    pub data: PathBuf,
    pub torrent: PathBuf,
    pub meta: Arc<Metainfo>,
}

pub fn share(trackers: &[String]) -> Share {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed/album");
    spheres_testkit::write_random(&data.join("a/holiday.mp4"), 700_001, 1);
    spheres_testkit::write_random(&data.join("b.jpg"), 5_000, 2);
    spheres_testkit::write_random(&data.join("c.txt"), 90_000, 3);
    // An empty file: no piece brings it; a completed download has it all the same.
    std::fs::create_dir_all(data.join("d")).unwrap();
    std::fs::write(data.join("d/empty.txt"), b"").unwrap();
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        trackers: if trackers.is_empty() {
            vec![]
        } else {
            vec![trackers.to_vec()]
        },
        ..Default::default()
    };
    made(dir, data, &opts)
}

/// One large file (`len` bytes, random) in its own torrent with pieces of `piece_length`,
/// made by our maker: for readers far apart in a file.
pub fn big_share(len: usize, piece_length: u64) -> Share {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed/big");
    spheres_testkit::write_random(&data.join("film.mp4"), len, 7);
    let opts = CreateOptions {
        piece_length: Some(piece_length),
        ..Default::default()
    };
    made(dir, data, &opts)
}

/// The share of the folder `data` (in `dir`), its torrent made with `opts`.
fn made(dir: tempfile::TempDir, data: PathBuf, opts: &CreateOptions) -> Share {
    let (bytes, meta) = create_torrent(&data, opts, &mut |_| {}).unwrap();
    let torrent = dir.path().join("share.torrent");
    std::fs::write(&torrent, bytes).unwrap();
    Share {
        data,
        torrent,
        meta: Arc::new(meta),
        dir,
    }
}

pub async fn engine() -> Engine {
    Engine::start(EngineConfig::default()).await.unwrap()
}

/// An engine seeding the share.
pub async fn seeder(s: &Share) -> Engine {
    seeder_for(s, Arc::new(Open)).await
}

/// `e` seeds the share (to anyone).
pub async fn seed_on(e: &Engine, s: &Share) {
    seed_for_on(e, s, Arc::new(Open)).await;
}

async fn seed_for_on(e: &Engine, s: &Share, admission: Arc<dyn Admission>) {
    let st = e
        .add(
            s.meta.clone(),
            s.data.parent().unwrap().to_owned(),
            admission,
        )
        .await
        .unwrap();
    assert!(st.complete, "the seed's data checks");
}

/// An engine seeding the share to the peers `admission` lets in.
pub async fn seeder_for(s: &Share, admission: Arc<dyn Admission>) -> Engine {
    let e = engine().await;
    seed_for_on(&e, s, admission).await;
    e
}

/// An engine seeding the share, once its first tracker has answered its announce (so a
/// client started after this finds it).
pub async fn announced_seeder(s: &Share) -> Engine {
    announced_seed_on(engine().await, s).await
}

/// `e` seeds the share, once its first tracker has answered its announce.
pub async fn announced_seed_on(e: Engine, s: &Share) -> Engine {
    let mut events = e.subscribe();
    e.add(
        s.meta.clone(),
        s.data.parent().unwrap().to_owned(),
        Arc::new(Open),
    )
    .await
    .unwrap();
    announced(&mut events).await;
    e
}

/// The error of the first tracker that fails or refuses, within `bound`.
pub async fn tracker_error(
    events: &mut tokio::sync::broadcast::Receiver<spheres_engine::EngineEvent>,
    bound: Duration,
) -> String {
    tokio::time::timeout(bound, async {
        loop {
            if let Ok(spheres_engine::EngineEvent::TrackerError { error, .. }) = events.recv().await
            {
                return error;
            }
        }
    })
    .await
    .expect("a tracker error")
}

/// Waits (bounded) until a tracker answered an announce; panics on a tracker's error.
pub async fn announced(events: &mut tokio::sync::broadcast::Receiver<spheres_engine::EngineEvent>) {
    tokio::time::timeout(BOUND * 2, async {
        loop {
            match events.recv().await {
                Ok(spheres_engine::EngineEvent::Announced { .. }) => return,
                Ok(spheres_engine::EngineEvent::TrackerError { error, .. }) => {
                    panic!("the tracker: {error}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the seed announced");
}

/// Our tracker, HTTP and UDP on loopback ports the OS chose; `private`: keys needed.
pub async fn tracker(private: bool) -> spheres_tracker::RunningTracker {
    spheres_tracker::server::start(
        spheres_tracker::TrackerConfig {
            private,
            ..Default::default()
        },
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
    )
    .await
    .unwrap()
}

/// Waits for `e` to complete the torrent, at most a minute (a bound, not a synchronisation).
pub async fn completes(e: &Engine, s: &Share) {
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        e.wait_complete(&s.meta.info_hash.0),
    )
    .await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "not complete in a minute: {:?}",
        e.status(&s.meta.info_hash.0)
    );
}

/// Every file of `a` is in `b` with the same bytes, and nothing more.
pub fn same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let mut v = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    v.push(p.strip_prefix(root).unwrap().to_owned());
                }
            }
        }
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "the same files");
    for f in la {
        assert!(
            std::fs::read(a.join(&f)).unwrap() == std::fs::read(b.join(&f)).unwrap(),
            "{} differs",
            f.display()
        );
    }
}

/// A peer we drive by hand.
pub struct Raw {
    pub stream: TcpStream,
    pub decoder: Decoder,
}

/// How long to wait for something the engine should send (a bound, not a synchronisation).
pub const BOUND: Duration = Duration::from_secs(10);

impl Raw {
    pub async fn connect(
        addr: std::net::SocketAddr,
        info_hash: [u8; 20],
        client: &str,
    ) -> (Raw, Handshake) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut id = *b"-XX0001-000000000000";
        id[8..8 + client.len().min(12)].copy_from_slice(&client.as_bytes()[..client.len().min(12)]);
        stream
            .write_all(&Handshake::new(info_hash, id).encode())
            .await
            .unwrap();
        let mut theirs = [0u8; 68];
        tokio::time::timeout(BOUND, stream.read_exact(&mut theirs))
            .await
            .unwrap()
            .unwrap();
        let h = Handshake::parse(&theirs).unwrap().unwrap();
        (
            Raw {
                stream,
                decoder: Decoder::new(1 << 20),
            },
            h,
        )
    }

    pub async fn send(&mut self, m: Message) {
        let mut out = Vec::new();
        m.encode(&mut out);
        // The engine may have closed already: that is for the reads to say.
        let _ = self.stream.write_all(&out).await;
    }

    /// The next message, or `None` once the engine closed the connection.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(m) = self.decoder.next_message().unwrap() {
                return Some(m);
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(BOUND, self.stream.read(&mut buf))
                .await
                .expect("the engine neither answered nor closed")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Reads until the engine closes; returns everything it sent.
    pub async fn until_closed(&mut self) -> Vec<Message> {
        let mut all = Vec::new();
        while let Some(m) = self.next().await {
            all.push(m);
        }
        all
    }

    /// Reads until `pred` matches; panics if the engine closes first.
    pub async fn until(&mut self, pred: impl Fn(&Message) -> bool) -> Message {
        loop {
            match self.next().await {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("the engine closed the connection"),
            }
        }
    }
}
