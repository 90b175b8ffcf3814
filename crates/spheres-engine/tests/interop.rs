//! Our engine against BitTorrent clients we did not write, both directions, checked byte for
//! byte: libtorrent (Debian's python3-libtorrent) and aria2; and our engines among themselves.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use spheres_engine::Open;
use spheres_testkit::libtorrent::LtPeer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_our_seed() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech(&s.torrent, &out, &[e.listen_addr()]);
    tokio::task::block_in_place(|| lt.wait_for("complete", Duration::from_secs(90)));
    same_tree(&s.data, &out.join("album"));
    let st = e.status(&s.meta.info_hash.0).unwrap();
    assert!(st.uploaded >= s.meta.total_length, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_download_from_a_libtorrent_seed() {
    let s = share(&[]);
    let (_lt, port) =
        tokio::task::block_in_place(|| LtPeer::seed(&s.torrent, s.data.parent().unwrap()));
    let e = engine().await;
    let out = s.dir.path().join("ours");
    e.add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    e.connect(s.meta.info_hash.0, SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    completes(&e, &s).await;
    same_tree(&s.data, &out.join("album"));
    let st = e.status(&s.meta.info_hash.0).unwrap();
    assert_eq!((st.hash_failures, st.have), (0, st.pieces), "{st:?}");
    assert_eq!(st.state, spheres_engine::TorrentState::Seeding);
    assert_eq!(st.have_bytes, s.meta.total_length);
    let files = e.files(&s.meta.info_hash.0).unwrap();
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|f| f.have_bytes == f.length), "{files:?}");
}

/// aria2 finds our seed through our tracker (our seed announced itself) and downloads
/// everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2_downloads_from_our_seed() {
    assert!(
        std::process::Command::new("aria2c")
            .arg("--version")
            .output()
            .is_ok(),
        "aria2c is missing: run scripts/install-test-deps"
    );
    let tr = tracker(false).await;
    let s = share(&[tr.http_announce_url(None).unwrap()]);
    let _seed = announced_seeder(&s).await;
    let out = s.dir.path().join("aria2");
    let mut aria2 = spheres_testkit::aria2_download(&out);
    aria2.arg(&s.torrent);
    let status = tokio::task::spawn_blocking(move || aria2.status())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "aria2c failed");
    same_tree(&s.data, &s.dir.path().join("aria2/album"));
}

/// Three of our nodes and a seed: the third never talks to the seed, so everything it has
/// came from the other two, passed on piece by piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodes_pass_pieces_on() {
    let s = share(&[]);
    let seed = seeder(&s).await;
    let hash = s.meta.info_hash.0;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let e = engine().await;
        e.add(
            s.meta.clone(),
            s.dir.path().join(format!("node{i}")),
            Arc::new(Open),
        )
        .await
        .unwrap();
        nodes.push(e);
    }
    nodes[0].connect(hash, seed.listen_addr()).unwrap();
    nodes[1].connect(hash, seed.listen_addr()).unwrap();
    nodes[2].connect(hash, nodes[0].listen_addr()).unwrap();
    nodes[2].connect(hash, nodes[1].listen_addr()).unwrap();
    nodes[0].connect(hash, nodes[1].listen_addr()).unwrap();
    for n in &nodes {
        completes(n, &s).await;
    }
    for i in 0..3 {
        same_tree(&s.data, &s.dir.path().join(format!("node{i}/album")));
    }
    let third = nodes[2].status(&hash).unwrap();
    assert_eq!(third.downloaded, s.meta.total_length, "{third:?}");
    let passed_on: u64 = nodes[..2]
        .iter()
        .map(|n| n.status(&hash).unwrap().uploaded)
        .sum();
    assert!(
        passed_on >= s.meta.total_length,
        "the first two passed on {passed_on} bytes"
    );
}

/// A limit is a promise to the household's connection: with the seed's upload capped at
/// 1 MB/s, the 800 kB share cannot arrive in less than the time the cap allows (a lower
/// bound only: a slow machine makes it longer, never shorter), and it does arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_limit_holds() {
    let s = share(&[]);
    let seed = seeder(&s).await;
    seed.set_limits(None, std::num::NonZeroU64::new(1_000_000));
    assert_eq!(seed.limits().1.map(|r| r.get()), Some(1_000_000));
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("capped"), Arc::new(Open))
        .await
        .unwrap();
    let t0 = Instant::now();
    e.connect(s.meta.info_hash.0, seed.listen_addr()).unwrap();
    completes(&e, &s).await;
    let took = t0.elapsed().as_secs_f64();
    // 795 kB at 1 MB/s, less the 100 kB burst the bucket may start with.
    let floor = (s.meta.total_length as f64 - 100_000.0) / 1_000_000.0;
    assert!(
        took >= floor,
        "{} bytes in {took:.2}s under a 1 MB/s cap",
        s.meta.total_length
    );
    same_tree(&s.data, &s.dir.path().join("capped/album"));

    // The same from the other end: a download limit, the seed free.
    seed.set_limits(None, None);
    let capped = spheres_engine::Engine::start(spheres_engine::EngineConfig {
        download_limit: std::num::NonZeroU64::new(1_000_000),
        ..Default::default()
    })
    .await
    .unwrap();
    capped
        .add(s.meta.clone(), s.dir.path().join("capped2"), Arc::new(Open))
        .await
        .unwrap();
    let t0 = Instant::now();
    capped
        .connect(s.meta.info_hash.0, seed.listen_addr())
        .unwrap();
    completes(&capped, &s).await;
    let took = t0.elapsed().as_secs_f64();
    assert!(took >= floor, "downloaded in {took:.2}s under a 1 MB/s cap");
}

