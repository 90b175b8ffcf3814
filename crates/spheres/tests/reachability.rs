//! Through a home router, on networks the test builds itself (network namespaces: a LAN, a
//! router doing NAT with Debian's miniupnpd, and "the internet"; tests/peers/upnp-netns.sh).
//! A libtorrent peer on the internet side cannot reach our seed behind the NAT until
//! `spheres map-port` has the router forward the port, can then, and cannot after it removed
//! the mapping; once per router protocol. Needs root (fails without it). Only
//! the test's own namespaces ever see traffic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proc, create, lt_peer, spheres, wait_until, write_random};

const PORT: u16 = 6881;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/upnp-netns.sh")
}

/// The three namespaces of one test; removed on drop.
struct Net {
    prefix: String,
}

impl Net {
    fn up(prefix: &str, mode: &str) -> Net {
        Net::up_with(prefix, mode, &[])
    }

    fn up_with(prefix: &str, mode: &str, env: &[(&str, &str)]) -> Net {
        let out = Command::new(script())
            .args(["up", prefix, mode])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "upnp-netns.sh up {prefix} {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Net {
            prefix: prefix.to_owned(),
        }
    }

    fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.prefix)
    }

    /// `cmd` run inside namespace `side`.
    fn exec(&self, side: &str, cmd: Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(side)])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    }

    /// Whether the internet host can open a TCP connection to the router's public port.
    fn reachable_from_outside(&self) -> bool {
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "import socket; socket.create_connection(('25.0.0.1', 6881), timeout=3)",
        ]);
        self.exec("net", c)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.prefix]).status();
    }
}

/// `spheres torrent seed` on the LAN host, listening on every address at PORT; seeding once
/// this returns.
fn seed_on_lan(net: &Net, torrent: &Path, data: &Path, extra: &[&str]) -> Proc {
    let mut cmd = spheres();
    cmd.args(["--json", "torrent", "seed"])
        .arg(torrent)
        .arg("--data")
        .arg(data)
        .args(["--listen", &format!("0.0.0.0:{PORT}")])
        .args(extra);
    let mut seed = Proc::spawn("seed", net.exec("lan", cmd));
    seed.wait_event("seeding");
    seed
}

/// `spheres torrent get TORRENT --out GOT EXTRA...` in namespace `side`.
fn get_in(net: &Net, side: &str, torrent: &Path, got: &Path, extra: &[&str]) -> Proc {
    let mut cmd = spheres();
    cmd.args(["--json", "torrent", "get"])
        .arg(torrent)
        .arg("--out")
        .arg(got)
        .args(extra);
    Proc::spawn("get", net.exec(side, cmd))
}

fn requirements() {
    spheres_testkit::require_root("network namespaces");
    common::require("miniupnpd");
    common::require("nft");
}

/// Seeds a file from the LAN host, maps the port with `spheres map-port`, and checks a
/// libtorrent peer on the internet side gets it only while the mapping exists.
fn through_the_router(prefix: &str, mode: &str, expect_method: &str) {
    requirements();
    let dir = tempfile::tempdir().unwrap();
    let net = Net::up(prefix, mode);
    let data = dir.path().join("film.mkv");
    let bytes = write_random(&data, 3_000_000, 5);
    let torrent = dir.path().join("film.torrent");
    create(&data, &torrent, &[]);

    let _seed = seed_on_lan(&net, &torrent, &data, &[]);
    assert!(
        !net.reachable_from_outside(),
        "reachable before any mapping"
    );

    let mut map_cmd = spheres();
    map_cmd.args(["--json", "map-port", &PORT.to_string()]);
    let mut mapper = Proc::spawn("map-port", net.exec("lan", map_cmd));
    let mapped = mapper.wait_event("mapped");
    assert_eq!(mapped["reachability"]["method"], expect_method, "{mapped}");
    assert_eq!(
        mapped["reachability"]["external"],
        format!("25.0.0.1:{PORT}"),
        "{mapped}"
    );

    let out = dir.path().join("out");
    let mut leech_cmd = lt_peer();
    leech_cmd
        .arg("leech")
        .arg(&torrent)
        .arg(&out)
        .args(["--bind", "25.0.0.2", "--peer", &format!("25.0.0.1:{PORT}")])
        .args(["--timeout", "60", "--no-utp"]);
    let mut leech = Proc::spawn("libtorrent", net.exec("net", leech_cmd));
    assert!(
        leech.wait_exit(),
        "libtorrent could not fetch through the mapping: {:?}",
        leech.seen
    );
    assert!(std::fs::read(out.join("film.mkv")).unwrap() == bytes);

    // Shutdown removes the mapping from the router.
    mapper.terminate();
    assert!(
        mapper.wait_exit(),
        "map-port did not remove its mapping: {:?}",
        mapper.seen
    );
    assert!(
        !net.reachable_from_outside(),
        "still reachable after the mapping was removed"
    );
}

