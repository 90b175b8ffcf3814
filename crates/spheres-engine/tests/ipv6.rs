//! IPv6: our engine listens, dials, announces and is found over IPv6 (on `::1`), with our
//! tracker over HTTP and UDP (BEP 7's `peers6`, BEP 15's 18-byte entries), and trades with
//! libtorrent over IPv6 both ways.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use spheres_engine::{Engine, EngineConfig, Open};
use spheres_testkit::libtorrent::LtPeer;

const LOOPBACK6: &str = "[::1]:0";

async fn engine6() -> Engine {
    Engine::start(EngineConfig {
        listen: LOOPBACK6.parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_meet_over_ipv6_through_http_and_udp_trackers() {
    let any6: SocketAddr = LOOPBACK6.parse().unwrap();
    let tr = spheres_tracker::server::start(Default::default(), Some(any6), Some(any6))
        .await
        .unwrap();
    let http = tr.http_announce_url(None).unwrap();
    assert!(http.starts_with("http://[::1]:"), "{http}");
    let s = share(&[http]);
    let seed = announced_seed_on(engine6().await, &s).await;

    // The leech knows the UDP tracker only.
    let udp = tr.udp_announce_url(None).unwrap();
    let bytes =
        spheres_metainfo::with_trackers(&std::fs::read(&s.torrent).unwrap(), &[udp]).unwrap();
    let meta = Arc::new(spheres_metainfo::Metainfo::from_bytes(&bytes).unwrap());
    let leech = engine6().await;
    leech
        .add(meta, s.dir.path().join("v6"), Arc::new(Open))
        .await
        .unwrap();
    completes(&leech, &s).await;
    same_tree(&s.data, &s.dir.path().join("v6/album"));
    let known = leech.known_peers(&s.meta.info_hash.0).unwrap();
    assert_eq!(
        known,
        vec![seed.listen_addr()],
        "the seed, by its IPv6 address"
    );
    assert!(seed.listen_addr().is_ipv6());
    leech.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_trades_with_us_over_ipv6_both_ways() {
    let s = share(&[]);
    // Our seed, libtorrent's download.
    let seed = engine6().await;
    seed_on(&seed, &s).await;
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech_with(&s.torrent, &out, &[seed.listen_addr()], &["--bind", "::1"]);
    tokio::task::block_in_place(|| lt.wait_for("complete", BOUND * 6));
    same_tree(&s.data, &out.join("album"));
    seed.shutdown().await;

    // libtorrent's seed, our download.
    let (_lt_seed, port) = tokio::task::block_in_place(|| {
        LtPeer::seed_with(&s.torrent, s.data.parent().unwrap(), &["--bind", "::1"])
    });
    let leech = engine6().await;
    leech
        .add(s.meta.clone(), s.dir.path().join("ours"), Arc::new(Open))
        .await
        .unwrap();
    let lt_addr: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    leech.add_peers(&s.meta.info_hash.0, &[lt_addr]).unwrap();
    completes(&leech, &s).await;
    same_tree(&s.data, &s.dir.path().join("ours/album"));
    leech.shutdown().await;
}
