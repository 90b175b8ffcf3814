//! Interoperability with BitTorrent implementations we did not write, in both directions,
//! through our tracker, checked byte for byte.

mod common;

use std::path::Path;

use common::*;

/// aria2c downloads a multi-file torrent we made, from our seed, via our HTTP tracker.
#[test]
fn aria2_downloads_from_spheres() {
    require("aria2c");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("share");
    awkward_folder(&data);
    let tr = tracker(&[]);
    let torrent = dir.path().join("share.torrent");
    create(
        &data,
        &torrent,
        &["--tracker", &format!("http://{}/announce", tr.http)],
    );
    let _seed = seed(&torrent, &data, &[]);

    let out = dir.path().join("aria2");
    let mut cmd = spheres_testkit::aria2_download(&out);
    cmd.arg(&torrent);
    let mut aria = Proc::spawn("aria2c", cmd);
    assert!(aria.wait_exit(), "aria2c failed: {:?}", aria.seen);
    assert_same_tree(&data, &out.join("share"));
}

/// We download from an aria2c seed, via our UDP tracker.
#[test]
fn spheres_downloads_from_aria2() {
    require("aria2c");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed/movie.mkv");
    write_random(&data, 5_000_000, 7);
    let tr = tracker(&[]);
    let torrent = dir.path().join("movie.torrent");
    create(
        &data,
        &torrent,
        &["--tracker", &format!("udp://{}/announce", tr.udp)],
    );

    let port = free_port();
    let mut cmd = std::process::Command::new("aria2c");
    cmd.args([
        "-V",
        "--seed-ratio=0.0",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--summary-interval=0",
        "--console-log-level=warn",
        &format!("--listen-port={port}"),
        &format!("--dir={}", dir.path().join("seed").display()),
    ]);
    cmd.arg(&torrent);
    let _aria = Proc::spawn("aria2c seed", cmd);

    let out = dir.path().join("out");
    // aria2 announces once its check is done; our client retries the tracker until it has a peer.
    let mut got = get(
        torrent.to_str().unwrap(),
        &out,
        &["--peer", &format!("127.0.0.1:{port}")],
    );
    got.wait_event("complete");
    assert!(got.wait_exit(), "spheres get failed: {:?}", got.seen);
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(out.join("movie.mkv")).unwrap()
    );
}

/// libtorrent downloads our torrent from our seed (UDP tracker), and we download a torrent
/// libtorrent made from a libtorrent seed (HTTP tracker).
#[test]
fn libtorrent_both_directions() {
    require("/usr/bin/python3");
    let dir = tempfile::tempdir().unwrap();
    let tr = tracker(&[]);

    // libtorrent leeches from us.
    let data = dir.path().join("ours");
    awkward_folder(&data);
    let torrent = dir.path().join("ours.torrent");
    create(
        &data,
        &torrent,
        &["--tracker", &format!("udp://{}/announce", tr.udp)],
    );
    let _seed = seed(&torrent, &data, &[]);
    let mut cmd = lt_peer();
    cmd.arg("leech")
        .arg(&torrent)
        .arg(dir.path().join("lt-out"));
    let mut leech = Proc::spawn("libtorrent leech", cmd);
    leech.wait_event("complete");
    assert_same_tree(&data, &dir.path().join("lt-out/ours"));

    // We leech from libtorrent, with a torrent libtorrent made.
    let theirs = dir.path().join("theirs");
    awkward_folder(&theirs);
    let lt_torrent = dir.path().join("theirs.torrent");
    let mut cmd = lt_peer();
    cmd.arg("create")
        .arg(&theirs)
        .arg(&lt_torrent)
        .args(["--tracker", &format!("http://{}/announce", tr.http)]);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "libtorrent create: {stderr}");
    let lt_hash =
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()["info_hash"].clone();
    assert_eq!(info_json(&lt_torrent)["info_hash"], lt_hash);

    let mut cmd = lt_peer();
    cmd.arg("seed").arg(&lt_torrent).arg(dir.path());
    let mut lt_seed = Proc::spawn("libtorrent seed", cmd);
    lt_seed.wait_event("seeding");
    let out = dir.path().join("spheres-out");
    let mut got = get(lt_torrent.to_str().unwrap(), &out, &[]);
    got.wait_event("complete");
    assert!(got.wait_exit());
    assert_same_tree(&theirs, &out.join("theirs"));
}

