//! Interop with slixmpp, an XMPP client we did not write: chat in both directions through a
//! real Prosody.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::xmpp_parsers::message::{Lang, Message, MessageType};
use spheres_xmpp::xmpp_parsers::presence::Presence;
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event};

const WAIT: Duration = Duration::from_secs(30);

struct Slix {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Slix {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_slixmpp_both_ways() {
    let found = Command::new("python3")
        .args(["-c", "import slixmpp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "slixmpp is not installed: run scripts/install-test-deps"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = ManagedProsody::start(ProsodyConfig::new(
        dir.path().join("prosody"),
        "spheres.test",
    ))
    .await
    .unwrap();
    s.register("alice", "alice-secret").await.unwrap();
    s.register("bob", "bob-secret").await.unwrap();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/peers/slix_peer.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "bob@spheres.test",
            "bob-secret",
            "127.0.0.1",
            &s.c2s_addr().port().to_string(),
        ])
        .arg(s.ca_file())
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
    let slix = Slix { child, lines: rx };
    slix.wait("online", |v| v["event"] == "online");

    let mut cfg = ConnectConfig::new(BareJid::new("alice@spheres.test").unwrap(), "alice-secret");
    cfg.server = Some(s.c2s_addr());
    cfg.extra_ca = Some(s.ca_file());
    let (alice, mut events) = Client::connect(cfg).await.unwrap();
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
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            events.recv(),
        )
        .await
        {
            Ok(Some(Event::Message(m))) if m.type_ == MessageType::Chat && !m.bodies.is_empty() => {
                assert_eq!(m.bodies.values().next().unwrap(), &format!("echo: {text}"));
                break;
            }
            Ok(Some(Event::Disconnected(e))) => panic!("disconnected: {e}"),
            Ok(Some(_)) => {}
            other => panic!("no echo from slixmpp: {other:?}"),
        }
    }
    alice.close().await;
}
