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
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/peers/slix_peer.py"
        );
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script)
            .args([
                "bob@spheres.test",
                "bob-secret",
                "127.0.0.1",
                &s.c2s_addr().port().to_string(),
            ])
            .arg(s.ca_file());
        if let Some(room) = room {
            cmd.arg(room.as_str());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
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
