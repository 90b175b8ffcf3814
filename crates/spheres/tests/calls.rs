//! Calls (issue 17) between the nodes of a household: two browsers call each other through
//! their nodes (media browser to browser, signalling over XMPP), and the nodes refuse what
//! they must: a call to someone who is not a contact or not online, a stranger's ring.

mod common;

use common::node::{
    Node, add_user, befriend, browsers, browsers_with, household, household_member,
    household_member_at, invite_to_family, raw_http, two_browsers, web_addr,
};
use common::wait_until;
use serde_json::Value;
use spheres_xmpp::call::{Ring, RingKind};
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event, Jid};

fn sees_online(n: &Node, jid: &str) -> bool {
    n.cli(&["contact", "list"])["contacts"]
        .as_array()
        .is_some_and(|c| c.iter().any(|p| p["jid"] == jid && p["online"] == true))
}

/// `METHOD path` on `n`'s API with the node's own token, as the CLI calls it: the status and
/// the JSON answer.
fn api(n: &Node, method: &str, path: &str, body: &str) -> (u16, Value) {
    let node: Value =
        serde_json::from_slice(&std::fs::read(n.data.join("node.json")).unwrap()).unwrap();
    let auth = format!("Authorization: Bearer {}", node["token"].as_str().unwrap());
    let (status, answer) = raw_http(
        &web_addr(n),
        (method, path),
        &[&auth, "Content-Type: application/json", "X-Spheres: 1"],
        (body.len(), body.as_bytes()),
    );
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// `POST /api/calls` on `n`: an audio call to `with`.
fn call(n: &Node, with: &str) -> (u16, Value) {
    let body = serde_json::json!({"with": with, "video": false, "tab": "t1"}).to_string();
    api(n, "POST", "/api/calls", &body)
}

/// Calls in Chromium, as two contacts use them: a video call rings bob's page whatever view
/// is open, he accepts, both pages get the other's video frames and sound (measured in the
/// page), alice turns her camera off and hangs up, bob's page says so; bob calls alice, who
/// declines; alice calls off before bob answers, a missed call for him on a phone's screen;
/// his conversation with her lists the three calls, from the archive; French; bob hides his
/// address from those he calls (Settings): her call goes through the household's TURN server
/// (coturn, credentials from Prosody over XEP-0215) and his page says so; no serious accessibility issue on the ringing panel (axe). The script:
/// tests/browser/call.mjs.
#[test]
fn two_browsers_call_each_other_through_their_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    wait_until("bob sees alice online", || {
        sees_online(&bob, "alice@family.test")
    });
    two_browsers(
        "call.mjs",
        &alice,
        &bob,
        &[
            "rang",
            "media_flows",
            "hung_up",
            "declined",
            "missed",
            "history",
            "french",
            "relayed",
            "ok",
        ],
    );
}

/// A call in a sphere, in Chromium, as three members use it (none of them contacts): alice
/// starts a video call from the sphere's page and waits alone; bob's and carol's pages show it
/// live, bob joins with video and carol, on a phone, without; each page holds a connection
/// with each other one and measures the others' sound (and video from those who send it);
/// the page says the media go straight between browsers; bob leaves and comes back; alice's
/// page closes and the others drop her; the last to leave ends it. The script:
/// tests/browser/groupcall.mjs.
#[test]
fn three_members_call_each_other_in_their_sphere() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    let carol = household_member(&alice, dir.path(), "carol", &[]);
    invite_to_family(&alice, &bob, "bob@family.test");
    invite_to_family(&alice, &carol, "carol@family.test");
    let everyone = ["alice@family.test", "bob@family.test", "carol@family.test"];
    for (n, me) in [
        (&alice, everyone[0]),
        (&bob, everyone[1]),
        (&carol, everyone[2]),
    ] {
        wait_until("the others in the sphere's room", || {
            n.cli(&["sphere", "members", "Family"])
                .as_array()
                .is_some_and(|m| {
                    everyone
                        .iter()
                        .filter(|j| **j != me)
                        .all(|j| m.iter().any(|p| p["jid"] == *j && p["online"] == true))
                })
        });
    }
    browsers(
        "groupcall.mjs",
        &[&alice, &bob, &carol],
        &[
            "started",
            "mesh",
            "direct",
            "left",
            "rejoined",
            "page_closed",
            "ok",
        ],
    );
}

