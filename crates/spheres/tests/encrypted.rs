//! Encrypted spheres, end to end, on alice's household Prosody: what members say, share and
//! post reaches them, and the server's archive holds none of it (docs/decisions/0014).

mod common;

use std::path::{Path, PathBuf};

use common::node::{
    Node, add_user, befriend, household_member, household_nodes, in_feed, invite_and_join,
    invite_to_family, test_prosody, wait_seeding,
};
use common::{wait_until, write_random};
use serde_json::Value;

fn encryption(n: &Node, sphere: &str) -> Value {
    n.cli(&["sphere", "list"])
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == sphere).cloned())
        .map(|s| s["encryption"].clone())
        .unwrap_or(Value::Null)
}

fn said(n: &Node, sphere: &str, text: &str) -> Option<Value> {
    n.cli(&["messages", sphere])
        .as_array()?
        .iter()
        .find(|m| m["body"] == text)
        .cloned()
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p.display().to_string(), b));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// Every file the household server wrote (its data: accounts, rooms, archives), as bytes.
fn server_files(alice: &Node) -> Vec<(String, Vec<u8>)> {
    files_under(&alice.data.join("prosody").join("data"))
}

fn holds(files: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    files
        .iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn an_encrypted_sphere_keeps_its_words_and_names_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household_nodes(dir.path(), &[]);
    let made = alice.cli(&["sphere", "create", "Family"]);
    assert_eq!(made["encryption"], "ready", "{made}");
    invite_and_join(&alice, &bob);
    wait_until("bob's node in the sphere's group", || {
        encryption(&bob, "Family") == "ready"
    });
    // His tracker key came sealed for the group: a clear one is refused in an encrypted
    // sphere.
    wait_until("bob's tracker key", || {
        common::node::announce_of(&bob, "Family").is_some()
    });

    // Chat, both ways.
    alice.cli(&["say", "Family", "Meet at the old station at noon"]);
    wait_until("alice's words at bob's", || {
        said(&bob, "Family", "Meet at the old station at noon").is_some()
    });
    let line = said(&bob, "Family", "Meet at the old station at noon").unwrap();
    assert_eq!(line["jid"], "alice@family.test", "{line}");
    bob.cli(&["say", "Family", "Bringing the picnic basket"]);
    wait_until("bob's words at alice's", || {
        said(&alice, "Family", "Bringing the picnic basket").is_some()
    });
    // Our own words come back from the room: said once.
    let mine = alice.cli(&["messages", "Family"]);
    let count = mine
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "Meet at the old station at noon")
        .count();
    assert_eq!(count, 1, "{mine}");

    // A share: announced inside the group, fetched by bob.
    let folder = alice.spheres.join("Family");
    write_random(&folder.join("lyon-hidden-holiday.bin"), 300_000, 3);
    alice.cli(&[
        "share",
        "Family",
        folder.join("lyon-hidden-holiday.bin").to_str().unwrap(),
    ]);
    wait_seeding(&bob, "Family", "lyon-hidden-holiday.bin");
    let got = std::fs::read(bob.spheres.join("Family").join("lyon-hidden-holiday.bin")).unwrap();
    assert_eq!(
        got,
        std::fs::read(folder.join("lyon-hidden-holiday.bin")).unwrap()
    );
    // It went as a sealed share: the torrent the nodes trade (kept by both engines) names
    // nothing, and its info hash is not the clear torrent's.
    for n in [&alice, &bob] {
        let torrents: Vec<_> = files_under(&n.data)
            .into_iter()
            .filter(|(p, _)| p.ends_with(".torrent"))
            .collect();
        assert!(!torrents.is_empty(), "{} keeps no torrent", n.name);
        assert!(
            holds(&torrents, "lyon-hidden").is_empty(),
            "a torrent names the file: {:?}",
            holds(&torrents, "lyon-hidden")
        );
    }

    // A post for the sphere.
    let posted = alice.cli(&["post", "Grandma's secret recipe", "--to", "Family"]);
    let id = posted["id"].as_str().unwrap().to_owned();
    wait_until("the post at bob's", || in_feed(&bob, &id).is_some());

    // A newcomer whose node joins later: added when it comes in, reads from then on.
    let mut carol = household_member(&alice, dir.path(), "carol", &[]);
    alice.cli(&["sphere", "invite", "Family", "carol@family.test"]);
    wait_until("carol's invitation", || {
        carol
            .cli(&["sphere", "invites"])
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    carol.cli(&["sphere", "join", "Family"]);
    wait_until("carol's node in the group", || {
        encryption(&carol, "Family") == "ready"
    });
    bob.cli(&["say", "Family", "Welcome carol"]);
    wait_until("bob's welcome at carol's", || {
        said(&carol, "Family", "Welcome carol").is_some()
    });
    // What was shared before she came: the owner's node passes the library on.
    wait_seeding(&carol, "Family", "lyon-hidden-holiday.bin");

    // Carol's node is away while the others talk; it catches up from the archive.
    carol.stop();
    bob.cli(&["say", "Family", "While carol was away"]);
    wait_until("bob's words at alice's", || {
        said(&alice, "Family", "While carol was away").is_some()
    });
    carol.start(&[]);
    wait_until("what was said while carol was away", || {
        said(&carol, "Family", "While carol was away").is_some()
    });
    // Her engine took the sealed share back with its key.
    wait_seeding(&carol, "Family", "lyon-hidden-holiday.bin");

    // Bob leaves the sphere by the owner's hand: his node is out of the group.
    alice.cli(&["sphere", "remove", "Family", "bob@family.test"]);
    wait_until("bob's node out of the group", || {
        encryption(&bob, "Family") == "waiting"
    });
    alice.cli(&["say", "Family", "Only carol reads this"]);
    wait_until("alice's words at carol's", || {
        said(&carol, "Family", "Only carol reads this").is_some()
    });
    assert!(said(&bob, "Family", "Only carol reads this").is_none());

    // What the server kept: ciphertext, and a body for plain clients.
    let files = server_files(&alice);
    assert!(
        !holds(&files, "encrypted: open it in spheres").is_empty(),
        "the room's archive is not where the test looks: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for secret in [
        "old station",
        "picnic basket",
        "lyon-hidden-holiday",
        "secret recipe",
        "Only carol",
    ] {
        assert!(
            holds(&files, secret).is_empty(),
            "the server holds {secret:?} in {:?}",
            holds(&files, secret)
        );
    }
}

#[test]
fn an_open_sphere_says_so_and_a_plain_one_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household_nodes(dir.path(), &[]);
    let made = alice.cli(&["sphere", "create", "Family", "--open"]);
    assert_eq!(made["encryption"], "open", "{made}");
    invite_and_join(&alice, &bob);
    assert_eq!(encryption(&bob, "Family"), "open");
    alice.cli(&["say", "Family", "In clear for every client"]);
    wait_until("alice's words at bob's", || {
        said(&bob, "Family", "In clear for every client").is_some()
    });
    let files = server_files(&alice);
    assert!(!holds(&files, "In clear for every client").is_empty());
}