#[test]
fn upnp_igd2() {
    through_the_router("rch2", "igd2", "upnp-igd2");
}

#[test]
fn upnp_igd1() {
    through_the_router("rch1", "igd1", "upnp-igd1");
}

#[test]
fn nat_pmp() {
    through_the_router("rchm", "pmp", "nat-pmp");
}

#[test]
fn pcp() {
    through_the_router("rchp", "pcp", "pcp");
}

/// A router that speaks no mapping protocol: a clear reason, not a hang; and downloads from
/// the internet side still work (outbound connections go through the NAT).
#[test]
fn a_router_without_mapping_says_why() {
    requirements();
    let dir = tempfile::tempdir().unwrap();
    let net = Net::up("rchn", "none");
    let mut map_cmd = spheres();
    map_cmd.args(["map-port", &PORT.to_string()]);
    let out = net.exec("lan", map_cmd).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not forward a port")
            && stderr.contains("UPnP")
            && stderr.contains("PCP"),
        "{stderr}"
    );

    // A libtorrent seed on the internet side; our client behind the NAT dials it.
    let outside = dir.path().join("outside");
    let data = outside.join("outside.bin");
    let bytes = write_random(&data, 2_000_000, 13);
    let torrent = dir.path().join("outside.torrent");
    create(&data, &torrent, &[]);
    let mut seed_cmd = lt_peer();
    seed_cmd.arg("seed").arg(&torrent).arg(&outside).args([
        "--bind",
        "25.0.0.2",
        "--listen",
        &PORT.to_string(),
        "--no-utp",
    ]);
    let mut seed = Proc::spawn("libtorrent seed", net.exec("net", seed_cmd));
    seed.wait_event("seeding");
    let got = dir.path().join("got");
    let peer = format!("25.0.0.2:{PORT}");
    let mut get = get_in(
        &net,
        "lan",
        &torrent,
        &got,
        &["--listen", "0.0.0.0:0", "--peer", &peer],
    );
    get.wait_event("complete");
    assert!(std::fs::read(got.join("outside.bin")).unwrap() == bytes);
}

/// Two hosts on one LAN (a bridge in the router namespace) and a router with no mapping
/// protocol; with `LAN_IPV6=1` the hosts also have link-local IPv6 addresses.
fn two_hosts(prefix: &str, env: &[(&str, &str)]) -> Net {
    let net = Net::up_with(prefix, "none", env);
    let out = Command::new(script())
        .args(["up-lan2", prefix])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "up-lan2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    net
}