/// The household's relay takes only credentials that have not expired: those Prosody hands
/// out (XEP-0215, through `/api/calls/ice`) get a relay from coturn and say they expire in an
/// hour; the same scheme with an expiry past, or with another secret, gets 401. The TURN client
/// is aioice's (tests/peers/turn_check.py), which we did not write.
#[test]
fn the_relays_credentials_expire() {
    common::require("turnserver");
    let dir = tempfile::tempdir().unwrap();
    let (alice, _bob) = household(dir.path());
    let (status, ice) = api(&alice, "GET", "/api/calls/ice", "");
    assert_eq!(status, 200, "{ice}");
    let turn = ice
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("turn:") && !u.contains("transport=tcp"))
        })
        .unwrap_or_else(|| panic!("a TURN server over UDP among {ice}"))
        .clone();
    let url = turn["urls"][0].as_str().unwrap();
    let addr = url.trim_start_matches("turn:").split('?').next().unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let user = turn["username"].as_str().unwrap();
    let password = turn["credential"].as_str().unwrap();
    let expiry: i64 = user.split(':').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 3000..=now + 3700).contains(&expiry),
        "the credentials last an hour: {user} at {now}"
    );
    let secret = turn_secret(&alice);
    let secret = secret.as_str();
    let check = |args: &[&str]| turn_check(None, host, port, args);
    let given = check(&["--user", user, "--password", password]);
    assert_eq!(
        given["ok"], true,
        "Prosody's credentials get a relay: {given}"
    );
    let fresh = check(&["--secret", secret, "--expires-in", "600", "--name", "alice"]);
    assert_eq!(fresh["ok"], true, "the same scheme, still valid: {fresh}");
    let expired = check(&["--secret", secret, "--expires-in", "-60", "--name", "alice"]);
    assert_eq!(expired["ok"], false, "expired credentials: {expired}");
    assert!(
        expired["error"].as_str().unwrap().contains("401"),
        "{expired}"
    );
    let forged = check(&["--secret", "not-the-secret", "--expires-in", "600"]);
    assert_eq!(forged["ok"], false, "another secret: {forged}");
}

/// The secret the household's relay shares with Prosody (in its configuration file).
fn turn_secret(owner: &Node) -> String {
    let conf = std::fs::read_to_string(owner.data.join("prosody/turn/turnserver.conf")).unwrap();
    conf.lines()
        .find_map(|l| l.strip_prefix("static-auth-secret="))
        .unwrap()
        .to_owned()
}

/// `tests/peers/turn_check.py HOST PORT ARGS` (aioice's TURN client), in network namespace
/// `netns` if given: its JSON answer.
fn turn_check(netns: Option<&str>, host: &str, port: &str, args: &[&str]) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/turn_check.py");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns, "/usr/bin/python3"]);
            c
        }
        None => std::process::Command::new("/usr/bin/python3"),
    };
    let out = stdout_of(
        cmd.arg(script).args([host, port]).args(args),
        "turn_check.py",
    );
    serde_json::from_slice(&out).unwrap()
}

/// What `cmd` prints, once it succeeded (`what` it is, and why it may fail, if not).
fn stdout_of(cmd: &mut std::process::Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The namespaces of `tests/peers/nat-netns.sh` (two homes behind NAT routers); removed on
/// drop.
struct Homes(&'static str);

fn nat_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/nat-netns.sh")
}

impl Homes {
    fn up(prefix: &'static str) -> Homes {
        Homes::up_with(prefix, "198.18.0")
    }

    /// With "the internet" on `wan` (its first three bytes).
    fn up_with(prefix: &'static str, wan: &str) -> Homes {
        let homes = Homes(prefix);
        homes.run(&["up", prefix], &[("WAN", wan)]);
        homes
    }

    /// Runs the script; its output.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = stdout_of(
            std::process::Command::new(nat_script())
                .args(args)
                .envs(env.iter().copied()),
            &format!("nat-netns.sh {args:?} (needs root, iproute2, nftables, miniupnpd)"),
        );
        String::from_utf8_lossy(&out).trim().to_owned()
    }
}