/// A peer that is not there yet (a member's node still starting) is dialled again until it
/// is: here the first dial finds a port that closes at once, then the seed starts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_not_there_yet_is_dialled_again() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    // The port, chosen by the OS and held: first it turns a dial away.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let e = engine().await;
    let mut events = e.subscribe();
    e.add(s.meta.clone(), s.dir.path().join("later"), Arc::new(Open))
        .await
        .unwrap();
    e.connect(hash, addr).unwrap();
    let (turned_away, held) = tokio::task::spawn_blocking(move || {
        let (conn, _) = held.accept().unwrap();
        drop(conn);
        (true, held)
    })
    .await
    .unwrap();
    assert!(turned_away);
    // The dial failed (an event says so); now the seed starts on that very port.
    tokio::time::timeout(BOUND, async {
        loop {
            if let Ok(spheres_engine::EngineEvent::PeerGone { addr: a, .. }) = events.recv().await
                && a == addr
            {
                return;
            }
        }
    })
    .await
    .expect("the first dial failed");
    let seed = spheres_engine::Engine::start_on(Default::default(), held).unwrap();
    seed_on(&seed, &s).await;
    completes(&e, &s).await;
    same_tree(&s.data, &s.dir.path().join("later/album"));
}

/// A person's folder need not bear the torrent's name to be seeded where it is (add_at), and
/// the engine says where a torrent's files are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_another_name_is_seeded_in_place() {
    let s = share(&[]);
    let renamed = s.dir.path().join("seed/Holiday photos");
    std::fs::rename(&s.data, &renamed).unwrap();
    let seed = engine().await;
    let st = seed
        .add_at(s.meta.clone(), renamed.clone(), Arc::new(Open))
        .await
        .unwrap();
    assert!(st.complete, "{st:?}");
    let (meta, root) = seed.metainfo(&s.meta.info_hash.0).unwrap();
    assert_eq!((meta.info_hash, root), (s.meta.info_hash, renamed.clone()));
    assert_eq!(seed.torrents(), vec![s.meta.info_hash.0]);
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("got"), Arc::new(Open))
        .await
        .unwrap();
    e.connect(s.meta.info_hash.0, seed.listen_addr()).unwrap();
    completes(&e, &s).await;
    same_tree(&renamed, &s.dir.path().join("got/album"));
}

/// qBittorrent (Debian's qbittorrent-nox) downloads from our seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbittorrent_downloads_from_our_seed() {
    use spheres_testkit::qbittorrent::Qbt;
    let s = share(&[]);
    let e = seeder(&s).await;
    let hash = s.meta.info_hash.to_hex();
    let out = s.dir.path().join("qbt");
    tokio::task::block_in_place(|| {
        let q = Qbt::start(s.dir.path());
        q.add(&s.torrent, &out);
        q.add_peer(&hash, e.listen_addr());
        q.wait_complete(&hash, Duration::from_secs(90));
    });
    same_tree(&s.data, &out.join("album"));
    let st = e.status(&s.meta.info_hash.0).unwrap();
    assert!(st.uploaded >= s.meta.total_length, "{st:?}");
}

/// We download from a qBittorrent seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_download_from_a_qbittorrent_seed() {
    use spheres_testkit::qbittorrent::Qbt;
    let s = share(&[]);
    let hash = s.meta.info_hash.to_hex();
    let q = tokio::task::block_in_place(|| {
        let q = Qbt::start(s.dir.path());
        q.add(&s.torrent, s.data.parent().unwrap());
        q.wait_complete(&hash, Duration::from_secs(60));
        q
    });
    let e = engine().await;
    let out = s.dir.path().join("ours");
    e.add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    e.connect(s.meta.info_hash.0, q.addr()).unwrap();
    completes(&e, &s).await;
    same_tree(&s.data, &out.join("album"));
    let st = e.status(&s.meta.info_hash.0).unwrap();
    assert!(st.downloaded >= s.meta.total_length, "{st:?}");
}
