//! BitTorrent v2 (BEP 52) as libtorrent makes it: a hybrid torrent (v1 and v2 in one, files
//! aligned to pieces by BEP 47 padding files) trades with libtorrent both ways over its v1
//! half, padding never reaching the disk; a v2-only torrent is refused with words that say
//! so, not misread.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use spheres_engine::Open;
use spheres_metainfo::Metainfo;
use spheres_testkit::libtorrent::LtPeer;

/// libtorrent makes a torrent of `data` at `out` with `flag` (`--hybrid`, `--v2`).
fn lt_create(data: &Path, out: &Path, flag: &str) -> Vec<u8> {
    let (d, o) = (data.display().to_string(), out.display().to_string());
    let mut lt = LtPeer::spawn(&["create", &d, &o, "--piece-size", "32768", flag]);
    lt.wait_for("created", BOUND * 3);
    std::fs::read(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_torrent_trades_with_libtorrent_both_ways() {
    let s = share(&[]);
    let torrent = s.dir.path().join("hybrid.torrent");
    let bytes = tokio::task::block_in_place(|| lt_create(&s.data, &torrent, "--hybrid"));
    let meta = Arc::new(Metainfo::from_bytes(&bytes).unwrap());
    assert!(
        meta.files.iter().any(|f| f.padding),
        "libtorrent aligns a hybrid torrent's files with padding files"
    );
    assert_ne!(meta.info_hash.0, s.meta.info_hash.0);

    // libtorrent seeds, we download.
    let (_lt, port) =
        tokio::task::block_in_place(|| LtPeer::seed(&torrent, s.data.parent().unwrap()));
    let e = engine().await;
    let out = s.dir.path().join("ours");
    e.add(meta.clone(), out.clone(), Arc::new(Open)).await.unwrap();
    e.add_peers(&meta.info_hash.0, &[SocketAddr::from(([127, 0, 0, 1], port))])
        .unwrap();
    let done = tokio::time::timeout(BOUND * 6, e.wait_complete(&meta.info_hash.0)).await;
    assert!(matches!(done, Ok(Ok(()))), "{:?}", e.status(&meta.info_hash.0));
    // Every real file, byte for byte, and no padding file on disk.
    same_tree(&s.data, &out.join("album"));

    // We seed (from what we downloaded), libtorrent downloads.
    let lt_out = s.dir.path().join("lt");
    let mut leech = LtPeer::leech(&torrent, &lt_out, &[e.listen_addr()]);
    tokio::task::block_in_place(|| leech.wait_for("complete", BOUND * 6));
    same_tree(&s.data, &lt_out.join("album"));
    e.shutdown().await;
}

#[test]
fn a_v2_only_torrent_is_refused_with_words_that_say_so() {
    let s = share(&[]);
    let torrent = s.dir.path().join("v2.torrent");
    let bytes = lt_create(&s.data, &torrent, "--v2");
    let err = Metainfo::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("v2-only"), "{err}");
}