/// A keyless seeder: an always-on node of the family's that they do not trust holds the
/// encrypted sphere's files without the keys, and serves them to a member while the sharer is
/// away; the member plays the video from it. What the seeder holds is ciphertext, and names
/// nothing.
#[test]
fn a_keyless_seeder_holds_ciphertext_and_serves_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, s) = test_prosody(dir.path(), &["alice", "bob", "vault"]);
    let mut alice = Node::on(dir.path(), "alice", &s);
    let mut bob = Node::on(dir.path(), "bob", &s);
    let mut vault = Node::on(dir.path(), "vault", &s);
    alice.start(&[]);
    bob.start(&[]);
    vault.start(&["--headless", "--accept-invites-from", "alice@home.test"]);
    alice.cli(&["sphere", "create", "Family"]);
    invite_to_family(&alice, &bob, "bob@home.test");
    wait_until("bob's node in the group", || {
        encryption(&bob, "Family") == "ready"
    });
    let invited = alice.cli(&["sphere", "invite", "Family", "vault@home.test", "--seeder"]);
    assert_eq!(invited["seeder"], true, "{invited}");
    wait_until("the vault holding the sphere", || {
        encryption(&vault, "Family") == "holding"
    });
    // Bob's node has the keys: it cannot become a keyless seeder by a second invitation.
    let why = alice.cli_fails(&["sphere", "invite", "Family", "bob@home.test", "--seeder"]);
    assert!(why.contains("remove them first"), "{why}");

    // Bob is away when alice shares a video.
    bob.stop();
    let clip = alice
        .spheres
        .join("Family")
        .join("holiday-secret-clip.webm");
    let data = write_random(&clip, 3_000_000, 41);
    alice.cli(&["share", "Family", clip.to_str().unwrap()]);
    let held = || {
        vault
            .cli(&["shares", "Family"])
            .as_array()
            .and_then(|l| l.first().cloned())
            .filter(|s| s["state"] == "seeding")
    };
    wait_until("the vault holding the share", || held().is_some());
    let row = held().unwrap();
    assert_eq!(
        (&row["name"], &row["size"]),
        (&"sealed".into(), &3_000_000.into()),
        "{row}"
    );
    // What the vault has is ciphertext, out of the sphere's folder, and names nothing.
    let held_at = PathBuf::from(row["path"].as_str().unwrap());
    let on_disk = std::fs::read(&held_at).unwrap();
    assert_eq!(on_disk.len(), data.len());
    assert!(
        !on_disk
            .windows(64)
            .any(|w| w == &data[1_000_000..1_000_064]),
        "the vault holds plaintext"
    );
    let everything = [files_under(&vault.data), files_under(&vault.spheres)].concat();
    assert!(
        holds(&everything, "holiday-secret").is_empty(),
        "the vault knows the name: {:?}",
        holds(&everything, "holiday-secret")
    );
    assert!(
        everything
            .iter()
            .all(|(_, b)| !b.windows(64).any(|w| w == &data[..64])),
        "a file of the vault's holds plaintext"
    );
    // And it can neither read nor speak in the sphere.
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "hello").unwrap();
    let why = vault.cli_fails(&["share", "Family", note.to_str().unwrap()]);
    assert!(why.contains("without the keys"), "{why}");

    // Alice leaves; bob comes back and gets the video from the vault alone, and plays it.
    alice.stop();
    bob.start(&[]);
    wait_seeding(&bob, "Family", "holiday-secret-clip.webm");
    let got = std::fs::read(bob.spheres.join("Family/holiday-secret-clip.webm")).unwrap();
    assert!(got == data, "bob's copy differs");
    let share = bob
        .share_state("Family", "holiday-secret-clip.webm")
        .unwrap();
    let hash = share["info_hash"].as_str().unwrap().to_owned();
    let (status, bytes) = common::node::range_get(
        &common::node::web_addr(&bob),
        &[&common::node::browser_session(&bob)],
        &format!("/torrents/{hash}/files/0"),
        "2000000-2000999",
    );
    assert_eq!(status, 206);
    assert!(
        bytes == data[2_000_000..2_001_000],
        "the video plays other bytes"
    );
    vault.stop();
    bob.stop();

    // Alice's export names the vault as a seeder: an import invites it again as one, and
    // never gives it the keys.
    alice.start(&[]);
    let archive = dir.path().join("alice-export.tar");
    alice.cli(&["export", archive.to_str().unwrap()]);
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("spheres.json")
        .output()
        .unwrap();
    assert!(out.status.success(), "no manifest in the export");
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let family = manifest["spheres"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "Family"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        family["seeders"],
        serde_json::json!(["vault@home.test"]),
        "{family}"
    );

    // Alice takes the video back. Bob cannot (he did not share it, nor owns the sphere);
    // his node stops seeding it and keeps his copy; the vault, which cannot read the
    // withdrawal, is told by alice's node and deletes its ciphertext.
    bob.start(&[]);
    vault.start(&["--headless", "--accept-invites-from", "alice@home.test"]);
    let why = bob.cli_fails(&["take-back", "Family", "holiday-secret-clip.webm"]);
    assert!(why.contains("only they or the sphere's owner"), "{why}");
    let taken = alice.cli(&["take-back", "Family", "holiday-secret-clip.webm"]);
    assert_eq!(taken["state"], "withdrawn", "{taken}");
    wait_until("the withdrawal at bob's", || {
        bob.share_state("Family", "holiday-secret-clip.webm")
            .is_some_and(|s| s["state"] == "withdrawn")
    });
    assert!(
        std::fs::read(bob.spheres.join("Family/holiday-secret-clip.webm")).unwrap() == data,
        "bob lost his copy"
    );
    wait_until("the vault letting the ciphertext go", || {
        !held_at.exists() && vault.cli(&["shares", "Family"])[0]["state"] == "withdrawn"
    });
    assert!(clip.exists(), "alice's own file went");
}