/// Seeds a private torrent on one LAN host and fetches it on the other with `--lsd` and no
/// tracker nor peer named, listening on `any` ("0.0.0.0" or "[::]"); returns the peers the
/// fetching side found on the LAN.
fn lsd_transfer(net: &Net, any: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos.zip");
    let bytes = write_random(&data, 2_000_000, 9);
    let torrent = dir.path().join("photos.torrent");
    create(&data, &torrent, &["--private"]);
    let mut cmd = spheres();
    cmd.args(["--json", "torrent", "seed"])
        .arg(&torrent)
        .arg("--data")
        .arg(&data)
        .args(["--listen", &format!("{any}:{PORT}"), "--lsd"]);
    let mut seed = Proc::spawn("seed", net.exec("lan", cmd));
    seed.wait_event("seeding");

    let got = dir.path().join("got");
    let listen = format!("{any}:0");
    let mut get = get_in(net, "lan2", &torrent, &got, &["--listen", &listen, "--lsd"]);
    let found = get.wait_event("lsd");
    get.wait_event("complete");
    assert!(std::fs::read(got.join("photos.zip")).unwrap() == bytes);
    found["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

/// Two hosts on one LAN, no tracker, no peer named: they find each other by local service
/// discovery alone, for a private torrent.
#[test]
fn two_hosts_on_a_lan_find_each_other_by_lsd() {
    requirements();
    let net = two_hosts("rchl", &[]);
    let peers = lsd_transfer(&net, "0.0.0.0");
    assert_eq!(peers, vec![format!("192.168.77.2:{PORT}")]);
}

/// The same over IPv6 alone: the LAN hosts have link-local IPv6 addresses and no IPv4 at all,
/// so only the ff15::efc0:988f announcements can bring them together.
#[test]
fn two_hosts_find_each_other_by_lsd_over_ipv6_alone() {
    requirements();
    let net = two_hosts("rch6", &[("LAN_IPV6", "1")]);
    for side in ["lan", "lan2"] {
        let mut flush = Command::new("ip");
        flush.args(["-4", "addr", "flush", "dev", "eth0"]);
        assert!(net.exec(side, flush).status().unwrap().success());
    }
    let peers = lsd_transfer(&net, "[::]");
    assert!(
        peers.len() == 1
            && peers[0].starts_with("[fe80::")
            && peers[0].ends_with(&format!("]:{PORT}")),
        "{peers:?}"
    );
}

/// A router that is itself behind another NAT (its outside address is carrier-grade NAT
/// space, as behind a provider's box): nothing can be mapped, and the node says it is a double
/// NAT and what to do, rather than a list of protocol errors.
#[test]
fn a_router_behind_another_nat_is_called_a_double_nat() {
    requirements();
    let net = Net::up_with("rchd", "all", &[("WAN_BASE", "100.64.0")]);
    let mut cmd = spheres();
    cmd.args(["--json", "map-port", &PORT.to_string()]);
    let out = net.exec("lan", cmd).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("double NAT")
            && stdout.contains("ask the provider for a public IP address"),
        "{stdout}"
    );
    assert!(!net.reachable_from_outside());
}

/// A `spheres up` node in namespace `side`, its data under `root/name`; running once this
/// returns. Its web interface is on loopback unless `more` says where.
fn node_in(net: &Net, side: &str, root: &Path, name: &str, more: &[&str]) -> Proc {
    let mut cmd = spheres();
    cmd.args(["--json", "--data-dir"])
        .arg(root.join(name).join("data"))
        .arg("up");
    if !more.iter().any(|a| *a == "--http" || *a == "--public-web") {
        cmd.args(["--http", "127.0.0.1:0"]);
    }
    cmd.arg("--spheres-dir")
        .arg(root.join(name).join("Spheres"))
        .args(more);
    let mut p = Proc::spawn(name, net.exec(side, cmd));
    p.wait_event("running");
    p
}

/// The CLI of the node `root/name`, run where the node runs (its API is on that namespace's
/// loopback); its JSON result.
fn cli_in(net: &Net, side: &str, root: &Path, name: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = spheres();
    cmd.args(["--json", "--data-dir"])
        .arg(root.join(name).join("data"))
        .args(args);
    let (ok, stdout, stderr) = common::run(net.exec(side, cmd));
    assert!(ok, "{name} {args:?}: {stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap()
}

/// Two member nodes (`spheres up`) on one LAN: alice runs the household server for the LAN,
/// bob joins with her invitation link from the other host. Neither publishes its addresses
/// in the room, and alice's tracker listens on her loopback, out of bob's reach: bob's node
/// can find alice's only by local service discovery, and completes her share that way.
#[test]
fn two_member_nodes_on_a_lan_share_by_lsd_alone() {
    requirements();
    common::require("prosody");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let net = two_hosts("rchs", &[]);
    let lan = ["--listen", "0.0.0.0:0", "--no-endpoints"];
    let _alice = node_in(
        &net,
        "lan",
        root,
        "alice",
        &[
            &lan[..],
            &[
                "--user",
                "alice",
                "--domain",
                "family.test",
                "--xmpp-listen",
                "0.0.0.0",
            ],
        ]
        .concat(),
    );
    cli_in(&net, "lan", root, "alice", &["sphere", "create", "Family"]);
    let link = cli_in(
        &net,
        "lan",
        root,
        "alice",
        &["sphere", "invite-link", "Family"],
    )["link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        link.contains("server=192%2E168%2E77%2E2%3A"),
        "the link names the LAN address: {link}"
    );
    let _bob = node_in(
        &net,
        "lan2",
        root,
        "bob",
        &[&lan[..], &["--invite", &link, "--user", "bob"]].concat(),
    );
    wait_until("bob in the sphere", || {
        cli_in(&net, "lan2", root, "bob", &["sphere", "list"])
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["name"] == "Family"))
    });
    // A stranger on the same LAN listens to what the nodes announce there.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/lsd_listen.py");
    let mut listen = Command::new("python3");
    listen.arg(script);
    let mut stranger = Proc::spawn("LAN listener", net.exec("lan2", listen));
    stranger.wait_event("listening");
    let file = root.join("video.mp4");
    let bytes = write_random(&file, 3_000_000, 12);
    let shared = cli_in(
        &net,
        "lan",
        root,
        "alice",
        &["share", "Family", file.to_str().unwrap()],
    );
    let hash = shared["info_hash"].as_str().unwrap().to_lowercase();
    wait_until("bob's copy complete", || {
        cli_in(&net, "lan2", root, "bob", &["shares", "Family"])
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|s| s["name"] == "video.mp4" && s["state"] == "seeding")
            })
    });
    assert!(std::fs::read(root.join("bob/Spheres/Family/video.mp4")).unwrap() == bytes);
    // Attack: the stranger heard the nodes announce (so it was listening), and never the
    // sphere's info hash, which would let it ask them for the video.
    let heard = stranger.wait_event("heard");
    assert!(heard["text"].as_str().unwrap().contains("BT-SEARCH"));
    stranger.kill_and_collect();
    let all = stranger.seen.join("\n").to_lowercase();
    assert!(
        !all.contains(&hash),
        "a sphere's info hash was announced on the LAN: {all}"
    );
}

