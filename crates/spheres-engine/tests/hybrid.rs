//! BitTorrent v2 (BEP 52) as libtorrent makes it: a hybrid torrent (v1 and v2 in one, files
//! aligned to pieces by BEP 47 padding files) trades with libtorrent both ways over its v1
//! half, padding never reaching the disk; a v2-only torrent the same over its merkle trees;
//! a torrent whose piece layers lie is refused.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use spheres_engine::Open;
use spheres_metainfo::{Metainfo, V2Info, v2};
use spheres_testkit::libtorrent::LtPeer;

/// libtorrent makes a torrent of `data` at `out` with `flag` (`--hybrid`, `--v2`): its
/// bytes, and its v2 info hash in hex as libtorrent computed it.
fn lt_create(data: &Path, out: &Path, flag: &str) -> (Vec<u8>, String) {
    let (d, o) = (data.display().to_string(), out.display().to_string());
    let mut lt = LtPeer::spawn(&["create", &d, &o, "--piece-size", "32768", flag]);
    let v = lt.wait_for("created", BOUND * 3);
    let v2 = v["info_hash_v2"]
        .as_str()
        .expect("a v2 info hash")
        .to_owned();
    (std::fs::read(out).unwrap(), v2)
}

/// Our reading of the v2 half agrees with libtorrent: the same info hash, and each file's
/// root as we compute it from the data.
fn same_v2(v2: &spheres_metainfo::V2Info, lt_hash: &str, data: &Path) {
    assert_eq!(hex::encode(v2.info_hash), lt_hash);
    assert_eq!(v2.files.len(), 4, "{:?}", v2.files);
    for f in &v2.files {
        let path = f.path.iter().fold(data.to_owned(), |p, c| p.join(c));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, f.length);
        let ours = (!bytes.is_empty()).then(|| v2::root_of_leaves(&v2::leaves(&bytes)));
        assert_eq!(ours, f.pieces_root, "{}", path.display());
    }
}

/// libtorrent seeds `torrent` from the share's data; an engine of ours downloads it into
/// `s.dir/into` and gets every real file, byte for byte (and no padding file).
async fn from_libtorrent(
    s: &Share,
    torrent: &Path,
    meta: &Arc<Metainfo>,
    into: &str,
) -> (spheres_engine::Engine, LtPeer) {
    let (lt, port) =
        tokio::task::block_in_place(|| LtPeer::seed(torrent, s.data.parent().unwrap()));
    let e = engine().await;
    let out = s.dir.path().join(into);
    e.add(meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    e.add_peers(
        &meta.info_hash.0,
        &[SocketAddr::from(([127, 0, 0, 1], port))],
    )
    .unwrap();
    let done = tokio::time::timeout(BOUND * 6, e.wait_complete(&meta.info_hash.0)).await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "{:?}",
        e.status(&meta.info_hash.0)
    );
    same_tree(&s.data, &out.join("album"));
    (e, lt)
}