/// A person with two nodes (bob's laptop and his always-on box, one account) has a leaf for
/// each in the sphere's group: both read what is said and get what is shared, and a removal
/// takes both out.
#[test]
fn a_member_with_two_nodes_reads_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, s) = test_prosody(dir.path(), &["alice", "bob"]);
    let mut alice = Node::on(dir.path(), "alice", &s);
    let mut laptop = Node::on(dir.path(), "bob", &s);
    let mut always_on = Node::on(&dir.path().join("box"), "bob", &s);
    alice.start(&[]);
    laptop.start(&[]);
    always_on.start(&["--headless"]);
    alice.cli(&["sphere", "create", "Family"]);
    invite_to_family(&alice, &laptop, "bob@home.test");
    invite_to_family(&alice, &always_on, "bob@home.test");
    for n in [&laptop, &always_on] {
        wait_until("each of bob's nodes in the group", || {
            encryption(n, "Family") == "ready"
        });
        wait_until("each of bob's nodes with his tracker key", || {
            common::node::announce_of(n, "Family").is_some()
        });
    }
    alice.cli(&["say", "Family", "Two leaves for bob"]);
    let photo = alice.spheres.join("Family").join("two-homes.jpg");
    let data = write_random(&photo, 300_000, 77);
    alice.cli(&["share", "Family", photo.to_str().unwrap()]);
    for n in [&laptop, &always_on] {
        wait_until("alice's words on each of bob's nodes", || {
            said(n, "Family", "Two leaves for bob").is_some()
        });
        wait_seeding(n, "Family", "two-homes.jpg");
        let got = std::fs::read(n.spheres.join("Family/two-homes.jpg")).unwrap();
        assert!(got == data, "a copy of bob's differs");
    }
    // What one of bob's nodes says, the other reads.
    laptop.cli(&["say", "Family", "From the laptop"]);
    wait_until("the laptop's words on the box", || {
        said(&always_on, "Family", "From the laptop").is_some()
    });

    alice.cli(&["sphere", "remove", "Family", "bob@home.test"]);
    for n in [&laptop, &always_on] {
        wait_until("each of bob's nodes out of the group", || {
            encryption(n, "Family") == "waiting"
        });
    }
}

