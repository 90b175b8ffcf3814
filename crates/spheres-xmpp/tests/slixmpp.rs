//! Interop with slixmpp, an XMPP client we did not write: chat in both directions through a
//! real Prosody, and our share announcements read by it in a sphere's room.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{body, next_event, next_message};
use spheres_metainfo::{CreateOptions, create_torrent};
use spheres_xmpp::muc::RoomSettings;
use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::protocol::Share;
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event};
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::muc::user::Affiliation;
use xmpp_parsers::presence::Presence;

/// Debian's python: slixmpp is installed there (scripts/install-test-deps), beside
/// python3-libtorrent.
const PYTHON: &str = "/usr/bin/python3";
const WAIT: Duration = Duration::from_secs(30);

struct Slix {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Slix {
    /// Starts tests/peers/slix_peer.py as bob, joining `room` when given.
    fn spawn(s: &ManagedProsody, room: Option<&BareJid>) -> Slix {
        Slix::script(s, "slix_peer.py", room.map(|r| r.as_str()))
    }

    /// Starts `tests/peers/SCRIPT` as bob, with `extra` after the usual arguments; its stdin
    /// is a pipe (see `go`).
    fn script(s: &ManagedProsody, script: &str, extra: Option<&str>) -> Slix {
        let script = format!("{}/../../tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script)
            .args([
                "bob@spheres.test",
                "bob-secret",
                "127.0.0.1",
                &s.c2s_addr().port().to_string(),
            ])
            .arg(s.ca_file());
        if let Some(extra) = extra {
            cmd.arg(extra);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::piped())
            .spawn()
            .expect("start slixmpp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Slix { child, lines: rx }
    }

    /// Tells the script to go on (a line on its stdin).
    fn go(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn wait(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("slixmpp: no {what} within {WAIT:?}"));
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && pred(&v)
            {
                return v;
            }
        }
    }
}

impl Drop for Slix {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn prosody(dir: &std::path::Path) -> ManagedProsody {
    let found = Command::new(PYTHON)
        .args(["-c", "import slixmpp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "slixmpp is not installed: run scripts/install-test-deps"
    );
    let s = ManagedProsody::start(ProsodyConfig::new(dir.join("prosody"), "spheres.test"))
        .await
        .unwrap();
    s.register("alice", "alice-secret").await.unwrap();
    s.register("bob", "bob-secret").await.unwrap();
    s
}

fn alice_config(s: &ManagedProsody) -> ConnectConfig {
    let mut cfg = ConnectConfig::new(BareJid::new("alice@spheres.test").unwrap(), "alice-secret");
    cfg.server = Some(s.c2s_addr());
    cfg.extra_ca = Some(s.ca_file());
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_slixmpp_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let s = prosody(dir.path()).await;

    let slix = Slix::spawn(&s, None);
    slix.wait("online", |v| v["event"] == "online");

    let (alice, mut events) = Client::connect(alice_config(&s)).await.unwrap();
    alice.send(Presence::available()).await.unwrap();
    let text = "Léa shared holiday.mp4 (1.2 GB) 🎬";
    let bob = BareJid::new("bob@spheres.test").unwrap();
    alice
        .send(Message::chat(Some(bob.into())).with_body(Lang::from(""), text.to_owned()))
        .await
        .unwrap();
    // slixmpp got exactly what we sent...
    let got = slix.wait("our message", |v| v["event"] == "message");
    assert_eq!(got["body"], text);
    assert!(
        got["sender"]
            .as_str()
            .unwrap()
            .starts_with("alice@spheres.test/")
    );
    // ...and what it sends back reaches us.
    let echo = next_message(&mut events, MessageType::Chat).await;
    assert_eq!(body(&echo), format!("echo: {text}"));
    alice.close().await;
}

/// A third-party client in a sphere's room reads our share announcement with nothing but
/// docs/protocol.md: it takes the .torrent out of the payload, libtorrent parses it to the
/// announced infohash, and it answers in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_reads_our_share_announcements() {
    let dir = tempfile::tempdir().unwrap();
    let s = prosody(dir.path()).await;
    let (alice, mut events) = Client::connect(alice_config(&s)).await.unwrap();
    let room = BareJid::new(&format!("family@{}", s.muc_domain())).unwrap();
    let bob = BareJid::new("bob@spheres.test").unwrap();
    let settings = RoomSettings {
        name: "Family".into(),
        description: None,
    };
    alice.create_room(&room, "alice", &settings).await.unwrap();
    alice
        .set_affiliation(&room, &bob, Affiliation::Member, None)
        .await
        .unwrap();
    let slix = Slix::spawn(&s, Some(&room));
    slix.wait("slixmpp in the room", |v| v["event"] == "joined");