impl Drop for Homes {
    fn drop(&mut self) {
        let _ = std::process::Command::new(nat_script())
            .args(["down", self.0])
            .status();
    }
}

/// Calls across two home routers (network namespaces: each browser on a computer behind its
/// own NAT router, the nodes, Prosody and coturn on "the internet" between them): with two
/// routers that keep a computer's port for every destination, the call goes straight from
/// home to home (holes punched, no relay); once home b's router picks a new port for each
/// destination (symmetric NAT), only the household's relay gets it through, and both pages say
/// so. Video and sound measured both ways each time. The script: tests/browser/call-nat.mjs.
#[test]
fn calls_cross_two_home_routers() {
    common::require("nft");
    common::require("ip");
    common::require("turnserver");
    let homes = Homes::up("calls");
    let dir = tempfile::tempdir().unwrap();
    let internet = "198.18.0.10";
    let web = format!("{internet}:0");
    let mut alice = Node::new(dir.path(), "alice");
    alice.http = web.clone();
    alice.start(&[
        "--user",
        "alice",
        "--domain",
        "family.test",
        "--xmpp-listen",
        internet,
    ]);
    let bob = household_member_at(&alice, dir.path(), "bob", &[], &web);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    let envs = [
        ("NETNS_A", format!("{}-a", homes.0)),
        ("NETNS_B", format!("{}-b", homes.0)),
        ("NAT_SCRIPT", nat_script().display().to_string()),
        ("NAT_PREFIX", homes.0.to_owned()),
    ];
    browsers_with(
        "call-nat.mjs",
        &[&alice, &bob],
        &envs,
        &["direct", "relayed", "ok"],
    );
    drop(homes);
}