/// The node itself (`spheres up`, not `map-port`) behind a UPnP router: it has the router
/// forward its BitTorrent port, says so in its status with the router's outside address, is
/// reachable from the internet side while it runs, and removes the mapping when it stops.
#[test]
fn a_running_node_keeps_its_port_mapped_and_removes_it_when_it_stops() {
    requirements();
    common::require("prosody");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let net = Net::up("rchu", "igd2");
    let listen = format!("0.0.0.0:{PORT}");
    let mut node = node_in(
        &net,
        "lan",
        root,
        "alice",
        &["--listen", &listen, "--user", "alice"],
    );
    let mut reach = serde_json::Value::Null;
    wait_until("the node's reachability", || {
        reach = cli_in(&net, "lan", root, "alice", &["status"])["reachability"].clone();
        reach["state"] != "unknown"
    });
    assert_eq!(reach["state"], "mapped", "{reach}");
    assert_eq!(reach["external"], format!("25.0.0.1:{PORT}"), "{reach}");
    assert!(
        net.reachable_from_outside(),
        "the mapped port answers from the internet side"
    );
    // What the node tells its spheres: the router's outside address among its endpoints.
    let endpoints = cli_in(&net, "lan", root, "alice", &["status"])["endpoints"].clone();
    assert!(
        endpoints.as_array().is_some_and(|e| e
            .iter()
            .any(|p| p["kind"] == "mapped" && p["host"] == "25.0.0.1" && p["port"] == PORT)),
        "{endpoints}"
    );
    node.terminate();
    assert!(node.wait_exit(), "the node did not stop cleanly");
    assert!(
        !net.reachable_from_outside(),
        "the mapping is gone once the node stopped"
    );
}

