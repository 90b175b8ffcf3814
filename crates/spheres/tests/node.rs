//! The node end to end: several `spheres up` processes, a real Prosody, real files.
//! Every wait is on a condition with a bound; every copy is compared byte for byte.

mod common;

use std::io::Write;
use std::path::Path;

use common::node::{
    Node, announce_of, household, household_nodes, invite_and_join, test_prosody, tracker_refuses,
    wait_seeding,
};
use common::{Proc, assert_same_tree, spheres, wait_until, write_random};
use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};

/// The README's first command in miniature: a node with nothing configured runs its own
/// household server and creates the owner's account; a second person gets an account on it,
/// is invited, joins, and receives a share byte for byte. Removing them closes the tracker.
#[test]
fn a_household_node_shares_with_an_invited_member() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = household(dir.path());
    assert!(
        alice.spheres.join("Family").is_dir(),
        "a sphere is a folder"
    );

    // Alice shares before bob is even invited: he catches up from the room's archive.
    let video = dir.path().join("holiday.mp4");
    let data = write_random(&video, 5_000_003, 7);
    let shared = alice.cli(&["share", "Family", video.to_str().unwrap()]);
    let hash = shared["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(
        alice.share_state("Family", "holiday.mp4").unwrap()["state"],
        "seeding"
    );

    invite_and_join(&alice, &bob);
    wait_seeding(&bob, "Family", "holiday.mp4");
    assert!(std::fs::read(bob.spheres.join("Family/holiday.mp4")).unwrap() == data);

    // Both see each other as members, online.
    let members = alice.cli(&["sphere", "members", "Family"]);
    let bob_entry = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["jid"] == "bob@family.test")
        .expect("bob is a member")
        .clone();
    assert_eq!(bob_entry["affiliation"], "member");
    assert_eq!(bob_entry["online"], true);

    // Bob shares a folder back; alice gets an identical tree.
    let photos = dir.path().join("bob-photos/Photos");
    for i in 0..100 {
        write_random(
            &photos.join(format!("IMG_{i:03}.jpg")),
            20_000 + i * 997,
            100 + i as u64,
        );
    }
    bob.cli(&["share", "Family", photos.to_str().unwrap()]);
    wait_seeding(&alice, "Family", "Photos");
    assert_same_tree(&photos, &alice.spheres.join("Family/Photos"));

    // On demand: with policy none, a new share is listed but not fetched until asked for.
    let err = bob.cli_fails(&["sphere", "policy", "Family", "sometimes"]);
    assert!(err.contains("is not a policy"), "{err}");
    assert_eq!(
        bob.cli(&["sphere", "policy", "Family", "none"])["policy"],
        "none"
    );
    let doc = dir.path().join("report.pdf");
    let doc_data = write_random(&doc, 700_001, 8);
    alice.cli(&["share", "Family", doc.to_str().unwrap()]);
    wait_until("the report listed on bob's node", || {
        bob.share_state("Family", "report.pdf")
            .is_some_and(|s| s["state"] == "available")
    });
    assert!(!bob.spheres.join("Family/report.pdf").exists());
    bob.cli(&["fetch", "Family", "report.pdf"]);
    wait_seeding(&bob, "Family", "report.pdf");
    assert!(std::fs::read(bob.spheres.join("Family/report.pdf")).unwrap() == doc_data);

    // Bob's own tracker key works; once removed, the tracker refuses it.
    wait_until("bob's tracker key", || {
        announce_of(&bob, "Family").is_some()
    });
    let key_url = announce_of(&bob, "Family").unwrap();
    assert!(
        !tracker_refuses(&key_url, &hash),
        "a member's key must work"
    );
    alice.cli(&["sphere", "remove", "Family", "bob@family.test"]);
    assert!(
        tracker_refuses(&key_url, &hash),
        "a removed member's key must be refused"
    );
    let members = alice.cli(&["sphere", "members", "Family"]);
    assert!(
        !members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["jid"] == "bob@family.test")
    );

    // Clear errors for mistakes.
    let err = alice.cli_fails(&["share", "Nope", video.to_str().unwrap()]);
    assert!(err.contains("no sphere named"), "{err}");
    let err = bob.cli_fails(&["sphere", "invite", "Family", "carol@family.test"]);
    assert!(err.contains("only the sphere's owner"), "{err}");

    alice.stop();
    bob.stop();
    assert!(
        !alice.data.join("node.json").exists(),
        "a stopped node leaves no node.json"
    );
    let err = alice.cli_fails(&["status"]);
    assert!(err.contains("no node is running"), "{err}");
}

