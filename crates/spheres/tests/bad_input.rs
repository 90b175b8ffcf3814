//! Hostile or broken input gets a clear error, a failing exit status, and writes nothing.

mod common;

use std::path::Path;

use common::*;
use spheres_metainfo::bencode::OwnedValue;

fn evil_torrent(path: &[&[u8]], length: i64, piece_length: i64, pieces: usize) -> Vec<u8> {
    let file = OwnedValue::dict([
        ("length", OwnedValue::Int(length)),
        (
            "path",
            OwnedValue::List(path.iter().map(|p| OwnedValue::Bytes(p.to_vec())).collect()),
        ),
    ]);
    OwnedValue::dict([
        (
            "announce",
            OwnedValue::string("http://127.0.0.1:1/announce"),
        ),
        (
            "info",
            OwnedValue::dict([
                ("name", OwnedValue::string("innocent")),
                ("piece length", OwnedValue::Int(piece_length)),
                ("pieces", OwnedValue::Bytes(vec![0xAB; pieces * 20])),
                ("files", OwnedValue::List(vec![file])),
            ]),
        ),
    ])
    .encode()
}

/// Runs `torrent get` on the torrent and returns its stderr; asserts it failed.
fn get_fails(dir: &Path, torrent: &[u8]) -> String {
    let file = dir.join("evil.torrent");
    std::fs::write(&file, torrent).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = spheres();
    cmd.args(["torrent", "get"])
        .arg(&file)
        .arg("--out")
        .arg(&out);
    refused(cmd)
}

/// Runs the command, asserts that it failed, and returns what it said on stderr.
fn refused(cmd: std::process::Command) -> String {
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "accepted what it should refuse; stderr: {stderr}");
    stderr
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn path_traversal_is_refused_and_nothing_is_written() {
    for path in [
        &[&b".."[..], b"..", b"escaped"][..],
        &[b"/tmp/absolute-escape"],
        &[b"a/../../b"],
        &[b"C:", b"x"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let stderr = get_fails(dir.path(), &evil_torrent(path, 10, 16384, 1));
        assert!(stderr.contains("unsafe file path"), "{stderr}");
        assert_eq!(entries(dir.path()), ["evil.torrent", "out"]);
        assert!(entries(&dir.path().join("out")).is_empty());
    }
}

#[test]
fn inconsistent_and_absurd_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 1 TiB of data claimed with a single piece hash.
    let stderr = get_fails(dir.path(), &evil_torrent(&[b"big"], 1 << 40, 16384, 1));
    assert!(stderr.contains("needs 67108864 pieces"), "{stderr}");
    let stderr = get_fails(dir.path(), &evil_torrent(&[b"neg"], -5, 16384, 1));
    assert!(stderr.contains("negative"), "{stderr}");
    let stderr = get_fails(dir.path(), &evil_torrent(&[b"x"], 10, 1 << 40, 1));
    assert!(stderr.contains("piece length"), "{stderr}");
    let stderr = get_fails(dir.path(), b"d4:infod4:name1:xee");
    assert!(stderr.contains("pieces"), "{stderr}");
    let stderr = get_fails(dir.path(), b"not bencode at all");
    assert!(stderr.contains("not a torrent file"), "{stderr}");
    assert!(entries(&dir.path().join("out")).is_empty());
}

#[test]
fn non_utf8_names_are_shown_sanitised() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.torrent");
    std::fs::write(&file, evil_torrent(&[b"caf\xe9.txt"], 10, 16384, 1)).unwrap();
    let mut cmd = spheres();
    cmd.args(["--json", "torrent", "info"]).arg(&file);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["files"][0]["path"], "caf\u{fffd}.txt");
}

#[test]
fn a_symlink_in_the_download_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("album");
    write_random(&data.join("a.jpg"), 1000, 1);
    let torrent = dir.path().join("album.torrent");
    create(&data, &torrent, &[]);
    let out = dir.path().join("out");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("album")).unwrap();
    let mut cmd = spheres();
    cmd.args(["torrent", "get"])
        .arg(&torrent)
        .arg("--out")
        .arg(&out);
    let stderr = refused(cmd);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(entries(&elsewhere).is_empty());
}

#[test]
fn empty_input_and_wrong_data_are_refused_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    // `torrent create` of `input` with `extra` must fail and write nothing; returns stderr.
    let create_refused = |input: &Path, extra: &[&str]| {
        let out = dir.path().join("refused.torrent");
        let mut cmd = spheres();
        cmd.args(["torrent", "create"])
            .arg(input)
            .args(extra)
            .arg("-o")
            .arg(&out);
        let stderr = refused(cmd);
        assert!(!out.exists(), "a refused torrent was written anyway");
        stderr
    };
    let stderr = create_refused(&empty, &[]);
    assert!(stderr.contains("is empty"), "{stderr}");

    // A tracker without a scheme would silently never be reached: refused up front.
    let some = dir.path().join("some.bin");
    write_random(&some, 1000, 9);
    let stderr = create_refused(&some, &["--tracker", "127.0.0.1:6969/announce"]);
    assert!(stderr.contains("is not a tracker URL"), "{stderr}");

    // Seeding data whose size differs from the torrent's is refused and the file is untouched.
    let data = dir.path().join("clip.mp4");
    write_random(&data, 100_000, 5);
    let torrent = dir.path().join("clip.torrent");
    create(&data, &torrent, &[]);
    write_random(&data, 90_000, 6);
    let before = std::fs::read(&data).unwrap();
    let mut cmd = spheres();
    cmd.args(["torrent", "seed"])
        .arg(&torrent)
        .arg("--data")
        .arg(&data);
    let stderr = refused(cmd);
    assert!(stderr.contains("refusing to seed"), "{stderr}");
    assert_eq!(std::fs::read(&data).unwrap(), before);
}

#[test]
fn seeding_data_that_does_not_match_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clip.mp4");
    write_random(&data, 200_000, 5);
    let torrent = dir.path().join("clip.torrent");
    create(&data, &torrent, &[]);
    write_random(&data, 200_000, 6); // same size, other bytes
    let mut cmd = spheres();
    cmd.args(["torrent", "seed"])
        .arg(&torrent)
        .arg("--data")
        .arg(&data);
    let stderr = refused(cmd);
    assert!(stderr.contains("does not match the torrent"), "{stderr}");
}