/// The same on ejabberd (Debian's 23.01), a server we did not write either: key packages on
/// its PEP, the group's messages through its rooms and archive, a share, a newcomer who gets
/// the library, a removed member's node out of the group; its spool holds none of the words.
#[test]
fn an_encrypted_sphere_on_ejabberd() {
    let dir = tempfile::tempdir().unwrap();
    let e = spheres_testkit::ejabberd::Ejabberd::start();
    e.register(&["alice", "bob", "carol"]);
    let on = |name: &str| Node::on_server(dir.path(), name, (&e.domain, e.c2s, &e.ca));
    let (mut alice, mut bob, mut carol) = (on("alice"), on("bob"), on("carol"));
    alice.start(&[]);
    bob.start(&[]);
    carol.start(&[]);
    let made = alice.cli(&["sphere", "create", "Family"]);
    assert_eq!(made["encryption"], "ready", "{made}");
    let join = |n: &Node| {
        invite_to_family(&alice, n, &format!("{}@{}", n.name, e.domain));
        wait_until("the node in the group", || {
            encryption(n, "Family") == "ready"
        });
    };
    join(&bob);
    alice.cli(&["say", "Family", "Ejabberd carries our whispers"]);
    wait_until("alice's words at bob's", || {
        said(&bob, "Family", "Ejabberd carries our whispers").is_some()
    });
    bob.cli(&["say", "Family", "And our answers"]);
    wait_until("bob's words at alice's", || {
        said(&alice, "Family", "And our answers").is_some()
    });
    let photo = alice.spheres.join("Family").join("secret-garden.jpg");
    let data = write_random(&photo, 200_000, 77);
    alice.cli(&["share", "Family", photo.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "secret-garden.jpg");
    assert!(std::fs::read(bob.spheres.join("Family/secret-garden.jpg")).unwrap() == data);

    // Carol comes later: the library brings her what was shared before.
    join(&carol);
    wait_seeding(&carol, "Family", "secret-garden.jpg");

    // Bob is removed: his node is out of the group and reads nothing said after.
    alice.cli(&["sphere", "remove", "Family", &format!("bob@{}", e.domain)]);
    alice.cli(&["say", "Family", "Only for carol now"]);
    wait_until("alice's words at carol's", || {
        said(&carol, "Family", "Only for carol now").is_some()
    });
    assert!(said(&bob, "Family", "Only for carol now").is_none());

    // What ejabberd keeps (its spool: archive, PEP, rooms) holds none of the words or names,
    // and does hold the encrypted messages' body.
    alice.stop();
    bob.stop();
    carol.stop();
    let files = files_under(&e.home());
    for secret in ["whispers", "our answers", "secret-garden", "Only for carol"] {
        assert!(
            holds(&files, secret).is_empty(),
            "ejabberd holds {secret:?} in {:?}",
            holds(&files, secret)
        );
    }
    assert!(
        !holds(&files, "encrypted: open it in spheres").is_empty(),
        "the archive was not where the test looked"
    );
}

/// A conversation's lines as `n` shows them.
fn conversation(n: &Node, with: &str) -> Vec<Value> {
    n.cli(&["chat", with])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_line(n: &Node, with: &str, body: &str, encrypted: bool) -> bool {
    conversation(n, with)
        .iter()
        .any(|l| l["body"] == body && l["encrypted"] == encrypted)
}

/// Two spheres users talk end to end encrypted (a group per sending device), and the household
/// server keeps none of their words; the lines stay readable after a restart; with someone
/// who has no spheres node the conversation is plain XMPP and each line says so.
#[test]
fn conversations_between_spheres_users_are_encrypted_and_plain_with_others() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, mut bob) = household_nodes(dir.path(), &[]);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    alice.cli(&["chat", "bob@family.test", "The key is under the blue pot"]);
    wait_until("alice's words at bob's", || {
        has_line(
            &bob,
            "alice@family.test",
            "The key is under the blue pot",
            true,
        )
    });
    bob.cli(&["chat", "alice@family.test", "Thanks, see you at eight"]);
    wait_until("bob's words at alice's", || {
        has_line(&alice, "bob@family.test", "Thanks, see you at eight", true)
    });
    let mine = conversation(&alice, "bob@family.test");
    assert!(
        mine.iter()
            .any(|l| l["body"] == "The key is under the blue pot" && l["mine"] == true),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .all(|l| l["encrypted"] == true && l["unreadable"] == false),
        "{mine:?}"
    );

    // Bob's node restarts: what was said stays readable, and the conversation goes on.
    bob.stop();
    bob.start(&[]);
    assert!(has_line(
        &bob,
        "alice@family.test",
        "The key is under the blue pot",
        true
    ));
    alice.cli(&["chat", "bob@family.test", "Bring the cake"]);
    wait_until("alice's next words at bob's", || {
        has_line(&bob, "alice@family.test", "Bring the cake", true)
    });

    // Carol has no spheres node: plain, as with any XMPP client.
    add_user(&alice, dir.path(), "carol");
    alice.cli(&["contact", "add", "carol@family.test"]);
    alice.cli(&["chat", "carol@family.test", "Plain hello for carol"]);
    wait_until("the plain line in alice's archive", || {
        has_line(&alice, "carol@family.test", "Plain hello for carol", false)
    });

    // The server's files (archives, offline messages) hold none of the encrypted words, and
    // do hold the plain line and the encrypted messages' body.
    let files = server_files(&alice);
    for secret in ["blue pot", "see you at eight", "Bring the cake"] {
        assert!(
            holds(&files, secret).is_empty(),
            "the server holds {secret:?} in {:?}",
            holds(&files, secret)
        );
    }
    assert!(!holds(&files, "Plain hello for carol").is_empty());
    assert!(!holds(&files, "encrypted: open it in spheres").is_empty());
}

