//! Attacks on a node, as docs/security.md lists them: a hostile sphere member and a stranger
//! with an XMPP account (tests/peers/hostile.py, on slixmpp: it sends whatever stanza a test
//! scripts), another user of the same machine, a second node on the same folder. Each test
//! performs the attack and fails if it works.
//!
//! To know that the node has processed a forged stanza before looking at what it did, each
//! test sends a legitimate one after it on the same stream and waits for that one's effect:
//! the node handles a room's messages in order.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::node::{Node, household, in_feed, invite_and_join, wait_seeding};
use common::{Proc, spheres, wait_until, write_random};
use serde_json::{Value, json};

/// Mallory: an account on alice's household server, driven by the hostile client.
struct Mallory {
    proc: Proc,
}

impl Mallory {
    fn start(alice: &Node, dir: &Path) -> Mallory {
        common::node::add_user(alice, dir, "mallory");
        let household = alice.cli(&["status"])["household"].clone();
        let c2s: std::net::SocketAddr = household["c2s"].as_str().unwrap().parse().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/hostile.py");
        let mut cmd = std::process::Command::new("/usr/bin/python3");
        cmd.arg(script).args([
            "mallory@family.test",
            "mallory-secret",
            "127.0.0.1",
            &c2s.port().to_string(),
            household["ca"].as_str().unwrap(),
        ]);
        let mut proc = Proc::spawn_interactive("mallory", cmd);
        proc.wait_event("online");
        Mallory { proc }
    }

    /// Mallory, invited by alice to "Family" and in its room; and the room's address.
    fn in_family(alice: &Node, dir: &Path) -> (Mallory, String) {
        let mut mallory = Mallory::start(alice, dir);
        alice.cli(&["sphere", "invite", "Family", "mallory@family.test"]);
        let room = alice.cli(&["sphere", "list"])[0]["room"]
            .as_str()
            .unwrap()
            .to_owned();
        mallory.run(json!({"op": "join", "room": room, "nick": "mallory"}));
        (mallory, room)
    }

    /// Runs one command of hostile.py and waits until it was sent.
    fn run(&mut self, cmd: Value) {
        self.proc.send(&cmd.to_string());
        let done = self.proc.wait_event("done");
        assert_eq!(done["op"], cmd["op"], "{:?}", self.proc.seen);
    }
}

/// A torrent of `size` random bytes named `name`: (info hash, .torrent bytes, magnet).
fn torrent(dir: &Path, name: &str, size: usize, public: bool) -> (String, Vec<u8>, String) {
    let data = dir.join("mallory-files").join(name);
    write_random(&data, size, size as u64);
    let out = dir.join(format!("{name}.torrent"));
    let mut extra = vec!["--tracker", "http://127.0.0.1:9/announce"];
    if !public {
        extra.push("--private");
    }
    let made = common::create(&data, &out, &extra);
    (
        made["info_hash"].as_str().unwrap().to_owned(),
        std::fs::read(&out).unwrap(),
        made["magnet"].as_str().unwrap().to_owned(),
    )
}

/// A `<share/>` announcement as any client can write one.
fn share_xml(id: &str, name: &str, size: usize, sharer: &str, magnet: &str, t: &[u8]) -> String {
    let magnet = magnet.replace('&', "&amp;");
    let torrent = base64::engine::general_purpose::STANDARD.encode(t);
    format!(
        "<share xmlns='urn:spheres:0' id='{id}' name='{name}' size='{size}' files='1' media='other' sharer='{sharer}'><magnet>{magnet}</magnet><torrent>{torrent}</torrent></share>"
    )
}

/// [`household`] with "Family" open (the clear protocol, which a hostile member speaks too;
/// in an encrypted sphere what she says in clear is dropped whole, see the last test).
fn open_household(dir: &Path) -> (Node, Node) {
    let (alice, bob) = common::node::household_nodes(dir, &[]);
    alice.cli(&["sphere", "create", "Family", "--open"]);
    (alice, bob)
}