/// The household's relay reaches beyond its home router (network namespaces): alice's node
/// runs the household (Prosody and coturn) on a computer in home a, whose router forwards the
/// ports its computers ask for (Debian's miniupnpd); bob is elsewhere, his node on "the
/// internet" (on alice's household server through a port its owner forwarded by hand) and his
/// browser behind a router that picks a new port for each destination, so no direct path
/// exists. The node has the router forward the relay's port and its block of relay ports;
/// status says the relay is reached from the internet, and where; the call gets through, with
/// video and sound both ways, and alice's Settings say so. When the node stops, the router
/// forwards nothing any more.
#[test]
fn the_households_relay_is_reached_through_its_router() {
    for tool in ["nft", "ip", "turnserver", "/usr/sbin/miniupnpd"] {
        common::require(tool);
    }
    let homes = Homes::up_with("relay", "25.9.0");
    let leases = homes.run(&["upnp", "relay", "a"], &[]);
    homes.run(&["nat", "relay", "b", "symmetric"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.netns = Some("relay-a".into());
    alice.http = "192.168.1.2:0".into();
    alice.start(&[
        "--user",
        "alice",
        "--domain",
        "family.test",
        "--xmpp-listen",
        "192.168.1.2",
    ]);
    let mut relay = serde_json::Value::Null;
    let asked = std::time::Instant::now();
    wait_until("the router forwards the relay", || {
        relay = alice.cli(&["status"])["household"]["relay"].clone();
        relay["asking"] != true
    });
    eprintln!(
        "the router forwarded the relay's ports in {:?}",
        asked.elapsed()
    );
    assert_eq!(relay["reach"], "internet", "{relay}");
    let outside = relay["outside"].as_str().unwrap().to_owned();
    assert!(outside.starts_with("25.9.0.1:"), "{relay}");
    let (first, last) = relay["ports"].as_str().unwrap().split_once('-').unwrap();
    let (first, last): (u16, u16) = (first.parse().unwrap(), last.parse().unwrap());
    // The block of relay ports (32; a router may tire before the end of it).
    assert!((8..=32).contains(&(last - first + 1)), "{relay}");
    // The router's own list: the relay's port (UDP and TCP) and every relay port said, to
    // alice, on the same numbers.
    let forwarded = std::fs::read_to_string(&leases).unwrap();
    for port in first..=last {
        assert!(
            forwarded.contains(&format!("UDP:{port}:192.168.1.2:{port}:")),
            "relay port {port} forwarded: {forwarded}"
        );
    }
    // (One more when the router forwarded a port after the node gave up waiting for it.)
    let lines = forwarded.lines().count();
    let said = usize::from(last - first) + 3;
    assert!((said..=said + 1).contains(&lines), "{relay}: {forwarded}");

    // From elsewhere, with credentials the household server hands out (a TURN client we did
    // not write, aioice): a relay from the router's outside address, which relays to the
    // internet and to the computer it runs on, never to the home network's others.
    let secret = turn_secret(&alice);
    let (host, port) = outside.split_once(':').unwrap();
    let through = |peer: &str, echo: bool| {
        let mut args = vec!["--secret", &secret, "--expires-in", "600", "--peer", peer];
        if echo {
            args.push("--echo");
        }
        turn_check(Some("relay-b"), host, port, &args)
    };
    // Someone on the internet who answers: the answer comes in through a relay port the
    // router forwards.
    let echo = std::net::UdpSocket::bind("25.9.0.10:0").unwrap();
    echo.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let peer = echo.local_addr().unwrap().to_string();
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let (n, from) = echo.recv_from(&mut buf)?;
        echo.send_to(&buf[..n], from)
    });
    let to_internet = through(&peer, true);
    assert_eq!(to_internet["ok"], true, "{to_internet}");
    assert!(
        to_internet["relay"]
            .as_str()
            .unwrap()
            .starts_with("25.9.0.1:"),
        "{to_internet}"
    );
    assert_eq!(to_internet["peer"], "sent", "{to_internet}");
    assert_eq!(
        to_internet["echo"], "heard",
        "the answer through the router: {to_internet}"
    );
    answering.join().unwrap().unwrap();
    assert_eq!(
        through("192.168.1.2:9", false)["peer"],
        "sent",
        "the relay's own computer"
    );
    let to_lan = through("192.168.1.1:9", false);
    assert!(
        to_lan["peer"].as_str().unwrap().contains("403"),
        "a computer of the home network from outside: {to_lan}"
    );

    // Bob, elsewhere.
    let household = alice.cli(&["status"])["household"].clone();
    let c2s: std::net::SocketAddr = household["c2s"].as_str().unwrap().parse().unwrap();
    homes.run(&["forward", "relay", "a", &c2s.port().to_string()], &[]);
    let pw = add_user(&alice, dir.path(), "bob");
    let mut bob = Node::new(dir.path(), "bob");
    bob.http = "25.9.0.10:0".into();
    bob.extra = vec![
        "--jid".into(),
        "bob@family.test".into(),
        "--password-file".into(),
        pw.to_string_lossy().into_owned(),
        "--xmpp-server".into(),
        format!("25.9.0.1:{}", c2s.port()),
        "--xmpp-ca".into(),
        household["ca"].as_str().unwrap().to_owned(),
    ];
    bob.start(&[]);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    let envs = [
        ("NETNS_A", "relay-a".to_owned()),
        ("NETNS_B", "relay-b".to_owned()),
        ("NAT_SCRIPT", nat_script().display().to_string()),
        ("NAT_PREFIX", "relay".to_owned()),
        ("STAGES", "outside".to_owned()),
        ("RELAY_OUTSIDE", outside.clone()),
    ];
    browsers_with("call-nat.mjs", &[&alice, &bob], &envs, &["outside", "ok"]);

    bob.stop();
    alice.stop();
    // Nothing the node said it had forwarded is forwarded any more (a port the router
    // forwarded after the node stopped waiting for its answer stays until its lease ends).
    let forwarded = std::fs::read_to_string(&leases).unwrap();
    let listening: u16 = outside.rsplit_once(':').unwrap().1.parse().unwrap();
    for line in forwarded.lines() {
        let port: u16 = line.split(':').nth(1).unwrap().parse().unwrap();
        assert!(
            port != listening && !(first..=last).contains(&port),
            "the router forwards nothing of the node's once it stopped: {forwarded}"
        );
    }
    assert!(forwarded.lines().count() <= 1, "{forwarded}");
    drop(homes);
}