/// Three members on one server: carol is offline during the share and catches up; alice goes
/// offline once bob has it, and carol still completes from bob; bob is killed (-9) in the
/// middle of a download and, restarted, completes without starting over.
#[test]
fn members_catch_up_fetch_from_each_other_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, s) = test_prosody(dir.path(), &["alice", "bob", "carol"]);
    let mut alice = Node::on(dir.path(), "alice", &s);
    let mut bob = Node::on(dir.path(), "bob", &s);
    let mut carol = Node::on(dir.path(), "carol", &s);
    alice.start(&[]);
    bob.start(&[]);
    carol.start(&[]);
    alice.cli(&["sphere", "create", "Family"]);
    for n in [&bob, &carol] {
        alice.cli(&[
            "sphere",
            "invite",
            "Family",
            &format!("{}@home.test", n.name),
        ]);
        wait_until("the invitation", || {
            n.cli(&["sphere", "invites"])
                .as_array()
                .is_some_and(|l| !l.is_empty())
        });
        n.cli(&["sphere", "join", "Family"]);
        // The owner's grant (tracker key and swarm secret) came: members can trade without
        // the owner from now on.
        wait_until("the owner's grant", || announce_of(n, "Family").is_some());
    }
    // Carol goes offline before anything is shared.
    carol.stop();

    let film = dir.path().join("film.mkv");
    let film_data = write_random(&film, 200_000_000, 11);
    alice.cli(&["share", "Family", film.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "film.mkv");
    assert!(std::fs::read(bob.spheres.join("Family/film.mkv")).unwrap() == film_data);

    // Alice leaves for the day; carol comes back and gets the film from bob alone.
    alice.stop();
    carol.start(&[]);
    wait_seeding(&carol, "Family", "film.mkv");
    assert!(std::fs::read(carol.spheres.join("Family/film.mkv")).unwrap() == film_data);

    // Bob restarts with a slow download limit, so a kill -9 lands in the middle of a transfer.
    let big = dir.path().join("big.bin");
    let big_data = write_random(&big, 24_000_000, 12);
    bob.stop();
    bob.start(&["--download-limit", "4M"]);
    carol.cli(&["share", "Family", big.to_str().unwrap()]);
    let mut had = 0;
    wait_until("bob to be partway", || {
        had = bob
            .share_state("Family", "big.bin")
            .and_then(|s| s["have_bytes"].as_u64())
            .unwrap_or(0);
        had >= 4_000_000
    });
    bob.crash();
    // Nothing claims to be complete: the partial download is out of sight, not at its name.
    assert!(
        !bob.spheres.join("Family/big.bin").exists(),
        "a partial download sits at its final name after kill -9"
    );
    bob.start(&["--download-limit", "4M"]);
    // Resumed, not restarted: once the engine has checked what is on disk, what was
    // verified before the crash is still there (at 4 MB/s, starting over would show ~0).
    let mut after_restart = 0;
    wait_until("bob's engine to check the partial download", || {
        let Some(s) = bob.share_state("Family", "big.bin") else {
            return false;
        };
        after_restart = s["have_bytes"].as_u64().unwrap_or(0);
        matches!(s["transfer"].as_str(), Some("downloading" | "seeding"))
    });
    assert!(
        after_restart >= had / 2,
        "bob restarted from {after_restart} bytes after having {had}"
    );
    wait_seeding(&bob, "Family", "big.bin");
    assert!(std::fs::read(bob.spheres.join("Family/big.bin")).unwrap() == big_data);
    bob.stop();
    carol.stop();
}

