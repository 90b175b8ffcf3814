//! Contacts and 1:1 chat against a real Prosody: the subscription handshake, presence, roster
//! removal, carbons between two devices of one account, and history from the archive.

mod common;

use common::{body, config, login, next_event, next_message, server};
use spheres_xmpp::contacts::{Carbon, SubscriptionEvent};
use spheres_xmpp::{BareJid, Client, Event, Jid, TlsMode};
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::roster::Subscription;

fn chat(to: impl Into<Jid>, text: &str) -> Message {
    Message::chat(Some(to.into())).with_body(Lang::from(""), text.to_owned())
}

fn subscription_of(e: &Event) -> Option<SubscriptionEvent> {
    match e {
        Event::Presence(p) => SubscriptionEvent::from_presence(p),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_handshake_presence_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (alice, mut alice_events) = login(&s, "alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = login(&s, "bob", TlsMode::StartTls).await;
    let alice_bare = alice.jid().to_bare();
    let bob_bare = bob.jid().to_bare();
    // As any client does at login: fetch the roster (which also subscribes this session to
    // roster pushes, RFC 6121 §2.1.6), then send presence.
    for c in [&alice, &bob] {
        assert!(c.roster().await.unwrap().is_empty());
        c.send(Presence::available()).await.unwrap();
    }

    alice.add_contact(&bob_bare, Some("Bob")).await.unwrap();
    let asked = next_event(
        &mut bob_events,
        "alice's request",
        |e| match subscription_of(e) {
            Some(SubscriptionEvent::Request(j)) => Some(j),
            _ => None,
        },
    )
    .await;
    assert_eq!(asked, alice_bare);
    bob.accept_contact(&alice_bare).await.unwrap();
    // The server tells alice through roster pushes; she pre-approved bob, so his request
    // back is granted at once and the relationship becomes mutual.
    next_event(&mut alice_events, "a mutual subscription", |e| match e {
        Event::Roster(items) => items
            .iter()
            .any(|i| i.jid == bob_bare && i.subscription == Subscription::Both)
            .then_some(()),
        _ => None,
    })
    .await;
    next_event(&mut alice_events, "bob's presence", |e| match e {
        Event::Presence(p)
            if p.type_ == PresenceType::None
                && p.from.as_ref().is_some_and(|f| f.to_bare() == bob_bare) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    let roster = alice.roster().await.unwrap();
    let item = roster
        .iter()
        .find(|i| i.jid == bob_bare)
        .expect("bob listed");
    assert_eq!(item.name.as_deref(), Some("Bob"));
    assert_eq!(item.subscription, Subscription::Both);

    alice.remove_contact(&bob_bare).await.unwrap();
    assert!(
        !alice
            .roster()
            .await
            .unwrap()
            .iter()
            .any(|i| i.jid == bob_bare),
        "removed contacts leave the roster"
    );
    let gone = next_event(
        &mut bob_events,
        "the cancellation",
        |e| match subscription_of(e) {
            Some(SubscriptionEvent::Refused(j) | SubscriptionEvent::Unfollowed(j)) => Some(j),
            _ => None,
        },
    )
    .await;
    assert_eq!(gone, alice_bare);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbons_and_history_keep_every_device_in_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let mut phone_cfg = config(&s, "alice", "alice-secret", TlsMode::StartTls);
    phone_cfg.resource = Some("phone".into());
    let mut laptop_cfg = phone_cfg.clone();
    laptop_cfg.resource = Some("laptop".into());
    let (phone, mut phone_events) = Client::connect(phone_cfg).await.unwrap();
    let (laptop, mut laptop_events) = Client::connect(laptop_cfg).await.unwrap();
    let (bob, mut bob_events) = login(&s, "bob", TlsMode::StartTls).await;
    let me: BareJid = phone.jid().to_bare();
    for c in [&phone, &laptop, &bob] {
        c.send(Presence::available()).await.unwrap();
    }
    laptop.enable_carbons().await.unwrap();

    bob.send(chat(phone.jid(), "to your phone")).await.unwrap();
    assert_eq!(
        body(&next_message(&mut phone_events, MessageType::Chat).await),
        "to your phone"
    );
    let received = next_event(&mut laptop_events, "the received carbon", |e| match e {
        Event::Message(m) => Carbon::from_message(m, &me),
        _ => None,
    })
    .await;
    assert!(
        matches!(&received, Carbon::Received(m) if body(m) == "to your phone"),
        "{received:?}"
    );

    phone.send(chat(bob.jid(), "from my phone")).await.unwrap();
    assert_eq!(
        body(&next_message(&mut bob_events, MessageType::Chat).await),
        "from my phone"
    );
    let sent = next_event(&mut laptop_events, "the sent carbon", |e| match e {
        Event::Message(m) => Carbon::from_message(m, &me),
        _ => None,
    })
    .await;
    assert!(
        matches!(&sent, Carbon::Sent(m) if body(m) == "from my phone"),
        "{sent:?}"
    );

    // A "carbon" from anyone but our own account is a forgery.
    let mut forged = chat(me.clone(), "");
    forged.from = Some(bob.jid().into());
    forged.payloads.push(
        format!(
            "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='{}' type='chat'><body>forged</body></message></forwarded></received>",
            me
        )
        .parse()
        .unwrap(),
    );
    assert_eq!(Carbon::from_message(&forged, &me), None);

    // The laptop, or a device that was off, reads the conversation from the archive.
    let history = laptop
        .chat_history(&bob.jid().to_bare(), None)
        .await
        .unwrap();
    let texts: Vec<String> = history.iter().map(|a| body(&a.message)).collect();
    assert_eq!(texts, vec!["to your phone", "from my phone"]);
}