/// `curl ARGS...` in namespace `side`: whether it succeeded, and its output.
fn curl_in(net: &Net, side: &str, args: &[&str]) -> (bool, Vec<u8>) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20"]).args(args);
    let out = net.exec(side, c).output().unwrap();
    if !out.status.success() {
        eprintln!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), out.stdout)
}

/// The node's status once `what` holds of it.
fn status_when(
    net: &Net,
    root: &Path,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let status = cli_in(net, "lan", root, "alice", &["status"]);
        if cond(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Alice's node with an open sphere (not end-to-end encrypted: its shares are torrents
/// through a link too) and a 3 MB file shared in it; `more`: its options.
fn alice_sharing(net: &Net, root: &Path, more: &[&str]) -> (Proc, Vec<u8>) {
    let node = node_in(
        net,
        "lan",
        root,
        "alice",
        &[&["--user", "alice", "--domain", "family.test"], more].concat(),
    );
    cli_in(
        net,
        "lan",
        root,
        "alice",
        &["sphere", "create", "Family", "--open"],
    );
    let file = root.join("holiday.mp4");
    let bytes = write_random(&file, 3_000_000, 21);
    cli_in(
        net,
        "lan",
        root,
        "alice",
        &["share", "Family", file.to_str().unwrap()],
    );
    wait_until("the share seeding", || {
        cli_in(net, "lan", root, "alice", &["shares", "Family"])
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["state"] == "seeding"))
    });
    (node, bytes)
}

/// Alice's link to her share (`link create`'s JSON).
fn make_link(net: &Net, root: &Path) -> serde_json::Value {
    cli_in(
        net,
        "lan",
        root,
        "alice",
        &["link", "create", "Family", "holiday.mp4"],
    )
}

/// `--public-web` behind a UPnP router: the node has the router forward its web port, and a
/// link names the router's outside address; someone on the internet side opens it and gets
/// the file, and gets nothing else of the node without logging in. When the node stops, the
/// mapping goes.
#[test]
fn a_link_opens_from_the_internet_when_the_router_forwards_the_web_port() {
    requirements();
    common::require("prosody");
    common::require("curl");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let net = Net::up("rchw", "igd2");
    let (mut node, bytes) = alice_sharing(&net, root, &["--public-web"]);
    let status = status_when(&net, root, "the web port forwarded", |s| {
        s["web"]["reach"] == "internet"
    });
    assert_eq!(status["web"]["url"], "http://25.0.0.1:8427", "{status}");
    assert!(
        status["public_pages"]
            .as_str()
            .is_some_and(|p| p.starts_with("http://25.0.0.1:8427/@alice/")),
        "{status}"
    );
    let link = make_link(&net, root);
    assert_eq!(link["reach"], "internet", "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://25.0.0.1:8427/l/"), "{url}");
    let (ok, page) = curl_in(&net, "net", &[&url]);
    assert!(ok && String::from_utf8_lossy(&page).contains("holiday.mp4"));
    let (ok, got) = curl_in(&net, "net", &[&format!("{url}/files/0")]);
    assert!(ok && got == bytes, "the file through the router");
    // Attack: the rest of the node is there too, and needs a login.
    let (ok, api) = curl_in(
        &net,
        "net",
        &[
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            "http://25.0.0.1:8427/api/status",
        ],
    );
    assert!(ok && api == b"401", "{}", String::from_utf8_lossy(&api));
    let (ok, _) = curl_in(
        &net,
        "net",
        &["-f", "http://25.0.0.1:8427/l/0123456789abcdef/files/0"],
    );
    assert!(!ok, "a made-up link gives nothing");
    node.terminate();
    assert!(node.wait_exit(), "the node did not stop cleanly");
    let (ok, _) = curl_in(&net, "net", &["--max-time", "3", &url]);
    assert!(!ok, "the mapping is gone once the node stopped");
}

