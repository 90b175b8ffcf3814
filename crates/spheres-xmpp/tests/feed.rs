//! The feed on a real Prosody and a real ejabberd: posts are XEP-0277 entries in PEP nodes; a contact is told of
//! a new post (our entity capabilities ask for it) and reads the history; someone who is not
//! a contact reads only what is open to everyone; comments go to the post's comments node
//! (open to anyone's writing there: the poster's node removes what strangers write);
//! a withdrawn post is withdrawn for the contact too.

mod common;

use common::*;
use spheres_xmpp::feed::{self, Access, Entry, FeedEvent};
use spheres_xmpp::{BareJid, Client, Event, TlsMode};
use tokio::sync::mpsc::Receiver;
use xmpp_parsers::presence::Presence;

fn post(text: &str, author: &BareJid) -> Entry {
    Entry {
        title: text.into(),
        content: text.into(),
        published: Some(1_800_000_000),
        author: Some(author.clone()),
        author_name: Some("Alice".into()),
        ..Default::default()
    }
}

/// Waits for a notification about `node` on `service`'s account.
async fn feed_event(events: &mut Receiver<Event>, what: &str, node: &str) -> FeedEvent {
    next_event(events, what, |e| match e {
        Event::Message(m) => FeedEvent::from_message(m).filter(|f| f.node == node),
        _ => None,
    })
    .await
}