    // A real torrent of a real folder, made by our torrent maker.
    let data = dir.path().join("Été 2026");
    spheres_testkit::write_random(&data.join("plage.mp4"), 300_000, 1);
    spheres_testkit::write_random(&data.join("photos/1.jpg"), 40_000, 2);
    let opts = CreateOptions {
        private: true,
        ..CreateOptions::default()
    };
    let (torrent, meta) = create_torrent(&data, &opts, &mut |_| {}).unwrap();
    let share = Share {
        id: meta.info_hash.to_hex(),
        name: meta.name.clone(),
        size: meta.total_length,
        files: 2,
        media: "video".into(),
        sharer: alice.jid().to_bare(),
        magnet: meta.magnet().to_string(),
        torrent: Some(torrent),
        sealed: None,
    };
    alice
        .send(share.clone().into_message(room.clone(), "Alice"))
        .await
        .unwrap();

    let got = slix.wait("the share", |v| v["event"] == "share");
    assert_eq!(got["id"], share.id);
    assert_eq!(
        got["infohash"], share.id,
        "libtorrent read the torrent we sent"
    );
    assert_eq!(got["files"], 2);
    assert_eq!(got["name"], "Été 2026");
    assert_eq!(got["size"], meta.total_length);
    assert_eq!(got["magnet"], share.magnet);
    assert!(
        got["body"]
            .as_str()
            .unwrap()
            .starts_with("Alice shared Été 2026 (2 files, 340 kB)"),
        "{got}"
    );
    // And it chats back in the room.
    next_event(&mut events, "slixmpp's answer in the room", |e| match e {
        Event::Message(m) if m.type_ == MessageType::Groupchat && body(m) == "got Été 2026" => {
            Some(())
        }
        _ => None,
    })
    .await;
    alice.close().await;
}

/// The feed (XEP-0277) with slixmpp, a client we did not write, both ways: it reads our post
/// and the comments node our post names, and comments there with nothing but the XEPs; its
/// own post reaches us through the server's +notify, which our capabilities ask for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_with_slixmpp_both_ways() {
    use spheres_xmpp::feed::{self, Access, Entry, FeedEvent};
    let dir = tempfile::tempdir().unwrap();
    let s = prosody(dir.path()).await;
    let mut slix = Slix::script(&s, "slix_feed.py", Some("alice@spheres.test"));
    slix.wait("online", |v| v["event"] == "online");

    let (alice, mut events) = Client::connect(alice_config(&s)).await.unwrap();
    let alice_jid = alice.jid().to_bare();
    let bob = BareJid::new("bob@spheres.test").unwrap();
    alice.roster().await.unwrap();
    alice.available().await.unwrap();
    // slixmpp accepts and asks back; we pre-approved it: contacts both ways.
    alice.add_contact(&bob, None).await.unwrap();
    next_event(&mut events, "bob as a mutual contact", |e| match e {
        Event::Roster(items) => items
            .iter()
            .any(|i| i.jid == bob && i.subscription == spheres_xmpp::contacts::Subscription::Both)
            .then_some(()),
        _ => None,
    })
    .await;

    let id = feed::new_item_id();
    let comments = feed::comments_node(&id);
    alice
        .create_comments_node(&comments, Access::Presence)
        .await
        .unwrap();
    let entry = Entry {
        title: "Photos from Lyon".into(),
        content: "Photos from Lyon".into(),
        published: Some(1_800_000_000),
        author: Some(alice_jid.clone()),
        links: vec![feed::replies_link(&alice_jid, &comments)],
        ..Default::default()
    };
    alice
        .publish(None, feed::MICROBLOG, &id, &entry, Access::Presence, false)
        .await
        .unwrap();

    slix.go();
    let read = slix.wait("our post", |v| v["event"] == "items");
    assert_eq!(read["posts"][0]["id"], id.as_str(), "{read}");
    assert_eq!(read["posts"][0]["title"], "Photos from Lyon");
    assert_eq!(read["posts"][0]["author"], "xmpp:alice@spheres.test");
    assert_eq!(read["posts"][0]["replies"], comments.as_str());
    slix.wait("its comment", |v| v["event"] == "commented");
    let got = alice.items(&alice_jid, &comments, None).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].entry.author, Some(bob.clone()));
    assert_eq!(got[0].entry.title, "Lovely, from slixmpp");
    assert_eq!(got[0].entry.in_reply_to.as_deref(), Some(id.as_str()));

    let posted = slix.wait("its post", |v| v["event"] == "posted");
    let ev = next_event(&mut events, "slixmpp's post", |e| match e {
        Event::Message(m) => FeedEvent::from_message(m).filter(|f| f.service == bob),
        _ => None,
    })
    .await;
    assert_eq!(ev.node, feed::MICROBLOG);
    assert_eq!(ev.items[0].id, posted["id"].as_str().unwrap());
    assert_eq!(ev.items[0].entry.title, "Posted from slixmpp");
    alice.close().await;
}