/// A call goes only to a contact who is online, with a message that says what to do; a
/// stranger who rings (anyone may send a message) rings nothing and hears nothing back, not
/// even that the node is there.
#[test]
fn calls_reach_contacts_only_and_strangers_hear_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, mut bob) = household(dir.path());
    add_user(&alice, dir.path(), "eve");
    let (status, answer) = call(&alice, "bob@family.test");
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("not one of your contacts")
    );
    let (status, _) = call(&alice, "alice@family.test");
    assert_eq!(status, 400, "calling oneself");

    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    wait_until("bob sees alice online", || {
        sees_online(&bob, "alice@family.test")
    });

    // Eve, a stranger on the same server, rings bob, then says hello.
    let household = alice.cli(&["status"])["household"].clone();
    let mut config = ConnectConfig::new(BareJid::new("eve@family.test").unwrap(), "eve-secret");
    config.server = Some(household["c2s"].as_str().unwrap().parse().unwrap());
    config.extra_ca = Some(household["ca"].as_str().unwrap().into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (eve, mut heard) = rt.block_on(Client::connect(config)).unwrap();
    let bob_jid = Jid::new("bob@family.test").unwrap();
    rt.block_on(async {
        // Online, so what bob's node sends her comes to this client.
        eve.available().await.unwrap();
        let ring = Ring::new("eve-call-1", RingKind::Propose { video: true });
        eve.send(ring.to_message(bob_jid.clone(), "m1"))
            .await
            .unwrap();
        eve.send_chat(&BareJid::new("bob@family.test").unwrap(), "hello")
            .await
            .unwrap();
    });
    // Bob's node took the hello, so it took the ring before it (one sender, in order).
    wait_until("bob's node hears eve's hello", || {
        bob.cli(&["chat", "eve@family.test"])
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["body"] == "hello"))
    });
    let (_, calls) = api(&bob, "GET", "/api/calls", "");
    assert_eq!(
        calls,
        serde_json::json!([]),
        "a stranger's call rings nothing"
    );
    // Bob answers eve's hello: anything his node sent her about the call would come first.
    bob.cli(&["chat", "eve@family.test", "who is this?"]);
    rt.block_on(async {
        loop {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(30), heard.recv())
                .await
                .expect("bob's answer in time")
                .expect("eve's client runs");
            if let Event::Message(m) = ev {
                assert!(
                    Ring::from_message(&m).is_none(),
                    "bob's node told a stranger about the call: {m:?}"
                );
                if m.bodies.values().any(|b| b == "who is this?") {
                    break;
                }
            }
        }
    });

    // Bob goes offline: alice's call says so, and what to do.
    bob.stop();
    wait_until("alice sees bob offline", || {
        !sees_online(&alice, "bob@family.test")
    });
    let (status, answer) = call(&alice, "bob@family.test");
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("not online"));
}

