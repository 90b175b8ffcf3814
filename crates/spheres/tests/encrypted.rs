//! Encrypted spheres, end to end, on alice's household Prosody: what members say, share and
//! post reaches them, and the server's archive holds none of it (docs/decisions/0014).

mod common;

use std::path::Path;

use common::node::{
    Node, household_member, household_nodes, in_feed, invite_and_join, wait_seeding,
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