/// `--public-web` behind a router that forwards nothing: links name the LAN address, and
/// the node says why in its status and when a link is made, with what to do.
#[test]
fn a_router_that_forwards_nothing_leaves_links_on_the_network_and_says_why() {
    requirements();
    common::require("prosody");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let net = Net::up("rchx", "none");
    let (_node, _) = alice_sharing(&net, root, &["--public-web"]);
    let status = status_when(&net, root, "the router's answer", |s| {
        s["web"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("did not forward"))
    });
    assert_eq!(status["web"]["reach"], "network", "{status}");
    assert_eq!(status["web"]["url"], "http://192.168.77.2:8427", "{status}");
    let link = make_link(&net, root);
    assert_eq!(link["reach"], "network", "{link}");
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("http://192.168.77.2:8427/l/")
    );
    // In words, to a person.
    let mut cmd = spheres();
    cmd.arg("--data-dir").arg(root.join("alice/data")).args([
        "link",
        "create",
        "Family",
        "holiday.mp4",
    ]);
    let (ok, text, stderr) = common::run(net.exec("lan", cmd));
    assert!(ok, "{stderr}");
    assert!(
        text.contains("this network only") && text.contains("UPnP or NAT-PMP"),
        "{text}"
    );
}

/// Runs `cmd` to success in the test's own process (not a namespace).
fn must(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ACME CA on the internet side: Debian's `pebble` (Let's Encrypt's test CA) at
/// 25.0.0.2:14000, checking names with TLS-ALPN-01 on port 8443, and `pebble-challtestsrv`
/// as its DNS, where every name leads to the router's outside address (as a public name of
/// the household's would). Returns the CA's processes and the authority of its own HTTPS
/// (what the node must trust to talk to it).
fn pebble_in(net: &Net, dir: &Path) -> (Vec<Proc>, PathBuf) {
    // Pebble's HTTPS: an authority of the test's and a certificate for 25.0.0.2.
    let ca = dir.join("pebble-ca.pem");
    let ca_key = dir.join("pebble-ca.key");
    let key = dir.join("pebble.key");
    let csr = dir.join("pebble.csr");
    let cert = dir.join("pebble.pem");
    let ext = dir.join("pebble.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:25.0.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let mut c = Command::new("openssl");
    c.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ])
    .args([
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=pebble test authority",
        "-keyout",
    ])
    .arg(&ca_key)
    .arg("-out")
    .arg(&ca);
    must(c);
    let mut c = Command::new("openssl");
    c.args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ])
    .args(["-subj", "/CN=pebble", "-keyout"])
    .arg(&key)
    .arg("-out")
    .arg(&csr);
    must(c);
    let mut c = Command::new("openssl");
    c.args(["x509", "-req", "-days", "2", "-set_serial", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert);
    must(c);
    let config = dir.join("pebble.json");
    std::fs::write(
        &config,
        serde_json::json!({"pebble": {
            "listenAddress": "25.0.0.2:14000",
            "managementListenAddress": "25.0.0.2:15000",
            "certificate": cert,
            "privateKey": key,
            "httpPort": 5002,
            "tlsPort": 8443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }})
        .to_string(),
    )
    .unwrap();
    let mut dns = Command::new("pebble-challtestsrv");
    dns.args(["-defaultIPv4", "25.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", "25.0.0.2:8053", "-management", "25.0.0.2:8055"])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""]);
    let dns = Proc::spawn("challtestsrv", net.exec("net", dns));
    let mut pebble = Command::new("pebble");
    pebble
        .arg("-config")
        .arg(&config)
        .args(["-dnsserver", "25.0.0.2:8053"])
        // No random waits before checking, and no nonces refused at random.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0");
    let pebble = Proc::spawn("pebble", net.exec("net", pebble));
    wait_until("pebble answering", || {
        curl_in(
            net,
            "net",
            &[
                "--cacert",
                ca.to_str().unwrap(),
                "https://25.0.0.2:14000/dir",
            ],
        )
        .0
    });
    (vec![dns, pebble], ca)
}