/// A Jingle peer we did not write (slixmpp for XMPP, aiortc for WebRTC, with its own SDP to
/// Jingle mapping: tests/peers/jingle_peer.py) calls alice's page and is called by it: each
/// time both ends get the other's video frames and sound (aiortc counts what it decodes, the
/// page measures what it plays), and a hang-up on either side ends the call on the other.
/// Then it joins a call in a sphere (XEP-0272 presence in the sphere's room, the session
/// opened by the newcomer as Dino does) and media flows both ways again.
/// The page's script: tests/browser/call-interop.mjs.
#[test]
fn an_independent_jingle_peer_calls_a_page_and_is_called() {
    for tool in ["node", "/usr/bin/chromium", "/usr/bin/python3"] {
        common::require(tool);
    }
    let (ok, _, err) = common::run({
        let mut c = std::process::Command::new("/usr/bin/python3");
        c.args(["-c", "import slixmpp, aiortc"]);
        c
    });
    assert!(
        ok,
        "slixmpp or aiortc missing: run scripts/install-test-deps ({err})"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    add_user(&alice, dir.path(), "dave");
    // Dave is a member of Family (his client joins its room; it has no node to accept).
    alice.cli(&["sphere", "create", "Family"]);
    alice.cli(&["sphere", "invite", "Family", "dave@family.test"]);
    let room = alice
        .cli(&["sphere", "list"])
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "Family"))
        .and_then(|s| s["room"].as_str())
        .unwrap()
        .to_owned();
    let household = alice.cli(&["status"])["household"].clone();
    let c2s = household["c2s"].as_str().unwrap().to_owned();
    let (host, port) = c2s.rsplit_once(':').unwrap();
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers");
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg(peers.join("jingle_peer.py")).args([
        "dave@family.test",
        "dave-secret",
        host,
        port,
        household["ca"].as_str().unwrap(),
        "alice@family.test",
    ]);
    let mut dave = common::Proc::spawn_interactive("jingle peer", cmd);
    dave.wait_event("online");
    // Alice asks; dave's client accepts and asks back, as slixmpp does by default.
    alice.cli(&["contact", "add", "dave@family.test"]);
    wait_until("alice sees dave online", || {
        sees_online(&alice, "dave@family.test")
    });

    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(browser_dir.join("call-interop.mjs"))
        .env("NODE_A", alice.cli(&["status"])["http"].as_str().unwrap())
        .env("DATA_A", &alice.data)
        .env("SHOTS", &shots);
    let mut page = common::Proc::spawn_interactive("call interop page", cmd);
    // A failure says what both sides printed.
    let wait = |p: &mut common::Proc, stage: &str, other: &mut common::Proc| {
        if let Err(why) = p.try_wait_event(stage) {
            panic!("{why}\n{}", other.report());
        }
    };
    wait(&mut page, "ready", &mut dave);

    // Dave calls; alice's page answers; he hangs up.
    dave.send("call");
    wait(&mut page, "got_media", &mut dave);
    let media = dave.wait_event("media");
    assert!(media["video_frames"].as_u64().unwrap() >= 30, "{media}");
    dave.send("hangup");
    dave.wait_event("hung_up");
    wait(&mut page, "they_hung_up", &mut dave);

    // Alice calls; dave answers by himself; she hangs up.
    wait(&mut page, "got_media_2", &mut dave);
    let media = dave.wait_event("media");
    assert!(media["loudest"].as_f64().unwrap() > 0.01, "{media}");
    page.send("hangup");
    let end = dave.wait_event("terminated");
    assert_eq!(end["reason"], "success");

    // Alice calls everyone in Family; dave (a member) joins the room's call and opens the
    // session himself; media both ways; he leaves.
    wait(&mut page, "in_sphere_call", &mut dave);
    dave.send(&format!("join {room}"));
    let joined = dave.wait_event("joined");
    assert_eq!(
        joined["in_call"].as_array().map(Vec::len),
        Some(1),
        "{joined}"
    );
    wait(&mut page, "group_media", &mut dave);
    let media = dave.wait_event("media");
    assert!(media["video_frames"].as_u64().unwrap() >= 30, "{media}");
    dave.send("leave");
    dave.wait_event("left");
    page.send("left");
    wait(&mut page, "ok", &mut dave);
    assert!(page.wait_exit(), "the interop page failed: {:?}", page.seen);
}