fn shares(n: &Node) -> Vec<Value> {
    n.cli(&["shares", "Family"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_share(n: &Node, name: &str) -> bool {
    shares(n).iter().any(|s| s["name"] == name)
}

/// A member (mallory) forges announcements in the sphere's room: a share in alice's name, one
/// whose size lies about its torrent, a withdrawal of alice's share, a share whose room record
/// claims to be alice's, and a tracker key of hers sent to bob. Bob's node accepts none of
/// them, live or from the archive after a restart; her honest share goes through, and a
/// public torrent she passes on waits for bob to ask for it.
#[test]
fn a_hostile_member_cannot_forge_announcements() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, mut bob) = open_household(dir.path());
    invite_and_join(&alice, &bob);
    let (mut mallory, room) = Mallory::in_family(&alice, dir.path());

    // Alice shares something real first, for mallory to try to take back.
    let photo = dir.path().join("photo.jpg");
    let photo_data = write_random(&photo, 200_000, 5);
    alice.cli(&["share", "Family", photo.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "photo.jpg");
    let photo_hash = shares(&bob)
        .iter()
        .find(|s| s["name"] == "photo.jpg")
        .unwrap()["info_hash"]
        .as_str()
        .unwrap()
        .to_owned();

    let say = |m: &mut Mallory, xml: String| {
        m.run(json!({"op": "groupchat", "room": room, "body": "look", "xml": xml}));
    };
    // 1. A share in alice's name.
    let (id, t, magnet) = torrent(dir.path(), "forged-sharer.bin", 10_000, false);
    say(
        &mut mallory,
        share_xml(
            &id,
            "forged-sharer.bin",
            10_000,
            "alice@family.test",
            &magnet,
            &t,
        ),
    );
    // 2. Her own name, but a size and a name that are not the torrent's.
    let (id, t, magnet) = torrent(dir.path(), "liar.bin", 10_000, false);
    say(
        &mut mallory,
        share_xml(&id, "holiday.mp4", 10, "mallory@family.test", &magnet, &t),
    );
    // 3. Alice's share, withdrawn by mallory.
    say(
        &mut mallory,
        format!("<withdraw xmlns='urn:spheres:0' id='{photo_hash}'/>"),
    );
    // 4. A room record of her own making, naming alice as the sender, beside a share in
    //    alice's name (the archive keeps both).
    let (id, t, magnet) = torrent(dir.path(), "forged-record.bin", 10_000, false);
    let forged_record = "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='alice@family.test' affiliation='owner' role='moderator'/></x>";
    let share = share_xml(
        &id,
        "forged-record.bin",
        10_000,
        "alice@family.test",
        &magnet,
        &t,
    );
    mallory.run(
        json!({"op": "groupchat", "room": room, "body": "look", "xml": [forged_record, share]}),
    );
    // 5. A tracker key for bob, from someone who is not the owner.
    let before = bob.cli(&["sphere", "list"])[0]["announce"].clone();
    mallory.run(json!({"op": "private", "to": format!("{room}/bob"),
        "xml": "<tracker xmlns='urn:spheres:0' member='bob@family.test' announce='http://127.0.0.1:9/stolen/announce'/>"}));
    // 6. A public torrent, honestly hers: listed, not fetched until bob asks.
    let (id, t, magnet) = torrent(dir.path(), "public.bin", 10_000, true);
    say(
        &mut mallory,
        share_xml(
            &id,
            "public.bin",
            10_000,
            "mallory@family.test",
            &magnet,
            &t,
        ),
    );
    // 7. Her honest share, last: once bob has it, he has read everything before it.
    let (id, t, magnet) = torrent(dir.path(), "honest.bin", 10_000, false);
    say(
        &mut mallory,
        share_xml(
            &id,
            "honest.bin",
            10_000,
            "mallory@family.test",
            &magnet,
            &t,
        ),
    );
    wait_until("mallory's honest share on bob's node", || {
        has_share(&bob, "honest.bin")
    });

    let check = |bob: &Node| {
        for forged in [
            "forged-sharer.bin",
            "holiday.mp4",
            "liar.bin",
            "forged-record.bin",
        ] {
            assert!(
                !has_share(bob, forged),
                "bob accepted {forged}: {:?}",
                shares(bob)
            );
        }
        let photo = shares(bob)
            .into_iter()
            .find(|s| s["name"] == "photo.jpg")
            .unwrap();
        assert_eq!(photo["state"], "seeding", "mallory withdrew alice's share");
        let public = shares(bob)
            .into_iter()
            .find(|s| s["name"] == "public.bin")
            .unwrap();
        assert_eq!(
            public["state"], "available",
            "a public torrent fetched without asking"
        );
    };
    check(&bob);
    assert_eq!(
        bob.cli(&["sphere", "list"])[0]["announce"],
        before,
        "bob took a tracker key from mallory"
    );
    assert!(std::fs::read(bob.spheres.join("Family/photo.jpg")).unwrap() == photo_data);

    // From the archive: bob's node starts over from scratch on the room's record.
    bob.stop();
    std::fs::remove_dir_all(&bob.data).unwrap();
    std::fs::remove_dir_all(&bob.spheres).unwrap();
    bob.start(&[]);
    invite_and_join(&alice, &bob);
    wait_until("the archive read again", || has_share(&bob, "honest.bin"));
    wait_seeding(&bob, "Family", "photo.jpg");
    check(&bob);
}

/// The feed of a sphere (posts and comments in its room): `<post>` as any client writes it.
fn room_post(id: &str, on: Option<&str>, text: &str, extra: &str) -> String {
    let on = on.map(|o| format!(" on='{o}'")).unwrap_or_default();
    format!(
        "<post xmlns='urn:spheres:0' id='{id}'{on}><entry xmlns='http://www.w3.org/2005/Atom'>\
         <title>{text}</title><author><uri>xmpp:alice@family.test</uri></author>{extra}</entry></post>"
    )
}

/// A member (mallory) rewrites and deletes others' posts and comments in the sphere's room,
/// and dates a post of hers next century to keep it on top: bob's node takes her honest
/// post and comment (written by slixmpp, not by us) and none of the rest.
#[test]
fn a_hostile_member_cannot_rewrite_others_posts_in_a_sphere() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = open_household(dir.path());
    invite_and_join(&alice, &bob);
    let (mut mallory, room) = Mallory::in_family(&alice, dir.path());
    let id = alice.cli(&["post", "Lyon, day one", "--to", "Family"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("alice's post at bob's", || in_feed(&bob, &id).is_some());
    let cid = bob.cli(&["comment", &id, "Beautiful"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("bob's comment at bob's", || {
        in_feed(&bob, &id).is_some_and(|p| p["comments"] == 1)
    });
    let say = |m: &mut Mallory, xml: String| {
        m.run(json!({"op": "groupchat", "room": room, "body": "look", "xml": xml}));
    };
    // Alice's post and bob's comment, rewritten; both deleted; a post from the future.
    say(
        &mut mallory,
        room_post(&id, None, "Send me your password", ""),
    );
    say(
        &mut mallory,
        room_post(&cid, Some(&id), "Send me yours too", ""),
    );
    say(
        &mut mallory,
        format!("<retract xmlns='urn:spheres:0' id='{cid}' on='{id}'/>"),
    );
    say(
        &mut mallory,
        format!("<retract xmlns='urn:spheres:0' id='{id}'/>"),
    );
    say(
        &mut mallory,
        room_post(
            "pinned",
            None,
            "On top forever",
            "<published>2099-01-01T00:00:00Z</published>",
        ),
    );
    // Her honest comment, last: once bob has it, he has read everything before.
    say(&mut mallory, room_post("honest", Some(&id), "Nice", ""));
    wait_until("mallory's honest comment at bob's", || {
        in_feed(&bob, &id).is_some_and(|p| p["comments"] == 2)
    });
    let post = in_feed(&bob, &id).unwrap();
    assert_eq!(post["text"], "Lyon, day one");
    assert_eq!(post["author"], "alice@family.test");
    let comments = bob.cli(&["comment", &id]);
    let texts: Vec<_> = comments
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["author"].as_str().unwrap(), c["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            ("bob@family.test", "Beautiful"),
            ("mallory@family.test", "Nice")
        ]
    );
    // Her post is hers (whatever its entry says), dated no later than when the room got it.
    let pinned = in_feed(&bob, "pinned").expect("mallory's post");
    assert_eq!(pinned["author"], "mallory@family.test");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        pinned["published"].as_i64().unwrap() <= now + 300,
        "{pinned}"
    );
}

/// A stranger (mallory, not a contact of bob's, not on the allow-list) invites bob's
/// always-on node to a room named `..`: it is listed, not joined; accepted by hand, its
/// folder is inside the spheres folder. Alice's invitation, on the allow-list, is joined.
#[test]
fn an_invitation_from_a_stranger_is_not_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, mut bob) = household(dir.path());
    bob.stop();
    bob.start(&["--headless", "--accept-invites-from", "alice@family.test"]);
    let mut mallory = Mallory::start(&alice, dir.path());
    for (room, reason) in [
        ("..@rooms.family.test", "../../.ssh"),
        (".@rooms.family.test", "/etc"),
    ] {
        mallory.run(json!({"op": "message", "to": "bob@family.test",
            "xml": format!("<x xmlns='jabber:x:conference' jid='{room}' reason='{reason}'/>")}));
    }
    alice.cli(&["sphere", "invite", "Family", "bob@family.test"]);
    wait_until("bob's headless node in alice's sphere", || {
        bob.cli(&["sphere", "list"])
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["name"] == "Family"))
            && bob
                .cli(&["sphere", "invites"])
                .as_array()
                .is_some_and(|l| l.iter().all(|i| i["from_jid"] != "alice@family.test"))
    });
    let spheres_list = bob.cli(&["sphere", "list"]);
    assert_eq!(spheres_list.as_array().unwrap().len(), 1, "{spheres_list}");
    let invites = bob.cli(&["sphere", "invites"]);
    assert_eq!(invites.as_array().unwrap().len(), 2, "{invites}");

    // Taken by hand: the folders stay inside the spheres folder.
    for room in ["..@rooms.family.test", ".@rooms.family.test"] {
        let sphere = bob.cli(&["sphere", "join", room]);
        let folder = std::fs::canonicalize(sphere["folder"].as_str().unwrap()).unwrap();
        assert_eq!(
            folder.parent().unwrap(),
            std::fs::canonicalize(&bob.spheres).unwrap(),
            "{sphere}"
        );
    }
}

