//! Our client against real servers: Prosody (Debian's 0.12, managed by our own
//! `ManagedProsody`) and, for the scenarios marked so, ejabberd (Debian's 23.01).

mod common;

use std::time::{Duration, Instant};

use common::{
    Ejabberd, Server, WAIT, body, config, login, next_event, next_message, prosody_server, server,
};
use spheres_testkit::Relay;
use spheres_xmpp::{BareJid, Client, Event, TlsMode, XmppError};
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::Presence;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_starttls_and_direct_tls_and_chat_on_prosody() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    login_and_chat(&prosody_server(&s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_starttls_and_direct_tls_and_chat_on_ejabberd() {
    let e = Ejabberd::start();
    e.register(&["alice", "bob"]);
    login_and_chat(&e.server).await;
}

async fn login_and_chat(s: &Server) {
    let (alice, mut alice_events) = s.login("alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = s.login("bob", TlsMode::Direct).await;
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
async fn wrong_password_is_reported_at_once_on_prosody() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    wrong_password(&prosody_server(&s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_at_once_on_ejabberd() {
    let e = Ejabberd::start();
    e.register(&["alice", "bob"]);
    wrong_password(&e.server).await;
}

async fn wrong_password(s: &Server) {
    let started = Instant::now();
    let err = Client::connect(s.config("alice", "not-her-password", TlsMode::StartTls))
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
    let mut untrusted = s.config("alice", "alice-secret", TlsMode::Direct);
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

fn chat(to: impl Into<spheres_xmpp::Jid>, text: &str) -> Message {
    Message::chat(Some(to.into())).with_body(Lang::from(""), text.to_owned())
}

/// The network drops under alice: she reconnects by herself and resumes the session
/// (XEP-0198), so what bob sent her meanwhile and what she sent while offline both arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_without_losing_messages_on_prosody() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    resume_after_a_network_cut(&prosody_server(&s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_without_losing_messages_on_ejabberd() {
    let e = Ejabberd::start();
    e.register(&["alice", "bob"]);
    resume_after_a_network_cut(&e.server).await;
}

async fn resume_after_a_network_cut(s: &Server) {
    let relay = Relay::start(s.c2s).await;
    let mut cfg = s.config("alice", "alice-secret", TlsMode::StartTls);
    cfg.server = Some(relay.addr());
    let (alice, mut alice_events) = Client::connect(cfg).await.unwrap();
    assert!(alice.stream_management());
    let (bob, mut bob_events) = s.login("bob", TlsMode::StartTls).await;
    alice.send(Presence::available()).await.unwrap();
    bob.send(Presence::available()).await.unwrap();
    let alice_jid = alice.jid();

    relay.cut();
    next_event(&mut alice_events, "alice going offline", |e| {
        matches!(e, Event::Offline(_)).then_some(())
    })
    .await;
    bob.send(chat(alice_jid.clone(), "sent while you were away"))
        .await
        .unwrap();
    alice
        .send(chat(bob.jid().to_bare(), "queued while offline"))
        .await
        .unwrap();
    let resumed = next_event(&mut alice_events, "alice back online", |e| match e {
        Event::Online { resumed } => Some(*resumed),
        _ => None,
    })
    .await;
    assert!(resumed, "Prosody keeps the session: it must be resumed");
    assert_eq!(alice.jid(), alice_jid, "a resumed session keeps its JID");
    assert_eq!(
        body(&next_message(&mut alice_events, MessageType::Chat).await),
        "sent while you were away"
    );
    assert_eq!(
        body(&next_message(&mut bob_events, MessageType::Chat).await),
        "queued while offline"
    );
}

/// The server restarts: the session is gone, so alice gets a new one (same resource), is
/// told so, and chat works again. Also proves `supervise` brings a stopped Prosody back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_gives_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = server(dir.path()).await;
    let mut cfg = config(&s, "alice", "alice-secret", TlsMode::StartTls);
    cfg.reconnect_delay = Duration::from_millis(200);
    let (alice, mut alice_events) = Client::connect(cfg).await.unwrap();
    let before = alice.jid();
    s.stop().await;
    next_event(&mut alice_events, "alice going offline", |e| {
        matches!(e, Event::Offline(_)).then_some(())
    })
    .await;
    // The server is down until `supervise`: the first attempt (at once) fails, and the client
    // says when it tries again (the first delay, give or take its 25 % jitter).
    let (attempt, retry_in) = next_event(&mut alice_events, "a failed attempt", |e| match e {
        Event::Retrying {
            attempt, retry_in, ..
        } => Some((*attempt, *retry_in)),
        _ => None,
    })
    .await;
    assert_eq!(attempt, 1);
    assert!(
        (Duration::from_millis(150)..=Duration::from_millis(250)).contains(&retry_in),
        "{retry_in:?}"
    );
    assert!(s.supervise().await.unwrap(), "supervise must restart it");
    let resumed = next_event(&mut alice_events, "alice back online", |e| match e {
        Event::Online { resumed } => Some(*resumed),
        _ => None,
    })
    .await;
    assert!(!resumed, "a restarted server cannot resume the old session");
    assert_eq!(alice.jid(), before, "the same resource is asked for again");
    let (bob, _bob_events) = login(&s, "bob", TlsMode::StartTls).await;
    bob.send(chat(alice.jid(), "still there?")).await.unwrap();
    assert_eq!(
        body(&next_message(&mut alice_events, MessageType::Chat).await),
        "still there?"
    );
}