/// A member with nothing but an ordinary XMPP client (slixmpp) and an ordinary BitTorrent
/// client (libtorrent), in a sphere whose owner lets members' plain clients in
/// (`clients:plain`): the .torrent taken out of the announcement works as it is.
#[test]
fn a_plain_xmpp_client_and_libtorrent_fetch_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    let running = alice.start(&["--user", "alice", "--domain", "family.test"]);
    let c2s: std::net::SocketAddr = running["household"]["c2s"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ca = running["household"]["ca"].as_str().unwrap().to_owned();
    alice.cli(&["sphere", "create", "Family", "--open"]);
    assert_eq!(
        alice.cli(&["sphere", "policy", "Family", "clients:plain"])["policy"],
        "clients:plain"
    );
    common::node::add_user(&alice, dir.path(), "dave");
    alice.cli(&["sphere", "invite", "Family", "dave@family.test"]);
    let room = alice.cli(&["sphere", "list"])[0]["room"]
        .as_str()
        .unwrap()
        .to_owned();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/slix_peer.py");
    let mut slix_cmd = std::process::Command::new("/usr/bin/python3");
    slix_cmd.arg(script).args([
        "dave@family.test",
        "dave-secret",
        "127.0.0.1",
        &c2s.port().to_string(),
        &ca,
        &room,
    ]);
    let mut slix = Proc::spawn("slixmpp", slix_cmd);
    slix.wait_event("joined");

    let letter = dir.path().join("lettre à mamie.pdf");
    let data = write_random(&letter, 3_000_017, 21);
    alice.cli(&["share", "Family", letter.to_str().unwrap()]);
    let share = slix.wait_event("share");
    assert_eq!(share["name"], "lettre à mamie.pdf");
    use base64::Engine as _;
    let torrent = base64::engine::general_purpose::STANDARD
        .decode(share["torrent"].as_str().unwrap())
        .unwrap();
    let torrent_file = dir.path().join("from-the-room.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();

    // libtorrent finds alice's node through the tracker named in the torrent, nothing else.
    let out = dir.path().join("dave-downloads");
    let mut lt = common::lt_peer();
    lt.arg("leech")
        .arg(&torrent_file)
        .arg(&out)
        .args(["--timeout", "60", "--no-utp"]);
    let mut leech = Proc::spawn("libtorrent", lt);
    assert!(
        leech.wait_exit(),
        "libtorrent did not complete: {:?}",
        leech.seen
    );
    assert!(std::fs::read(out.join("lettre à mamie.pdf")).unwrap() == data);
    drop(slix);
    alice.stop();
}

/// Copying into the sphere's folder is sharing: a folder written file by file becomes one
/// share once it stops changing; a public .torrent dropped in is passed on as it is, and
/// members fetch it through its own tracker from a libtorrent seed.
#[test]
fn dropping_into_the_sphere_folder_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = household(dir.path());
    invite_and_join(&alice, &bob);

    // A folder arriving slowly, as a file manager copies it.
    let trip = alice.spheres.join("Family/Trip to Lyon");
    let mut files = Vec::new();
    for i in 0..5 {
        let f = trip.join(format!("DSC{i:04}.jpg"));
        files.push(write_random(&f, 150_000 + i * 13, 300 + i as u64));
    }
    wait_seeding(&bob, "Family", "Trip to Lyon");
    assert_same_tree(&trip, &bob.spheres.join("Family/Trip to Lyon"));
    let shares = alice.cli(&["shares", "Family"]);
    let trips = shares
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "Trip to Lyon")
        .count();
    assert_eq!(trips, 1, "a folder is one share: {shares}");
    // Hidden and partial files are not shared.
    std::fs::write(alice.spheres.join("Family/.hidden"), b"x").unwrap();
    std::fs::write(alice.spheres.join("Family/film.mkv.part"), b"x").unwrap();

    // A public torrent, seeded by libtorrent through an open tracker of its own.
    let t = common::tracker(&[]);
    let seed_dir = dir.path().join("public");
    let song = write_random(&seed_dir.join("song.flac"), 1_500_000, 77);
    let torrent = dir.path().join("song.flac.torrent");
    common::create(
        &seed_dir.join("song.flac"),
        &torrent,
        &["--tracker", &format!("http://{}/announce", t.http)],
    );
    let mut lt = common::lt_peer();
    lt.arg("seed").arg(&torrent).arg(&seed_dir).arg("--no-utp");
    let mut seeder = Proc::spawn("libtorrent seed", lt);
    seeder.wait_event("seeding");
    std::fs::copy(&torrent, alice.spheres.join("Family/song.flac.torrent")).unwrap();
    // A public torrent: bob's node lists it and waits for him to say so (a member must not
    // make the others join a public swarm).
    wait_until("the public torrent listed on bob's node", || {
        bob.share_state("Family", "song.flac")
            .is_some_and(|s| s["state"] == "available")
    });
    bob.cli(&["fetch", "Family", "song.flac"]);
    wait_seeding(&bob, "Family", "song.flac");
    wait_seeding(&alice, "Family", "song.flac");
    assert!(std::fs::read(bob.spheres.join("Family/song.flac")).unwrap() == song);
    let names: Vec<String> = alice
        .cli(&["shares", "Family"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with('.') || n.ends_with(".part")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".torrent")), "{names:?}");

    // A magnet link in a text file: alice's node fetches the metadata from the seed it finds
    // through the magnet's tracker, then passes the torrent on like a dropped .torrent.
    let poem_dir = dir.path().join("public-2");
    let poem = write_random(&poem_dir.join("poem.txt"), 700_000, 78);
    let made = common::create(
        &poem_dir.join("poem.txt"),
        &dir.path().join("poem.torrent"),
        &["--tracker", &format!("http://{}/announce", t.http)],
    );
    let magnet = made["magnet"].as_str().unwrap().to_owned();
    assert!(magnet.contains("&tr="), "{magnet}");
    let mut lt = common::lt_peer();
    lt.arg("seed")
        .arg(dir.path().join("poem.torrent"))
        .arg(&poem_dir)
        .arg("--no-utp");
    let mut seeder2 = Proc::spawn("libtorrent seed 2", lt);
    seeder2.wait_event("seeding");
    // This time bob lets public torrents in by policy.
    assert_eq!(
        bob.cli(&["sphere", "policy", "Family", "public:allow"])["policy"],
        "public:allow"
    );
    std::fs::write(
        alice.spheres.join("Family/poem.magnet"),
        format!("{magnet}\n"),
    )
    .unwrap();
    wait_seeding(&bob, "Family", "poem.txt");
    assert!(std::fs::read(bob.spheres.join("Family/poem.txt")).unwrap() == poem);
    wait_seeding(&alice, "Family", "poem.txt");
    alice.stop();
    bob.stop();
}