/// Another user of the machine reads nothing of the node's: not its data folder, not its
/// database, not its thumbnails. A second node cannot take the same spheres folder.
#[test]
fn the_node_is_its_users_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // Folders others may walk through, as a home folder often is: only the node's own
    // modes stand between another user and its files.
    std::fs::create_dir_all(dir.path().join("alice")).unwrap();
    for d in [dir.path().to_owned(), dir.path().join("alice")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut alice = Node::new(dir.path(), "alice");
    let running = alice.start(&["--user", "alice", "--domain", "family.test"]);
    assert_eq!(
        Path::new(running["spheres_dir"].as_str().unwrap()),
        alice.spheres,
        "the node says where its spheres folder is"
    );
    for f in ["", "node.db", "node.json", "account.json", "prosody"] {
        let mode = std::fs::metadata(alice.data.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f:?} is open to others: {mode:o}");
    }
    // As another user (nobody): nothing to read.
    spheres_testkit::require_root("reading as another user");
    {
        let (ok, _, _) = common::run({
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
                .arg(alice.data.join("node.db"));
            c
        });
        assert!(!ok, "another user read node.db");
    }

    // A second node, its own data folder, alice's spheres folder: refused, naming the first.
    let mut cmd = spheres();
    cmd.arg("--json")
        .arg("--data-dir")
        .arg(dir.path().join("other/data"))
        .args(["up", "--http", "127.0.0.1:0", "--user", "other"])
        .arg("--spheres-dir")
        .arg(&alice.spheres);
    let mut other = Proc::spawn("second node", cmd);
    let refused = other.wait_event("error");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("is used by another node") && why.contains(alice.data.to_str().unwrap()),
        "{why}"
    );
    assert!(
        !other.wait_exit(),
        "the second node must stop with an error"
    );
    alice.stop();
}