/// 16-byte runs of `data`, one every 4 KiB, and how many of them `capture` holds.
fn runs_seen(data: &[u8], capture: &[u8]) -> usize {
    let runs: std::collections::HashSet<&[u8]> = data
        .chunks(4096)
        .filter(|c| c.len() >= 16)
        .map(|c| &c[..16])
        .collect();
    let mut seen = std::collections::HashSet::new();
    for w in capture.windows(16) {
        if runs.contains(w) {
            seen.insert(w);
        }
    }
    seen.len()
}

/// What goes over the network (captured on loopback with tcpdump: the household server's
/// client port, both nodes' BitTorrent ports, the owner's tracker) holds no word said, no file
/// name and no run of the content of an encrypted sphere, while the same capture does hold the
/// content of an open sphere's share (so it saw the transfers).
#[test]
fn the_network_sees_no_word_name_or_content_of_an_encrypted_sphere() {
    spheres_testkit::require_root("tcpdump captures loopback traffic");
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household_nodes(dir.path(), &[]);
    alice.cli(&["sphere", "create", "Family"]);
    alice.cli(&["sphere", "create", "Open", "--open"]);
    invite_and_join(&alice, &bob);
    alice.cli(&["sphere", "invite", "Open", "bob@family.test"]);
    wait_until("bob's second invitation", || {
        bob.cli(&["sphere", "invites"])
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    bob.cli(&["sphere", "join", "Open"]);
    wait_until("bob's node in the group", || {
        encryption(&bob, "Family") == "ready"
    });
    wait_until("bob's tracker key for the open sphere", || {
        common::node::announce_of(&bob, "Open").is_some()
    });

    let status = alice.cli(&["status"]);
    let port = |addr: &Value| -> String {
        let a: std::net::SocketAddr = addr
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        a.port().to_string()
    };
    let ports = [
        port(&status["household"]["c2s"]),
        port(&status["listen"]),
        port(&status["tracker"]),
        port(&bob.cli(&["status"])["listen"]),
    ];
    let filter = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let pcap = dir.path().join("traffic.pcap");
    let mut tcpdump = std::process::Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-s", "0", "-Z", "root", "-w"])
        .arg(&pcap)
        .arg(&filter)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump (scripts/install-test-deps installs it)");
    {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(tcpdump.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "tcpdump stopped");
        }
    }

    alice.cli(&["say", "Family", "Quokka moonlight rendezvous"]);
    wait_until("alice's words at bob's", || {
        said(&bob, "Family", "Quokka moonlight rendezvous").is_some()
    });
    let hidden = alice.spheres.join("Family").join("zebra-hidden-name.bin");
    let hidden_data = write_random(&hidden, 1_000_000, 91);
    alice.cli(&["share", "Family", hidden.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "zebra-hidden-name.bin");
    let control = alice.spheres.join("Open").join("control.bin");
    let control_data = write_random(&control, 1_000_000, 92);
    alice.cli(&["share", "Open", control.to_str().unwrap()]);
    wait_seeding(&bob, "Open", "control.bin");

    let pid = tcpdump.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    tcpdump.wait().unwrap();
    let capture = std::fs::read(&pcap).unwrap();
    assert!(
        runs_seen(&control_data, &capture) > 100,
        "the capture missed the open share's transfer ({} bytes captured)",
        capture.len()
    );
    assert_eq!(
        runs_seen(&hidden_data, &capture),
        0,
        "the encrypted share's content is on the wire"
    );
    for secret in ["zebra-hidden", "Quokka moonlight"] {
        assert!(
            !capture
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret:?} is on the wire"
        );
    }
}