/// Someone with no account gets a link; their node creates the account on the household
/// server with it and joins the sphere by itself, and can share at once. An always-on
/// (headless) member accepts its invitation by itself and keeps everything.
#[test]
fn an_invitation_link_and_an_always_on_member() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = household(dir.path());

    // Léa has nothing but the link.
    let link = alice.cli(&["sphere", "invite-link", "Family"])["link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(link.starts_with("spheres:join?"), "{link}");
    let mut lea = Node::new(dir.path(), "lea");
    let running = lea.start(&["--invite", &link, "--user", "lea"]);
    assert_eq!(running["jid"], "lea@family.test");
    wait_until("léa in the sphere", || {
        lea.cli(&["sphere", "list"])
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["name"] == "Family"))
    });
    // The link worked once; it cannot make a second account.
    let mut again = Node::new(dir.path(), "mallory");
    let mut cmd = spheres();
    cmd.arg("--data-dir")
        .arg(&again.data)
        .args(["up", "--http", "127.0.0.1:0", "--spheres-dir"])
        .arg(&again.spheres)
        .args(["--invite", &link, "--user", "mallory"]);
    let (ok, _, stderr) = common::run(cmd);
    assert!(
        !ok && stderr.contains("invitation is not valid"),
        "{stderr}"
    );
    again.proc = None;

    // Bob's headless node accepts his invitation by itself.
    bob.stop();
    bob.start(&["--headless", "--accept-invites-from", "family.test"]);
    alice.cli(&["sphere", "invite", "Family", "bob@family.test"]);
    wait_until("bob's headless node in the sphere", || {
        bob.cli(&["sphere", "list"])
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["name"] == "Family"))
    });

    // Léa shares; the always-on node fetches and keeps it, like everything in its spheres.
    let clip = dir.path().join("clip.webm");
    let data = write_random(&clip, 8_000_000, 31);
    lea.cli(&["share", "Family", clip.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "clip.webm");
    assert!(std::fs::read(bob.spheres.join("Family/clip.webm")).unwrap() == data);
    wait_seeding(&alice, "Family", "clip.webm");
    alice.stop();
    lea.stop();
    bob.stop();
}