/// Attack: a member reads the owner's tracker key in a .torrent of one sphere (it travels in
/// every share) and uses it on the owner's tracker for the torrents of another sphere. The
/// key opens its own sphere's torrents and nothing else.
#[test]
fn an_owners_tracker_key_opens_one_sphere_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    let mut hashes = Vec::new();
    let mut keys = Vec::new();
    for (sphere, file) in [("Family", "family.jpg"), ("Work", "payslip.pdf")] {
        alice.cli(&["sphere", "create", sphere]);
        let path = dir.path().join(file);
        write_random(&path, 50_000, hashes.len() as u64);
        let shared = alice.cli(&["share", sphere, path.to_str().unwrap()]);
        hashes.push(shared["info_hash"].as_str().unwrap().to_owned());
        let magnet = shared["magnet"].as_str().unwrap();
        let tr = magnet
            .split('&')
            .find_map(|p| p.strip_prefix("tr="))
            .expect("the magnet names the sphere's tracker");
        keys.push(
            percent_encoding::percent_decode_str(tr)
                .decode_utf8()
                .unwrap()
                .into_owned(),
        );
    }
    let (family_key, work_key) = (&keys[0], &keys[1]);
    assert_ne!(family_key, work_key, "one key for both spheres");
    assert!(
        !common::node::tracker_refuses(family_key, &hashes[0]),
        "the key works for its own sphere"
    );
    assert!(
        common::node::tracker_refuses(family_key, &hashes[1]),
        "Family's key opened Work"
    );
    assert!(
        common::node::tracker_refuses(work_key, &hashes[0]),
        "Work's key opened Family"
    );
    alice.stop();
}