/// Makes `a` and `b` contacts of each other (both subscribed to the other's presence).
async fn befriend(a: &Client, b: &Client, b_events: &mut Receiver<Event>) {
    let (a_bare, b_bare) = (a.jid().to_bare(), b.jid().to_bare());
    a.add_contact(&b_bare, None).await.unwrap();
    next_event(b_events, "the contact request", |e| match e {
        Event::Presence(p)
            if p.type_ == xmpp_parsers::presence::Type::Subscribe
                && p.from.as_ref().is_some_and(|f| f.to_bare() == a_bare) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    b.accept_contact(&a_bare).await.unwrap();
    b.add_contact(&a_bare, None).await.unwrap();
}

#[tokio::test]
async fn posts_reach_contacts_and_open_posts_reach_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    s.register("carol", "carol-secret").await.unwrap();
    the_feed_on(&prosody_server(&s), false).await;
}

/// The same on ejabberd (Debian's 23.01, `mod_pubsub` with PEP), a server we did not write
/// either.
#[tokio::test]
async fn posts_reach_contacts_and_open_posts_reach_everyone_on_ejabberd() {
    let e = Ejabberd::start();
    e.register(&["alice", "bob", "carol"]);
    the_feed_on(&e.server, true).await;
}

/// On ejabberd, bob asks for alice's posts explicitly once her node is there (XEP-0060
/// subscribe; the server sends the last post on subscription): he cannot count on his
/// capabilities (+notify, which ejabberd learns some time after his presence: a post made at
/// once may go unnoticed there); and ejabberd does not say who published an item.
async fn the_feed_on(s: &Server, ejabberd: bool) {
    let subscribe = ejabberd;
    let (alice, mut alice_events) = s.login("alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = s.login("bob", TlsMode::StartTls).await;
    let (carol, _carol_events) = s.login("carol", TlsMode::StartTls).await;
    let alice_jid = alice.jid().to_bare();
    for c in [&alice, &bob, &carol] {
        c.roster().await.unwrap();
        c.send(Presence::available()).await.unwrap();
    }
    befriend(&alice, &bob, &mut bob_events).await;
    // Auto-approved both ways: wait for alice to see bob's subscription settle.
    next_event(&mut alice_events, "bob's presence", |e| match e {
        Event::Presence(p)
            if p.type_ == xmpp_parsers::presence::Type::None
                && p.from
                    .as_ref()
                    .is_some_and(|f| f.to_bare() == bob.jid().to_bare()) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    // A server without pre-approval (ejabberd) asks alice about bob's request: she accepts.
    alice.accept_contact(&bob.jid().to_bare()).await.unwrap();
    next_event(&mut bob_events, "alice's presence", |e| match e {
        Event::Presence(p)
            if p.type_ == xmpp_parsers::presence::Type::None
                && p.from.as_ref().is_some_and(|f| f.to_bare() == alice_jid) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    // With our capabilities: the server learns (by asking us, disco) that we want posts.
    bob.available().await.unwrap();
    alice.available().await.unwrap();

    // A post for contacts, with its comments node made first.
    let id = feed::new_item_id();
    let comments = feed::comments_node(&id);
    alice
        .create_comments_node(&comments, Access::Presence)
        .await
        .unwrap();
    let mut entry = post("Photos from Lyon", &alice_jid);
    entry.links.push(feed::replies_link(&alice_jid, &comments));
    alice
        .publish(None, feed::MICROBLOG, &id, &entry, Access::Presence, false)
        .await
        .unwrap();
    if subscribe {
        bob.subscribe(&alice_jid, feed::MICROBLOG).await.unwrap();
    }

    let ev = feed_event(&mut bob_events, "alice's post", feed::MICROBLOG).await;
    assert_eq!(ev.service, alice_jid);
    assert_eq!(ev.items.len(), 1);
    assert_eq!(ev.items[0].id, id);
    assert_eq!(ev.items[0].entry.title, "Photos from Lyon");
    assert_eq!(
        ev.items[0].entry.comments_on(&alice_jid),
        Some(comments.clone())
    );

    // Bob reads the history; carol, not a contact, may not.
    let items = bob
        .items(&alice_jid, feed::MICROBLOG, Some(20))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    // Prosody's PEP says who published in notifications (not in answers to `items`);
    // ejabberd's does not by default. When it is said, it is right.
    let says_publisher = !subscribe;
    if says_publisher {
        assert_eq!(ev.items[0].publisher, Some(alice_jid.clone()));
    }
    let refused = carol.items(&alice_jid, feed::MICROBLOG, None).await;
    assert!(refused.is_err(), "{refused:?}");

    // A post for everyone: carol reads it.
    let open_id = feed::new_item_id();
    alice
        .publish(
            None,
            feed::EVERYONE,
            &open_id,
            &post("Hello world", &alice_jid),
            Access::Open,
            false,
        )
        .await
        .unwrap();
    let open = carol.items(&alice_jid, feed::EVERYONE, None).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].entry.title, "Hello world");
    // A second post on the same node: both are kept (Prosody keeps one by default).
    alice
        .publish(
            None,
            feed::MICROBLOG,
            &feed::new_item_id(),
            &post("Second", &alice_jid),
            Access::Presence,
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        bob.items(&alice_jid, feed::MICROBLOG, None)
            .await
            .unwrap()
            .len(),
        2
    );

    // Bob comments under the post, on alice's comments node; carol may not.
    let bob_jid = bob.jid().to_bare();
    let mut comment = post("Lovely!", &bob_jid);
    comment.in_reply_to = Some(id.clone());
    bob.publish(
        Some(&alice_jid),
        &comments,
        &feed::new_item_id(),
        &comment,
        Access::Presence,
        true,
    )
    .await
    .unwrap();
    let read = alice.items(&alice_jid, &comments, None).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].entry.author, Some(bob_jid.clone()));
    // Subscribed to the comments node, alice is told, with the server's word for who.
    alice.subscribe(&alice_jid, &comments).await.unwrap();
    let mut again = comment.clone();
    again.title = "Lovely, really".into();
    bob.publish(
        Some(&alice_jid),
        &comments,
        "c-again",
        &again,
        Access::Presence,
        true,
    )
    .await
    .unwrap();
    let told = feed_event(&mut alice_events, "bob's comment", &comments).await;
    assert_eq!(told.items[0].entry.author, Some(bob_jid.clone()));
    if says_publisher {
        assert_eq!(
            told.items[0].publisher,
            Some(bob_jid),
            "the server says who commented"
        );
    }
    // Comments nodes are open to publishing, as Movim makes them: Prosody lets carol write
    // there though she may not read it (ejabberd may refuse her). The poster's node removes
    // what she writes (`spheres::feed`); here, the owner's retraction of it.
    let spam = post("spam", &alice_jid);
    if carol
        .publish(
            Some(&alice_jid),
            &comments,
            "c2",
            &spam,
            Access::Presence,
            true,
        )
        .await
        .is_ok()
    {
        alice.retract(None, &comments, "c2").await.unwrap();
    }
    let read = alice.items(&alice_jid, &comments, None).await.unwrap();
    assert!(read.iter().all(|i| i.id != "c2"));

    // Withdrawn: bob is told, and it is gone from the history.
    alice.retract(None, feed::MICROBLOG, &id).await.unwrap();
    let ev = next_event(&mut bob_events, "the withdrawal", |e| match e {
        Event::Message(m) => FeedEvent::from_message(m).filter(|f| !f.retracted.is_empty()),
        _ => None,
    })
    .await;
    assert_eq!(ev.retracted, vec![id.clone()]);
    let left = bob.items(&alice_jid, feed::MICROBLOG, None).await.unwrap();
    assert!(left.iter().all(|i| i.id != id));
}