/// The household server crashes: the node restarts it, both nodes reconnect by themselves,
/// rejoin the sphere, and sharing works again.
#[test]
fn the_household_server_is_restarted_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = household(dir.path());
    invite_and_join(&alice, &bob);
    let pidfile = alice.data.join("prosody/prosody.pid");
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Back once the server answers again: alice's node can make a room.
    wait_until("the household server back", || {
        spheres()
            .arg("--data-dir")
            .arg(&alice.data)
            .args(["sphere", "create", "After the crash"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let new_pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    assert_ne!(new_pid, pid, "a new server process");
    let note = dir.path().join("note.txt");
    let data = write_random(&note, 10_000, 41);
    alice.cli(&["share", "Family", note.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "note.txt");
    assert!(std::fs::read(bob.spheres.join("Family/note.txt")).unwrap() == data);
    alice.stop();
    bob.stop();
}

/// The web interface, in two real browsers (Debian's Chromium driven by playwright-core):
/// tests/browser/ui.mjs. Bob's node downloads slowly, so his video plays before it is all
/// there. Screenshots go to target/screenshots/.
#[test]
fn the_web_interface_in_two_browsers() {
    for tool in ["node", "/usr/bin/chromium", "ffmpeg"] {
        common::require(tool);
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/install-test-deps"
    );
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.webm");
    let (ok, _, stderr) = common::run({
        let mut c = std::process::Command::new("ffmpeg");
        // Noise keeps the bit rate up (about 6 MB), so the slow download below takes a while.
        c.args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=40:size=640x360:rate=25",
        ])
        .args([
            "-vf",
            "noise=alls=30:allf=t",
            "-c:v",
            "libvpx",
            "-b:v",
            "1200k",
        ])
        .args(["-deadline", "realtime", "-cpu-used", "8", "-g", "25"])
        .arg(&video);
        c
    });
    assert!(ok, "ffmpeg: {stderr}");
    let (mut alice, mut bob) = household_nodes(dir.path(), &["--download-limit", "300K"]);
    // Reached from "another device" by a name of its own (see ui.mjs), which it must know.
    alice.stop();
    alice.start(&["--http-host", "alice-node.test"]);
    // Bob's node restarts during the test: its web port must stay the same.
    bob.stop();
    bob.http = format!("127.0.0.1:{}", common::free_port());
    bob.start(&["--download-limit", "300K"]);
    // Carol: a node on its defaults (its own household), until she takes alice's link.
    let mut carol = Node::new(dir.path(), "carol");
    carol.start(&["--user", "carol"]);
    // Dave has an account on alice's server already, and signs in with it in the page; his
    // node trusts the household's CA as any node told `--xmpp-ca` does.
    common::node::add_user(&alice, dir.path(), "dave");
    let household = alice.cli(&["status"])["household"].clone();
    let mut dave = Node::new(dir.path(), "dave");
    dave.start(&[
        "--user",
        "dave",
        "--xmpp-ca",
        household["ca"].as_str().unwrap(),
    ]);
    let web = |n: &Node| n.cli(&["status"])["http"].as_str().unwrap().to_owned();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(browser_dir.join("ui.mjs"))
        .env("NODE_A", web(&alice))
        .env("NODE_B", web(&bob))
        .env("NODE_C", web(&carol))
        .env("NODE_D", web(&dave))
        .env("DATA_A", &alice.data)
        .env("DATA_B", &bob.data)
        .env("DATA_C", &carol.data)
        .env("DATA_D", &dave.data)
        .env("XMPP_SERVER", household["c2s"].as_str().unwrap())
        .env("BOB", "bob@family.test")
        .env("VIDEO", &video)
        .env("SHOTS", &shots);
    let mut ui = Proc::spawn("browser test", cmd);
    // Midway, the page asks for bob's node to restart (it must reconnect by itself).
    // Each stage has its own bound: the whole script takes longer than one on a busy machine.
    let stages = [
        "browser_up",
        "link_made",
        "carol_join_clicked",
        "carol_joined",
        "dave_signed_in",
        "first_load",
        "restart_b",
        "b_back",
        "ok",
    ];
    for stage in stages {
        if stage == "b_back" {
            bob.stop();
            bob.start(&[]);
        }
        if let Err(why) = ui.try_wait_event(stage) {
            // What each node said of itself, to tell why (a node that stopped says so here).
            let nodes: Vec<String> = [&mut alice, &mut bob, &mut carol, &mut dave]
                .into_iter()
                .map(|n| n.report())
                .collect();
            panic!("{why}\n{}", nodes.join("\n"));
        }
    }
    let ok = ui.wait_exit();
    assert!(ok, "the browser test failed; it printed {:?}", ui.seen);
    alice.stop();
    bob.stop();
    carol.stop();
    dave.stop();
}

/// `raw_http` as the node's own page makes it: with a session and `X-Spheres: 1`.
fn page_http(
    addr: &str,
    cookie: &str,
    method: &str,
    path: &str,
    body: (usize, &[u8]),
) -> (u16, String) {
    common::node::raw_http(addr, (method, path), &[cookie, "X-Spheres: 1"], body)
}

/// Uploads from the web page: one that cannot fit on the disk is refused before a byte is
/// written, with the sizes; one cut midway leaves nothing behind; a cancelled one is gone.
#[test]
fn uploads_that_cannot_fit_or_are_cut_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice"]);
    alice.cli(&["sphere", "create", "Family"]);
    let addr = common::node::web_addr(&alice);
    let cookie = common::node::browser_session(&alice);
    let raw_http = |addr: &str, method: &str, path: &str, body: (usize, &[u8])| {
        page_http(addr, &cookie, method, path, body)
    };
    let staging = alice.spheres.join("Family/.upload-abcdefgh12");

    let (code, answer) = raw_http(&addr, "GET", "/api/spheres/Family/space", (0, b""));
    assert_eq!(code, 200, "{answer}");
    let free: u64 = answer
        .split("\"free\":")
        .nth(1)
        .and_then(|r| r.trim_end_matches(['}', '\n', '\r']).parse().ok())
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(free > 0, "{answer}");

    let huge = 1_000_000_000_000_000usize;
    let (code, answer) = raw_http(
        &addr,
        "PUT",
        "/api/spheres/Family/upload/abcdefgh12/files/huge.bin",
        (huge, b""),
    );
    // The answer comes before any body: the client may still be sending.
    assert_eq!(code, 507, "{answer}");
    assert!(
        answer.contains("not enough space") && answer.contains("free some space"),
        "{answer}"
    );
    let leftovers = || {
        std::fs::read_dir(&staging)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(leftovers().is_empty(), "{:?}", leftovers());

    // An upload cut once the node has started writing it.
    let mut cut = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        cut,
        "PUT /api/spheres/Family/upload/abcdefgh12/files/cut.bin HTTP/1.1\r\nHost: {addr}\r\n{cookie}\r\nX-Spheres: 1\r\nContent-Length: 1000000\r\n\r\n"
    )
    .unwrap();
    cut.write_all(&[7u8; 4096]).unwrap();
    wait_until("the upload being written", || !leftovers().is_empty());
    drop(cut);
    wait_until("the cut upload removed", || leftovers().is_empty());

    let (code, answer) = raw_http(
        &addr,
        "PUT",
        "/api/spheres/Family/upload/abcdefgh12/files/kept.bin",
        (5, b"hello"),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(leftovers().len(), 1);
    let (code, answer) = raw_http(
        &addr,
        "POST",
        "/api/spheres/Family/upload/abcdefgh12/cancel",
        (2, b"{}"),
    );
    assert_eq!(code, 200, "{answer}");
    assert!(!staging.exists(), "the cancelled upload's folder is gone");
    assert!(!alice.spheres.join("Family/kept.bin").exists());
    alice.stop();
}

/// Alice shares while her server is down, and her node is killed (-9) before it is back: the
/// announcement waits in her node's outbox, not in memory. Restarted once the server is up,
/// her node announces it, and bob fetches it.
#[test]
fn an_announcement_made_offline_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ProsodyConfig::new(dir.path().join("server"), "home.test");
    let mut s = rt.block_on(async {
        let s = ManagedProsody::start(config.clone()).await.unwrap();
        for u in ["alice", "bob"] {
            s.register(u, &format!("{u}-secret")).await.unwrap();
        }
        s
    });
    let mut alice = Node::on(dir.path(), "alice", &s);
    let mut bob = Node::on(dir.path(), "bob", &s);
    alice.start(&[]);
    bob.start(&[]);
    alice.cli(&["sphere", "create", "Family"]);
    alice.cli(&["sphere", "invite", "Family", "bob@home.test"]);
    wait_until("bob's invitation", || {
        bob.cli(&["sphere", "invites"])
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    bob.cli(&["sphere", "join", "Family"]);

    // The server goes away; alice shares anyway, then her node is killed.
    let (c2s, tls) = (s.c2s_addr().port(), s.tls_addr().port());
    rt.block_on(s.stop());
    let letter = dir.path().join("letter.pdf");
    let data = write_random(&letter, 400_000, 5);
    alice.cli(&["share", "Family", letter.to_str().unwrap()]);
    let mine = alice.share_state("Family", "letter.pdf").unwrap();
    assert_eq!(mine["announced"], false, "the room cannot have it: {mine}");
    alice.crash();

    // The server is back (same ports), then alice.
    let mut again = config;
    again.c2s_port = c2s;
    again.tls_port = tls;
    let _s = rt.block_on(ManagedProsody::start(again)).unwrap();
    alice.start(&[]);
    wait_seeding(&bob, "Family", "letter.pdf");
    assert!(std::fs::read(bob.spheres.join("Family/letter.pdf")).unwrap() == data);
    wait_until("the room's confirmation", || {
        alice
            .share_state("Family", "letter.pdf")
            .is_some_and(|s| s["announced"] == true)
    });
    alice.stop();
    bob.stop();
}

/// An upload with no Content-Length (chunked, as a page streaming a file may send it) onto a
/// disk that cannot take it: refused with 507 as it arrives, and nothing is left behind.
/// Needs root, for a small tmpfs under the sphere's folder.
#[test]
fn a_chunked_upload_onto_a_full_disk_leaves_nothing() {
    assert!(
        common::run({
            let mut c = std::process::Command::new("id");
            c.arg("-u");
            c
        })
        .1
        .trim()
            == "0",
        "this test mounts a small tmpfs: run it as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice"]);
    alice.cli(&["sphere", "create", "Family"]);
    let folder = alice.spheres.join("Family");
    // 16 MiB of disk: less than the 64 MiB the node keeps free.
    let mounted = common::run({
        let mut c = std::process::Command::new("mount");
        c.args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&folder);
        c
    });
    assert!(mounted.0, "mount: {}", mounted.2);
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(folder.clone());

    let addr = common::node::web_addr(&alice);
    let cookie = common::node::browser_session(&alice);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    write!(
        s,
        "PUT /api/spheres/Family/upload/abcdefgh12/files/big.bin HTTP/1.1\r\nHost: {addr}\r\n{cookie}\r\nX-Spheres: 1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![1u8; 1 << 20];
    // The node may answer and close before all is sent: write errors are expected then.
    for _ in 0..4 {
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    use std::io::Read as _;
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 507"), "{answer}");
    assert!(answer.contains("not enough space"), "{answer}");
    let staging = folder.join(".upload-abcdefgh12");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    alice.stop();
}

/// What the page does with people, from the command line: contacts (asked, accepted,
/// removed), one-to-one chat both ways, talking in a sphere; the node's link to its XMPP
/// server in `status`; and the API's refusals by kind (404, 409, 400, 403).
#[test]
fn contacts_chat_and_the_sphere_room_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    invite_and_join(&alice, &bob);

    let status = alice.cli(&["status"]);
    assert_eq!(status["xmpp"]["state"], "online", "{status}");

    // Bob asks; alice sees the request and accepts by adding him; both see each other.
    bob.cli(&["contact", "add", "alice@family.test", "--name", "Alice"]);
    wait_until("bob's request at alice's", || {
        alice.cli(&["contact", "list"])["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|j| j == "bob@family.test"))
    });
    alice.cli(&["contact", "add", "bob@family.test"]);
    wait_until("alice online in bob's contacts", || {
        bob.cli(&["contact", "list"])["contacts"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|p| p["jid"] == "alice@family.test" && p["online"] == true)
            })
    });

    // One-to-one chat, both ways, read back from each side's archive.
    bob.cli(&["chat", "alice@family.test", "Dinner at eight?"]);
    wait_until("bob's message at alice's", || {
        alice
            .cli(&["chat", "bob@family.test"])
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|m| m["body"] == "Dinner at eight?" && m["mine"] == false)
            })
    });
    alice.cli(&["chat", "bob@family.test", "Yes!"]);
    wait_until("alice's answer at bob's", || {
        bob.cli(&["chat", "alice@family.test"])
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["body"] == "Yes!" && m["mine"] == false))
    });

    // The sphere's room.
    bob.cli(&["say", "Family", "The photos from Lyon are in"]);
    wait_until("bob's words in alice's sphere", || {
        alice
            .cli(&["messages", "Family"])
            .as_array()
            .is_some_and(|l| {
                l.iter().any(|m| {
                    m["body"] == "The photos from Lyon are in" && m["jid"] == "bob@family.test"
                })
            })
    });

    // Refusals say what is wrong, by kind.
    let err = bob.cli_fails(&["say", "Nowhere", "hello"]);
    assert!(err.contains("there is no sphere named"), "{err}");
    let err = alice.cli_fails(&["sphere", "create", "Family"]);
    assert!(err.contains("already exists"), "{err}");
    let err = bob.cli_fails(&["sphere", "invite", "Family", "carol@family.test"]);
    assert!(err.contains("only the sphere's owner"), "{err}");
    let err = alice.cli_fails(&["contact", "remove", "nobody@family.test"]);
    assert!(err.contains("not one of your contacts"), "{err}");
    let api = |n: &Node, method: &str, path: &str, body: &str| {
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(n.data.join("node.json")).unwrap()).unwrap();
        let addr = file["api"].as_str().unwrap().trim_start_matches("http://");
        let token = file["token"].as_str().unwrap();
        common::node::raw_http(
            addr,
            (method, path),
            &[
                &format!("Authorization: Bearer {token}"),
                "Content-Type: application/json",
            ],
            (body.len(), body.as_bytes()),
        )
        .0
    };
    assert_eq!(api(&bob, "GET", "/api/spheres/Nowhere/messages", ""), 404);
    assert_eq!(
        api(&alice, "POST", "/api/spheres", r#"{"name":"Family"}"#),
        409
    );
    assert_eq!(
        api(&alice, "POST", "/api/spheres", r#"{"name":"../x"}"#),
        400
    );
    assert_eq!(
        api(
            &bob,
            "POST",
            "/api/spheres/Family/invite",
            r#"{"jid":"carol@family.test"}"#
        ),
        403
    );

    // Removing a contact ends it on both sides.
    bob.cli(&["contact", "remove", "alice@family.test"]);
    wait_until("alice gone from bob's contacts", || {
        bob.cli(&["contact", "list"])["contacts"]
            .as_array()
            .is_some_and(|c| c.iter().all(|p| p["jid"] != "alice@family.test"))
    });
}

/// A node killed with `kill -9` leaves no household server behind (it would hold the node's
/// ports at its next start, and pile up on the machine): Prosody gets SIGTERM when its node
/// dies, however it dies.
#[test]
fn the_household_server_dies_with_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    let config = alice.data.join("prosody");
    let config = config.to_string_lossy().into_owned();
    // The Prosody whose command line names alice's data folder.
    let prosody = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let zombie = stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'));
                !zombie
                    && String::from_utf8_lossy(&cmd).contains("prosody")
                    && String::from_utf8_lossy(&cmd).contains(&config)
            })
    };
    assert!(
        prosody().is_some(),
        "alice's node runs its household server"
    );
    alice.crash();
    wait_until("the household server to stop with its node", || {
        prosody().is_none()
    });
}