/// Attack: a member shares a file named like one the receiver already has in the sphere's
/// folder (`notes.txt`, which bob wrote there himself). Bob's file keeps its bytes; the
/// member's arrives beside it as `notes (2).txt`, complete and verified.
#[test]
fn a_share_named_like_my_file_arrives_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    invite_and_join(&alice, &bob);
    let mine = bob.spheres.join("Family/notes.txt");
    std::fs::write(&mine, b"bob's own notes").unwrap();
    let theirs = dir.path().join("alice-files/notes.txt");
    let data = write_random(&theirs, 300_000, 77);
    alice.cli(&["share", "Family", theirs.to_str().unwrap()]);
    wait_until("alice's notes on bob's node", || {
        shares(&bob)
            .iter()
            .any(|s| s["sharer"] == "alice@family.test" && s["state"] == "seeding")
    });
    assert_eq!(std::fs::read(&mine).unwrap(), b"bob's own notes");
    let placed = bob.spheres.join("Family/notes (2).txt");
    assert!(std::fs::read(&placed).unwrap() == data);

    // Bob deletes the copy: his node no longer keeps (nor seeds) the data out of sight; the
    // share can be fetched again.
    let incoming = bob.spheres.join("Family/.spheres/incoming");
    let kept = || std::fs::read_dir(&incoming).map_or(0, |d| d.count());
    assert_eq!(kept(), 1);
    std::fs::remove_file(&placed).unwrap();
    wait_until("the deleted share available again", || {
        shares(&bob)
            .iter()
            .any(|s| s["sharer"] == "alice@family.test" && s["state"] == "available")
    });
    assert_eq!(kept(), 0, "the data stayed out of sight");
    assert_eq!(std::fs::read(&mine).unwrap(), b"bob's own notes");
}

