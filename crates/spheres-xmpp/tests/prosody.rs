//! Our client against a real Prosody (Debian's 0.12), managed by our own `ManagedProsody`.

use std::time::{Duration, Instant};

use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::xmpp_parsers::message::{Lang, Message, MessageType};
use spheres_xmpp::xmpp_parsers::muc::Muc;
use spheres_xmpp::xmpp_parsers::presence::Presence;
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event, TlsMode, XmppError};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

async fn server(dir: &std::path::Path) -> ManagedProsody {
    let s = ManagedProsody::start(ProsodyConfig::new(dir.join("prosody"), "spheres.test"))
        .await
        .unwrap();
    s.register("alice", "alice-secret").await.unwrap();
    s.register("bob", "bob-secret").await.unwrap();
    s
}

fn config(s: &ManagedProsody, user: &str, password: &str, tls: TlsMode) -> ConnectConfig {
    let mut c = ConnectConfig::new(
        BareJid::new(&format!("{user}@spheres.test")).unwrap(),
        password,
    );
    c.server = Some(match tls {
        TlsMode::StartTls => s.c2s_addr(),
        TlsMode::Direct => s.tls_addr(),
    });
    c.tls = tls;
    c.extra_ca = Some(s.ca_file());
    c
}

/// Logs `user` in with the password `server()` gave it.
async fn login(s: &ManagedProsody, user: &str, tls: TlsMode) -> (Client, Receiver<Event>) {
    Client::connect(config(s, user, &format!("{user}-secret"), tls))
        .await
        .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"))
}

async fn next_message(events: &mut Receiver<Event>, kind: MessageType) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(Event::Message(m))) if m.type_ == kind && !m.bodies.is_empty() => return m,
            Ok(Some(Event::Disconnected(e))) => panic!("disconnected: {e}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no {kind:?} message within {WAIT:?}"),
        }
    }
}

fn body(m: &Message) -> String {
    m.bodies.values().next().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_starttls_and_direct_tls_and_chat() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (alice, mut alice_events) = login(&s, "alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = login(&s, "bob", TlsMode::Direct).await;
    assert_eq!(alice.jid().to_bare().as_str(), "alice@spheres.test");
    assert!(
        alice.stream_management(),
        "Prosody offers XEP-0198; we should have enabled it"
    );
    bob.send(Presence::available()).await.unwrap();
    alice.send(Presence::available()).await.unwrap();

    let to_bob = Message::chat(Some(bob.jid().clone().into()))
        .with_body(Lang::from(""), "Bonjour Bob, été 🌞".to_owned());
    alice.send(to_bob).await.unwrap();
    let got = next_message(&mut bob_events, MessageType::Chat).await;
    assert_eq!(body(&got), "Bonjour Bob, été 🌞");
    assert_eq!(
        got.from.as_ref().map(|j| j.to_bare()),
        Some(alice.jid().to_bare())
    );

    let reply = Message::chat(Some(alice.jid().clone().into()))
        .with_body(Lang::from(""), "hi alice".to_owned());
    bob.send(reply).await.unwrap();
    assert_eq!(
        body(&next_message(&mut alice_events, MessageType::Chat).await),
        "hi alice"
    );
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let started = Instant::now();
    let err = Client::connect(config(&s, "alice", "not-her-password", TlsMode::StartTls))
        .await
        .err()
        .expect("login must fail");
    assert!(matches!(err, XmppError::Auth(_)), "{err}");
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("wrong user name or password"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // An unknown CA is a TLS error, not a silent downgrade.
    let mut untrusted = config(&s, "alice", "alice-secret", TlsMode::Direct);
    untrusted.extra_ca = None;
    let err = Client::connect(untrusted)
        .await
        .err()
        .expect("untrusted certificate must fail");
    assert!(matches!(err, XmppError::Tls(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_carries_messages_between_members() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (alice, mut alice_events) = login(&s, "alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = login(&s, "bob", TlsMode::StartTls).await;
    let room = BareJid::new(&format!("family@{}", s.muc_domain())).unwrap();
    for (client, nick) in [(&alice, "alice"), (&bob, "bob")] {
        let join = Presence::available()
            .with_to(room.with_resource_str(nick).unwrap())
            .with_payload(Muc::new());
        client.send(join).await.unwrap();
    }
    // Wait until bob sees himself in the room (status 110), then talk.
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            bob_events.recv(),
        )
        .await
        {
            Ok(Some(Event::Presence(p)))
                if p.from.as_ref().is_some_and(|f| {
                    f.to_bare() == room && f.resource().is_some_and(|r| r.as_str() == "bob")
                }) =>
            {
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("bob did not join: {other:?}"),
        }
    }
    let hello = Message::groupchat(Some(room.clone().into()))
        .with_body(Lang::from(""), "photos are up".to_owned());
    alice.send(hello).await.unwrap();
    let got = next_message(&mut bob_events, MessageType::Groupchat).await;
    assert_eq!(body(&got), "photos are up");
    assert_eq!(
        got.from
            .as_ref()
            .and_then(|f| f.resource().map(|r| r.as_str().to_owned()))
            .as_deref(),
        Some("alice")
    );
    // Alice gets her own message reflected by the room, as every MUC member does.
    assert_eq!(
        body(&next_message(&mut alice_events, MessageType::Groupchat).await),
        "photos are up"
    );
}

/// The acceptance bar from the brief: 100 consecutive connect / join / send / receive cycles,
/// 100 of 100, with no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_one_hundred_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let room = BareJid::new(&format!("soak@{}", s.muc_domain())).unwrap();
    let (listener, mut events) = login(&s, "bob", TlsMode::StartTls).await;
    listener
        .send(
            Presence::available()
                .with_to(room.with_resource_str("bob").unwrap())
                .with_payload(Muc::new()),
        )
        .await
        .unwrap();
    for cycle in 0..100 {
        let (alice, _alice_events) = tokio::time::timeout(
            WAIT,
            Client::connect(config(&s, "alice", "alice-secret", TlsMode::StartTls)),
        )
        .await
        .unwrap_or_else(|_| panic!("cycle {cycle}: connect hung"))
        .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        alice
            .send(
                Presence::available()
                    .with_to(room.with_resource_str("alice").unwrap())
                    .with_payload(Muc::new()),
            )
            .await
            .unwrap();
        let text = format!("cycle {cycle}");
        alice
            .send(
                Message::groupchat(Some(room.clone().into()))
                    .with_body(Lang::from(""), text.clone()),
            )
            .await
            .unwrap();
        loop {
            let m = next_message(&mut events, MessageType::Groupchat).await;
            if body(&m) == text {
                break;
            }
        }
        alice.close().await;
    }
}