fn info_json(torrent: &Path) -> serde_json::Value {
    let mut cmd = spheres();
    cmd.args(["--json", "torrent", "info"]).arg(torrent);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "info failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Torrents made by mktorrent and transmission-create parse with the info hash their tools
/// report, and download through us byte for byte.
#[test]
fn torrents_made_by_mktorrent_and_transmission_download() {
    require("mktorrent");
    require("transmission-create");
    require("transmission-show");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("album");
    awkward_folder(&data);
    let tr = tracker(&[]);
    let announce = format!("http://{}/announce", tr.http);

    let mk = dir.path().join("mk.torrent");
    let mut cmd = std::process::Command::new("mktorrent");
    cmd.args(["-a", &announce, "-l", "15", "-o"])
        .arg(&mk)
        .arg(&data);
    let (ok, _, stderr) = run(cmd);
    assert!(ok, "mktorrent: {stderr}");

    let tc = dir.path().join("tc.torrent");
    let mut cmd = std::process::Command::new("transmission-create");
    cmd.args(["-t", &announce, "-o"]).arg(&tc).arg(&data);
    let (ok, _, stderr) = run(cmd);
    assert!(ok, "transmission-create: {stderr}");

    for (i, torrent) in [mk, tc].iter().enumerate() {
        let info = info_json(torrent);
        let mut cmd = std::process::Command::new("transmission-show");
        cmd.arg(torrent);
        let (ok, shown, _) = run(cmd);
        assert!(ok);
        let hash = info["info_hash"].as_str().unwrap();
        assert!(
            shown.to_lowercase().contains(hash),
            "transmission-show disagrees on {hash}: {shown}"
        );
        let _seed = seed(torrent, &data, &[]);
        let out = dir.path().join(format!("out{i}"));
        let mut got = get(torrent.to_str().unwrap(), &out, &[]);
        got.wait_event("complete");
        assert!(got.wait_exit());
        // mktorrent leaves empty files out of its torrents: compare what the torrent lists.
        let files = info["files"].as_array().unwrap();
        assert!(files.len() >= 4);
        for f in files {
            let rel = f["path"].as_str().unwrap();
            let (a, b) = (
                std::fs::read(data.join(rel)).unwrap(),
                std::fs::read(out.join("album").join(rel)).unwrap(),
            );
            assert!(a == b, "{rel} differs");
        }
    }
}

/// Our torrents parse in libtorrent and transmission with the same info hash and piece count,
/// including the cases librqbit's own maker gets wrong: a size that is an exact multiple of
/// the piece length, and an empty last file.
#[test]
fn our_torrents_parse_in_other_clients() {
    require("transmission-show");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("exact");
    write_random(&data.join("a.bin"), 4 * 65536, 9);
    std::fs::write(data.join("zz-last-empty"), b"").unwrap();
    let torrent = dir.path().join("exact.torrent");
    let made = create(&data, &torrent, &["--piece-size", "64K", "--private"]);
    assert_eq!(made["pieces"], 4);

    let script = "import libtorrent as lt, sys, json; i = lt.torrent_info(sys.argv[1]); \
                  print(json.dumps({'hash': str(i.info_hash()), 'pieces': i.num_pieces(), 'private': i.priv()}))";
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args(["-c", script]).arg(&torrent);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "libtorrent rejects our torrent: {stderr}");
    let lt: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(lt["hash"], made["info_hash"]);
    assert_eq!(lt["pieces"], 4);
    assert_eq!(lt["private"], true);

    let mut cmd = std::process::Command::new("transmission-show");
    cmd.arg(&torrent);
    let (ok, shown, stderr) = run(cmd);
    assert!(ok, "transmission rejects our torrent: {stderr}");
    assert!(shown.contains(made["info_hash"].as_str().unwrap()));

    // A v2-only one (BEP 52): libtorrent reads the same v2 info hash, whose first 20 bytes
    // are how we know it; its magnet link carries it as a multihash.
    let v2 = dir.path().join("exact-v2.torrent");
    let made = create(&data, &v2, &["--piece-size", "64K", "--v2"]);
    let script =
        "import libtorrent as lt, sys; print(str(lt.torrent_info(sys.argv[1]).info_hashes().v2))";
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args(["-c", script]).arg(&v2);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "libtorrent rejects our v2 torrent: {stderr}");
    let lt_v2 = stdout.trim();
    assert_eq!(lt_v2.len(), 64, "{lt_v2}");
    assert_eq!(made["info_hash"], lt_v2[..40]);
    assert_eq!(
        info_json(&v2)["magnet"],
        format!("magnet:?xt=urn:btmh:1220{lt_v2}&dn=exact")
    );
}

/// A magnet link is enough: we fetch the metadata from a libtorrent seed (BEP 9), check it,
/// and download.
#[test]
fn magnet_from_a_libtorrent_seed() {
    require("/usr/bin/python3");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed/clip.webm");
    write_random(&data, 3_000_000, 21);
    let torrent = dir.path().join("clip.torrent");
    let made = create(&data, &torrent, &[]);
    let port = free_port();
    let mut cmd = lt_peer();
    cmd.arg("seed")
        .arg(&torrent)
        .arg(dir.path().join("seed"))
        .args(["--listen", &port.to_string()]);
    let mut lt_seed = Proc::spawn("libtorrent seed", cmd);
    lt_seed.wait_event("seeding");

    let magnet = made["magnet"].as_str().unwrap();
    let out = dir.path().join("out");
    let mut got = get(magnet, &out, &["--peer", &format!("127.0.0.1:{port}")]);
    got.wait_event("complete");
    assert!(got.wait_exit());
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(out.join("clip.webm")).unwrap()
    );
}