/// Attack: another user of the node's machine (or a program behind a reverse proxy) talks to
/// the web port from loopback; a page elsewhere posts to it; someone guesses the web password.
/// Loopback alone opens nothing; a login link works once; a foreign `Origin` changes nothing;
/// guesses are throttled; a browser changing the password must know the current one, and the
/// change ends every other session.
#[test]
fn a_browser_needs_a_session_and_guessing_is_throttled() {
    use common::node::{browser_session, raw_http, web_addr};
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    let addr = web_addr(&alice);
    let get = |path: &str, headers: &[&str]| raw_http(&addr, ("GET", path), headers, (0, b""));
    let post = |path: &str, headers: &[&str], body: &str| {
        raw_http(
            &addr,
            ("POST", path),
            headers,
            (body.len(), body.as_bytes()),
        )
    };

    // From loopback, with a loopback Host, nothing without a session.
    let (code, answer) = get("/api/status", &[]);
    assert_eq!(code, 401, "{answer}");
    let (code, _) = get(
        "/torrents/0123456789abcdef0123456789abcdef01234567/files/0",
        &[],
    );
    assert_eq!(code, 401);
    // A login link works once.
    let url = alice.cli(&["open"])["url"].as_str().unwrap().to_owned();
    let path = format!(
        "/{}",
        url.split_once("//").unwrap().1.split_once('/').unwrap().1
    );
    let (code, answer) = get(&path, &[]);
    assert_eq!(code, 303, "{answer}");
    let (code, _) = get(&path, &[]);
    assert_eq!(code, 403, "a login link used twice");
    let cookie = browser_session(&alice);
    let (code, answer) = get("/api/status", &[&cookie]);
    assert_eq!(code, 200, "{answer}");
    // A page on another port of this host can set a cookie of the same name, which the
    // browser sends first: the real session still opens.
    let shadowed = format!(
        "Cookie: spheres_session=shadow; {}",
        cookie.trim_start_matches("Cookie: ")
    );
    let (code, answer) = get("/api/status", &[&shadowed]);
    assert_eq!(code, 200, "a shadow cookie locked the person out: {answer}");
    // DNS rebinding: a site points its own name at the node; its page's requests carry
    // that name as Host (and as Origin). Refused, login included.
    let rebound = [
        "Host: evil.test",
        "Origin: http://evil.test",
        "X-Spheres: 1",
    ];
    let (code, answer) = post(
        "/api/login",
        &[
            rebound[0],
            rebound[1],
            rebound[2],
            "Content-Type: application/json",
        ],
        r#"{"password":"x"}"#,
    );
    assert_eq!(code, 403, "{answer}");
    let (code, _) = get("/api/status", &[rebound[0], &cookie]);
    assert_eq!(code, 403);
    // A change from another site's page: refused even with the session and the header.
    let json = "Content-Type: application/json";
    let (code, answer) = post(
        "/api/spheres",
        &[&cookie, "X-Spheres: 1", json, "Origin: http://evil.test"],
        r#"{"name":"Evil"}"#,
    );
    assert_eq!(code, 403, "{answer}");
    assert!(
        alice
            .cli(&["sphere", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Setting the web password ends the sessions opened before; a browser must give the
    // current password to change it, and the change ends the other sessions.
    let pw = dir.path().join("web.pw");
    std::fs::write(&pw, "correct horse battery").unwrap();
    alice.cli(&["password", "--password-file", pw.to_str().unwrap()]);
    let (code, _) = get("/api/status", &[&cookie]);
    assert_eq!(code, 401, "a session outlived a password change");
    let mine = browser_session(&alice);
    let other = browser_session(&alice);
    let change = |current: &str| {
        post(
            "/api/password",
            &[&mine, "X-Spheres: 1", json],
            &format!(r#"{{"password":"a new long password","current":"{current}"}}"#),
        )
    };
    let (code, answer) = change("not it");
    assert_eq!(code, 403, "{answer}");
    let (code, answer) = change("correct horse battery");
    assert_eq!(code, 200, "{answer}");
    let (code, _) = get("/api/status", &[&other]);
    assert_eq!(code, 401, "another session outlived the change");

    // Guessing the web password: a few tries (the right password given above started this
    // address afresh), then told to wait, even with the right password.
    let guess = |p: &str| {
        post(
            "/api/login",
            &["X-Spheres: 1", json],
            &format!(r#"{{"password":"{p}"}}"#),
        )
    };
    for i in 0..5 {
        let (code, answer) = guess(&format!("guess {i}"));
        assert_eq!(code, 401, "{answer}");
    }
    let (code, answer) = guess("a new long password");
    assert_eq!(code, 429, "the sixth try must wait: {answer}");
    assert!(answer.contains("try again in"), "{answer}");
    alice.stop();
}

/// Attack: a stranger learns the info hash of a sphere's share (a leaked link, a log) and
/// connects to the owner's node with it, as a plain BitTorrent client would. The node answers
/// the handshake (a plain client cannot be told from a member before its extended handshake)
/// and then closes the connection: no metadata size, no piece, not even which pieces it has.
#[test]
fn a_stranger_with_the_info_hash_gets_nothing() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    let running = alice.start(&["--user", "alice", "--domain", "family.test"]);
    alice.cli(&["sphere", "create", "Family"]);
    let path = dir.path().join("family.jpg");
    write_random(&path, 300_000, 5);
    let shared = alice.cli(&["share", "Family", path.to_str().unwrap()]);
    let hash = hex::decode(shared["info_hash"].as_str().unwrap()).unwrap();
    wait_seeding(&alice, "Family", "family.jpg");

    let listen: std::net::SocketAddr = running["listen"].as_str().unwrap().parse().unwrap();
    let mut conn = std::net::TcpStream::connect(listen).unwrap();
    conn.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    // The handshake (extension protocol and Fast extension), an extended handshake with no
    // membership proof, and interest.
    let mut hello = vec![19];
    hello.extend_from_slice(b"BitTorrent protocol");
    hello.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
    hello.extend_from_slice(&hash);
    hello.extend_from_slice(b"-XX0001-strangerrrrr");
    let ext = b"d1:md11:ut_metadatai1eee";
    hello.extend_from_slice(&((ext.len() + 2) as u32).to_be_bytes());
    hello.extend_from_slice(&[20, 0]);
    hello.extend_from_slice(ext);
    hello.extend_from_slice(&[0, 0, 0, 1, 2]);
    conn.write_all(&hello).unwrap();

    // Everything it says until it closes the connection (an error is a reset: closed too).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the node kept the stranger's connection open: {e}")
            }
            Err(_) => break,
        }
    }
    assert!(got.len() >= 68, "no handshake back: {got:?}");
    assert_eq!(&got[28..48], &hash[..]);
    let mut rest = &got[68..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let msg = &rest[4..4 + len.min(rest.len() - 4)];
        if let Some(&id) = msg.first() {
            // Only its extended handshake (20), and keep-alives.
            assert_eq!(id, 20, "the stranger got message {id}: {msg:?}");
            assert!(
                !msg.windows(13).any(|w| w == b"metadata_size"),
                "the stranger learnt the metadata's size"
            );
        }
        rest = &rest[(4 + len).min(rest.len())..];
    }
    alice.stop();
}

/// A member of an encrypted sphere whose client is a plain one (mallory) sends what she can:
/// a clear share announcement and a clear post, as an open sphere would take them, and MLS
/// messages that are garbage or a commit claiming to come from the group. Bob's node takes
/// none of it and still reads what alice says next.
#[test]
fn a_hostile_member_cannot_speak_in_clear_or_forge_the_group_of_an_encrypted_sphere() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = common::node::household_nodes(dir.path(), &[]);
    alice.cli(&["sphere", "create", "Family"]);
    invite_and_join(&alice, &bob);
    let ready = || bob.cli(&["sphere", "list"])[0]["encryption"] == "ready";
    wait_until("bob's node in the group", ready);
    let (mut mallory, room) = Mallory::in_family(&alice, dir.path());
    let say = |m: &mut Mallory, xml: String| {
        m.run(json!({"op": "groupchat", "room": room, "body": "look", "xml": xml}));
    };
    let (id, t, magnet) = torrent(dir.path(), "clear-share.bin", 10_000, false);
    say(
        &mut mallory,
        share_xml(
            &id,
            "clear-share.bin",
            10_000,
            "mallory@family.test",
            &magnet,
            &t,
        ),
    );
    say(
        &mut mallory,
        room_post("clear-post-1", None, "Read me in clear", ""),
    );
    mallory
        .run(json!({"op": "groupchat", "room": room, "body": "Plain words from a plain client"}));
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // A group of her own under the room's id, with bob's node in it (his key package is
    // public): one made as herself, one with no name in its credential. Joining either would
    // leave the sphere's real group.
    mallory.proc.send(
        &json!({"op": "items", "jid": "bob@family.test", "node": "urn:spheres:mls:keypackages:0"})
            .to_string(),
    );
    let items = mallory.proc.wait_event("items");
    mallory.proc.wait_event("done");
    let packages: Vec<Vec<u8>> = items["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(packages.len(), 1, "{items}");
    for who in ["mallory@family.test", ""] {
        let fake = spheres_mls::Device::new(who).unwrap();
        fake.create_group(room.as_bytes()).unwrap();
        // Epochs ahead of the real group's, so it would not pass for an old welcome.
        for i in 0..6 {
            let other = spheres_mls::Device::new(&format!("puppet{i}@family.test")).unwrap();
            fake.add(
                room.as_bytes(),
                other.identity(),
                &[other.key_package().unwrap()],
            )
            .unwrap();
            fake.confirm(room.as_bytes()).unwrap();
        }
        let change = fake
            .add(room.as_bytes(), "bob@family.test", &packages)
            .unwrap()
            .unwrap();
        say(
            &mut mallory,
            format!(
                "<mls xmlns='urn:spheres:0'>{}</mls>",
                b64(&change.welcome.unwrap())
            ),
        );
    }
    // Garbage; an MLS header with junk; a "commit" made of random bytes after the header.
    for bytes in [
        b"not mls at all".to_vec(),
        vec![0, 1, 0, 2, 9, 9, 9],
        [&[0u8, 1, 0, 2][..], &[7u8; 300][..]].concat(),
    ] {
        say(
            &mut mallory,
            format!("<mls xmlns='urn:spheres:0'>{}</mls>", b64(&bytes)),
        );
    }
    alice.cli(&["say", "Family", "After mallory's noise"]);
    wait_until("alice's words at bob's", || {
        bob.cli(&["messages", "Family"])
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["body"] == "After mallory's noise"))
    });
    assert!(!has_share(&bob, "clear-share.bin"), "{:?}", shares(&bob));
    let feed = bob.cli(&["feed"]);
    assert!(
        !feed.to_string().contains("Read me in clear"),
        "a clear post was taken: {feed}"
    );
    let said = bob.cli(&["messages", "Family"]);
    assert!(
        !said.to_string().contains("look") && !said.to_string().contains("Plain words"),
        "what was said in clear shows as chat: {said}"
    );
    assert!(ready(), "bob's node lost its place in the group");
}