/// Engine `e` seeds `torrent` (the share's data); libtorrent downloads it all, byte for byte.
async fn to_libtorrent(s: &Share, torrent: &Path, e: spheres_engine::Engine) {
    let lt_out = s.dir.path().join("lt");
    let mut leech = LtPeer::leech(torrent, &lt_out, &[e.listen_addr()]);
    tokio::task::block_in_place(|| leech.wait_for("complete", BOUND * 6));
    same_tree(&s.data, &lt_out.join("album"));
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_torrent_trades_with_libtorrent_both_ways() {
    let s = share(&[]);
    let torrent = s.dir.path().join("hybrid.torrent");
    let (bytes, lt_hash) = tokio::task::block_in_place(|| lt_create(&s.data, &torrent, "--hybrid"));
    let meta = Arc::new(Metainfo::from_bytes(&bytes).unwrap());
    same_v2(meta.v2.as_ref().expect("its v2 half"), &lt_hash, &s.data);
    assert!(
        meta.files.iter().any(|f| f.padding),
        "libtorrent aligns a hybrid torrent's files with padding files"
    );
    assert_ne!(meta.info_hash.0, s.meta.info_hash.0);

    // libtorrent seeds, we download: every real file, byte for byte, no padding on disk.
    let (e, _lt) = from_libtorrent(&s, &torrent, &meta, "ours").await;

    // We seed (from what we downloaded), libtorrent downloads.
    to_libtorrent(&s, &torrent, e).await;
}

/// Our maker's hybrid torrents: the same info dictionary as libtorrent makes of the same
/// folder (so the same v1 and v2 info hashes), libtorrent seeds from one (checking both
/// halves), and we download it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_hybrid_torrents_are_libtorrent_s() {
    let s = share(&[]);
    let (bytes, meta) = spheres_metainfo::create_torrent(
        &s.data,
        &spheres_metainfo::CreateOptions {
            piece_length: Some(32 * 1024),
            hybrid: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let ours = s.dir.path().join("ours.torrent");
    std::fs::write(&ours, &bytes).unwrap();
    let theirs = s.dir.path().join("theirs.torrent");
    let (lt_bytes, lt_v2) = tokio::task::block_in_place(|| lt_create(&s.data, &theirs, "--hybrid"));
    let lt_meta = Metainfo::from_bytes(&lt_bytes).unwrap();
    let v2 = meta.v2.as_ref().expect("a v2 half");
    same_v2(v2, &lt_v2, &s.data);
    assert_eq!(meta.info_hash, lt_meta.info_hash, "the same v1 info hash");

    let (e, _lt) = from_libtorrent(&s, &ours, &Arc::new(meta), "got").await;
    e.shutdown().await;
}

/// A v2-only torrent as libtorrent makes it: laid out as libtorrent lays it out (every file
/// padded to a whole piece, the last one too), known by its SHA-256 info hash cut to 20
/// bytes, each piece checked against its file's merkle tree; our maker makes the same one of
/// the same folder; it trades with libtorrent both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_only_torrent_trades_with_libtorrent_both_ways() {
    let s = share(&[]);
    let torrent = s.dir.path().join("v2.torrent");
    let (bytes, lt_hash) = tokio::task::block_in_place(|| lt_create(&s.data, &torrent, "--v2"));
    let meta = Arc::new(Metainfo::from_bytes(&bytes).unwrap());
    assert!(meta.is_v2_only());
    assert!(meta.piece_hashes.is_empty());
    same_v2(meta.v2.as_ref().expect("its v2 half"), &lt_hash, &s.data);
    assert_eq!(hex::encode(meta.info_hash.0), lt_hash[..40]);
    let pl = meta.piece_length;
    assert_eq!(meta.total_length % pl, 0, "{:?}", meta.files);
    for (i, f) in meta.files.iter().enumerate().filter(|(_, f)| !f.padding) {
        assert_eq!(f.offset % pl, 0, "{} starts a piece", f.display_path());
        if f.length % pl != 0 {
            assert!(
                meta.files[i + 1].padding,
                "padding after {}",
                f.display_path()
            );
        }
    }
    assert!(
        meta.magnet()
            .to_string()
            .starts_with("magnet:?xt=urn:btmh:1220")
    );

    // Our maker makes the same info dictionary of the same folder.
    let (_, ours) = spheres_metainfo::create_torrent(
        &s.data,
        &spheres_metainfo::CreateOptions {
            piece_length: Some(pl),
            v2_only: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(ours.info_hash, meta.info_hash);
    assert_eq!(ours.files, meta.files);

    // libtorrent seeds, we download (checking every piece against the merkle trees).
    let (e, _lt) = from_libtorrent(&s, &torrent, &meta, "ours").await;

    // We seed, libtorrent downloads (checking what we send against the same trees).
    to_libtorrent(&s, &torrent, e).await;
}

#[test]
fn a_v2_torrent_whose_layers_do_not_add_up_is_refused() {
    let s = share(&[]);
    let torrent = s.dir.path().join("v2.torrent");
    let (bytes, lt_hash) = lt_create(&s.data, &torrent, "--v2");
    let v2 = V2Info::from_torrent(&bytes).unwrap().expect("a v2 torrent");
    same_v2(&v2, &lt_hash, &s.data);
    assert!(
        !v2.piece_layers.is_empty(),
        "holiday.mp4 is larger than a piece"
    );
    // One byte of a piece layer changed: refused, not believed.
    let layer = v2.piece_layers.values().next().unwrap();
    let at = bytes
        .windows(32)
        .position(|w| w == layer[1])
        .expect("the layer is in the file");
    let mut bad = bytes.clone();
    bad[at] ^= 1;
    for err in [
        V2Info::from_torrent(&bad).unwrap_err().to_string(),
        Metainfo::from_bytes(&bad).unwrap_err().to_string(),
    ] {
        assert!(err.contains("do not add up"), "{err}");
    }
}
