//! Interop with transmission 3 (Debian), both directions. transmission ignores peers on 127.x,
//! so the test builds its own network namespace with a veth pair and runs transmission-cli
//! inside it; our tracker and client sit on the host end. Needs root; only the test's own
//! namespace and addresses receive traffic.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use spheres_metainfo::bencode;

struct Netns {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let (ok, _, stderr) = run({
        let mut c = Command::new("ip");
        c.args(args);
        c
    });
    assert!(ok, "ip {args:?}: {stderr}");
}

impl Netns {
    /// A namespace joined to the host by a veth pair on a /30 derived from our pid, so that
    /// parallel test processes never share addresses.
    fn new() -> Netns {
        let pid = std::process::id() % 16384;
        let (x, y) = ((pid >> 6) as u8, ((pid & 0x3f) * 4) as u8);
        let host_ip = Ipv4Addr::new(10, 201, x, y + 1);
        let ns_ip = Ipv4Addr::new(10, 201, x, y + 2);
        let n = Netns {
            name: format!("sph-tr-{pid}"),
            host_if: format!("sph{pid}h"),
            host_ip,
            ns_ip,
        };
        let ns_if = format!("sph{pid}n");
        ip(&["netns", "add", &n.name]);
        ip(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &n.name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &n.host_if]);
        ip(&["link", "set", &n.host_if, "up"]);
        ip(&[
            "-n",
            &n.name,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &n.name, "link", "set", &ns_if, "up"]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        n
    }

    /// transmission-cli inside the namespace, with DHT, LPD, PEX, uTP and port mapping off.
    fn transmission(
        &self,
        work: &Path,
        download_dir: &Path,
        torrent: &Path,
        done_marker: Option<&Path>,
    ) -> Proc {
        let config = work.join(format!(
            "tr-config-{}",
            download_dir.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&config).unwrap();
        let settings = serde_json::json!({
            "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
            "port-forwarding-enabled": false, "blocklist-enabled": false, "rpc-enabled": false,
            "encryption": 0, "peer-port": 51413, "peer-port-random-on-start": false,
            "bind-address-ipv4": self.ns_ip.to_string(),
            "incomplete-dir-enabled": false, "watch-dir-enabled": false,
            "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
            "download-queue-enabled": false, "seed-queue-enabled": false,
            "speed-limit-down-enabled": false, "speed-limit-up-enabled": false,
        });
        std::fs::write(config.join("settings.json"), settings.to_string()).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "transmission-cli", "-g"])
            .arg(&config)
            .arg("-w")
            .arg(download_dir)
            .args(["-p", "51413", "-et", "-M", "-D", "-U"]);
        if let Some(marker) = done_marker {
            // transmission runs the script with an almost empty environment: builtins only.
            let script = work.join("done.sh");
            std::fs::write(
                &script,
                format!("echo \"$TR_TORRENT_HASH\" > '{}'\n", marker.display()),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            cmd.arg("-f").arg(&script);
        }
        cmd.arg(torrent);
        // transmission-cli writes progress to stdout without newlines; we only need its exit.
        cmd.stdout(std::process::Stdio::null());
        Proc::spawn("transmission-cli", cmd)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace (which takes the veth).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}

/// Seeders of `hash` according to our tracker's HTTP scrape.
fn seeders(tracker: SocketAddr, hash: &str) -> i64 {
    let escaped: String = (0..hash.len())
        .step_by(2)
        .map(|i| format!("%{}", &hash[i..i + 2]))
        .collect();
    let Ok(mut s) = TcpStream::connect_timeout(&tracker, Duration::from_secs(2)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req =
        format!("GET /scrape?info_hash={escaped} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return 0;
    };
    let Ok(v) = bencode::decode(&raw[split + 4..]) else {
        return 0;
    };
    let bytes = hex_decode(hash);
    v.as_dict()
        .and_then(|d| d.get(b"files"))
        .and_then(|f| f.as_dict())
        .and_then(|f| f.get(&bytes))
        .and_then(|e| e.as_dict())
        .and_then(|e| e.get(b"complete"))
        .and_then(|c| c.as_int())
        .unwrap_or(0)
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn transmission_both_directions_across_a_namespace() {
    spheres_testkit::require_root("a network namespace");
    require("transmission-cli");
    require("transmission-create");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let ns = Netns::new();

    let mut cmd = spheres();
    cmd.args([
        "--json",
        "tracker",
        "--http",
        &format!("{}:0", ns.host_ip),
        "--interval",
        "5",
    ]);
    let mut tracker = Proc::spawn("tracker", cmd);
    let tracker_addr: SocketAddr = tracker.wait_event("listening")["http"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let announce = format!("http://{tracker_addr}/announce");

    // A: transmission downloads from our seed.
    let data = work.join("a/data/holiday.mp4");
    write_random(&data, 5 << 20, 31);
    let torrent = work.join("a.torrent");
    let made = create(&data, &torrent, &["--tracker", &announce]);
    let hash = made["info_hash"].as_str().unwrap().to_owned();
    let _seed = seed(&torrent, &data, &["--listen", &format!("{}:0", ns.host_ip)]);
    // transmission re-announces only after 20 s if its first announce finds nobody.
    wait_until("our seed on the tracker", || {
        seeders(tracker_addr, &hash) >= 1
    });
    let marker = work.join("a-done");
    let tr_dir = work.join("a-tr");
    std::fs::create_dir_all(&tr_dir).unwrap();
    let mut tr = ns.transmission(work, &tr_dir, &torrent, Some(&marker));
    wait_until("transmission to finish", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == hash)
    });
    assert!(std::fs::read(&data).unwrap() == std::fs::read(tr_dir.join("holiday.mp4")).unwrap());
    drop(tr);

    // B: we download from a transmission seed, with a torrent transmission made.
    let tr_data = work.join("b-tr");
    write_random(&tr_data.join("album.bin"), 5 << 20, 32);
    let tr_torrent = work.join("b.torrent");
    let mut cmd = Command::new("transmission-create");
    cmd.arg("-o")
        .arg(&tr_torrent)
        .args(["-t", &announce])
        .arg(tr_data.join("album.bin"));
    let (ok, _, stderr) = run(cmd);
    assert!(ok, "transmission-create: {stderr}");
    let info = {
        let mut c = spheres();
        c.args(["--json", "torrent", "info"]).arg(&tr_torrent);
        let (ok, stdout, stderr) = run(c);
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let b_hash = info["info_hash"].as_str().unwrap().to_owned();
    tr = ns.transmission(work, &tr_data, &tr_torrent, None);
    wait_until("transmission to seed", || {
        seeders(tracker_addr, &b_hash) >= 1
    });
    let out: PathBuf = work.join("b-out");
    let mut got = get(
        tr_torrent.to_str().unwrap(),
        &out,
        &["--listen", &format!("{}:0", ns.host_ip)],
    );
    got.wait_event("complete");
    assert!(got.wait_exit());
    assert!(
        std::fs::read(tr_data.join("album.bin")).unwrap()
            == std::fs::read(out.join("album.bin")).unwrap()
    );
    drop(tr);
}
