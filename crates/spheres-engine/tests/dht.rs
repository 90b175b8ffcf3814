//! The mainline DHT, for public torrents only: a leech with no tracker and no peer finds a
//! public torrent's seed through it; a private torrent's info hash never goes there. The DHT
//! is a small network of `mainline` nodes on loopback (an implementation we did not write).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use futures::StreamExt;
use spheres_engine::{DhtConfig, Engine, EngineConfig, Open};
use spheres_metainfo::{CreateOptions, create_torrent};

async fn dht_engine(bootstrap: &[String]) -> Engine {
    Engine::start(EngineConfig {
        dht: Some(DhtConfig {
            bootstrap: Some(bootstrap.to_vec()),
            port: 0,
        }),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A public single-file torrent of `size` random bytes at `data`, written next to it:
/// (its .torrent file, its metainfo).
fn single_file(
    data: &std::path::Path,
    size: usize,
    seed: u64,
) -> (String, Arc<spheres_metainfo::Metainfo>) {
    spheres_testkit::write_random(data, size, seed);
    let (bytes, meta) = create_torrent(data, &CreateOptions::default(), &mut |_| {}).unwrap();
    let torrent = data.with_extension("torrent");
    std::fs::write(&torrent, bytes).unwrap();
    (torrent.display().to_string(), Arc::new(meta))
}

/// Peers the DHT gives for `hash`, asked by a node of our own (not an engine).
async fn in_the_dht(bootstrap: &[String], hash: [u8; 20]) -> Vec<SocketAddr> {
    let dht = mainline::Dht::builder()
        .bootstrap(bootstrap)
        .bind_address(std::net::Ipv4Addr::LOCALHOST)
        .port(0)
        .build()
        .unwrap()
        .as_async();
    let mut found = Vec::new();
    let mut peers = dht.get_peers(mainline::Id::from(hash));
    while let Some(batch) = peers.next().await {
        found.extend(batch.into_iter().map(SocketAddr::V4));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_torrent_is_found_through_the_dht_and_a_private_one_never_goes_there() {
    let net = tokio::task::spawn_blocking(|| mainline::Testnet::builder(3).build())
        .await
        .unwrap()
        .unwrap();
    let boot = net.bootstrap.clone();

    // One seed, with a public torrent (the share) and a private one.
    let s = share(&[]);
    let seed = dht_engine(&boot).await;
    let secret = s.dir.path().join("private/letter.pdf");
    spheres_testkit::write_random(&secret, 50_000, 9);
    let (_, private) = create_torrent(
        &secret,
        &CreateOptions {
            private: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let private_hash = private.info_hash.0;
    seed.add(
        Arc::new(private),
        s.dir.path().join("private"),
        Arc::new(Open),
    )
    .await
    .unwrap();
    seed_on(&seed, &s).await;

    // A leech told nothing but the torrent finds the seed through the DHT.
    let leech = dht_engine(&boot).await;
    let out = s.dir.path().join("leech");
    leech
        .add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    completes(&leech, &s).await;
    same_tree(&s.data, &out.join("album"));

    // The DHT has the seed for the public torrent, and nobody for the private one.
    let public = in_the_dht(&boot, s.meta.info_hash.0).await;
    assert!(
        public.iter().any(|p| p.port() == seed.listen_addr().port()),
        "the seed is not in the DHT: {public:?}"
    );
    let private = in_the_dht(&boot, private_hash).await;
    assert!(
        private.is_empty(),
        "a private torrent in the DHT: {private:?}"
    );
}

/// The DHT as it is out there: libtorrent's nodes. A libtorrent node alone is the network;
/// our seed announces to it and a libtorrent leech finds it there; a libtorrent seed
/// announces to it and our leech finds it there. Neither side is told of the other.
/// (`mainline`'s own nodes cannot be the network here: they refuse libtorrent's queries,
/// whose transaction ids are 2 bytes where `mainline` 8.0.1 wants 4; as a client, which is
/// all our engine is, it works with libtorrent's nodes, as this test shows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_and_we_find_each_other_through_the_dht() {
    use spheres_testkit::libtorrent::LtPeer;
    let within = std::time::Duration::from_secs(90);
    let s = share(&[]);

    // The network: a libtorrent node (seeding something else).
    let other = s.dir.path().join("other/notes.txt");
    let (t, _) = single_file(&other, 10_000, 31);
    let d = other.parent().unwrap().display().to_string();
    let mut node = LtPeer::spawn(&["seed", &t, &d, "--listen", "0", "--no-utp", "--dht"]);
    let port = tokio::task::block_in_place(|| node.wait_for("seeding", within))["port"]
        .as_u64()
        .unwrap();
    let boot = vec![format!("127.0.0.1:{port}")];

    // Our seed, libtorrent's download.
    let seed = dht_engine(&boot).await;
    seed_on(&seed, &s).await;
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech_with(&s.torrent, &out, &[], &["--dht-bootstrap", &boot[0]]);
    tokio::task::block_in_place(|| lt.wait_for("complete", within));
    same_tree(&s.data, &out.join("album"));

    // libtorrent's seed, our download.
    let data = s.dir.path().join("theirs/film.mkv");
    let (t, meta) = single_file(&data, 300_000, 21);
    let d = data.parent().unwrap().display().to_string();
    let mut lt_seed = LtPeer::spawn(&[
        "seed",
        &t,
        &d,
        "--listen",
        "0",
        "--no-utp",
        "--dht-bootstrap",
        &boot[0],
    ]);
    tokio::task::block_in_place(|| lt_seed.wait_for("seeding", within));
    let leech = dht_engine(&boot).await;
    let out = s.dir.path().join("ours");
    leech
        .add(meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    tokio::time::timeout(within, leech.wait_complete(&meta.info_hash.0))
        .await
        .expect("found libtorrent's seed through the DHT")
        .unwrap();
    assert!(std::fs::read(out.join("film.mkv")).unwrap() == std::fs::read(&data).unwrap());
}