/// `--https` with `--public-url https://NAME`: the node has the router forward its HTTPS
/// port, gets a certificate for NAME from an ACME CA (Debian's pebble, which checks that
/// the name leads to the node through the router, TLS-ALPN-01), serves links there, and a
/// browser on the internet side that trusts the CA opens them; the link's torrent names the
/// secure tracker and web seed.
#[test]
fn links_over_https_with_a_certificate_from_an_acme_ca() {
    requirements();
    common::require("prosody");
    common::require("curl");
    common::require("openssl");
    common::require("pebble");
    common::require("pebble-challtestsrv");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let net = Net::up("rcha", "igd2");
    let (_ca, pebble_ca) = pebble_in(&net, root);
    let (_node, bytes) = alice_sharing(
        &net,
        root,
        &[
            "--public-web",
            "--public-url",
            "https://photos.family.test:8443",
            "--https",
            "0.0.0.0:8443",
            "--acme-directory",
            "https://25.0.0.2:14000/dir",
            "--acme-ca",
            pebble_ca.to_str().unwrap(),
            "--acme-email",
            "alice@family.test",
        ],
    );
    let status = status_when(&net, root, "a certificate", |s| {
        s["web"]["https"]["certified"] == true
    });
    assert_eq!(status["web"]["reach"], "public", "{status}");
    assert_eq!(status["web"]["url"], "https://photos.family.test:8443");
    // The CA's root, as a browser that trusts this CA has it.
    let (ok, root_pem) = curl_in(
        &net,
        "net",
        &[
            "--cacert",
            pebble_ca.to_str().unwrap(),
            "https://25.0.0.2:15000/roots/0",
        ],
    );
    assert!(ok);
    let trusted = root.join("acme-root.pem");
    std::fs::write(&trusted, root_pem).unwrap();
    let link = make_link(&net, root);
    assert_eq!(link["reach"], "public", "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://photos.family.test:8443/l/"),
        "{url}"
    );
    let browser = |extra: &[&str]| {
        let args = [
            &["--cacert", trusted.to_str().unwrap()],
            &["--resolve", "photos.family.test:8443:25.0.0.1"],
            extra,
        ]
        .concat();
        curl_in(&net, "net", &args)
    };
    let (ok, got) = browser(&[&format!("{url}/files/0")]);
    assert!(ok && got == bytes, "the file over HTTPS through the router");
    let (ok, torrent) = browser(&[&format!("{url}/torrent")]);
    let torrent = String::from_utf8_lossy(&torrent);
    let token = url.rsplit('/').next().unwrap();
    assert!(
        ok && torrent.contains(&format!("wss://photos.family.test:8443/l/{token}/tracker"))
            && torrent.contains(&format!("https://photos.family.test:8443/l/{token}/seed")),
        "{torrent}"
    );
    // Over the node's HTTPS, browsers are told to come back over HTTPS only, and a session
    // cookie is never sent over plain HTTP.
    let (ok, head) = browser(&["-D", "-", "-o", "/dev/null", &url]);
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        ok && head.contains("strict-transport-security: max-age="),
        "{head}"
    );
    let login = cli_in(&net, "lan", root, "alice", &["open"])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = &login[login.find("/login/").unwrap()..];
    let (ok, head) = browser(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("https://photos.family.test:8443{path}"),
    ]);
    let head = String::from_utf8_lossy(&head);
    assert!(
        ok && head
            .lines()
            .any(|l| l.to_lowercase().starts_with("set-cookie:") && l.contains("; Secure")),
        "{head}"
    );
    // Attack: a client that does not trust the CA gets no page (the certificate is the CA's,
    // not one the node made up).
    let (ok, _) = curl_in(
        &net,
        "net",
        &["--resolve", "photos.family.test:8443:25.0.0.1", &url],
    );
    assert!(!ok, "a certificate the system does not trust");
    // The certificate and the account key are kept, readable by the node's user only.
    let kept: Vec<_> = std::fs::read_dir(root.join("alice/data/acme"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert!(kept.len() >= 2, "{kept:?}");
    for e in kept {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            e.metadata().unwrap().permissions().mode() & 0o077,
            0,
            "{e:?}"
        );
    }
}
