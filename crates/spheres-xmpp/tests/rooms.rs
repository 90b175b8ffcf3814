//! Spheres as rooms, against a real Prosody: create and configure, members-only enforcement,
//! invitations, endpoints in presence, share announcements with the .torrent inside, private
//! tracker grants, removal, and catching up from the room's archive.

mod common;

use common::{Ejabberd, Server, next_event, prosody_server, server};
use spheres_xmpp::muc::{Occupant, OwnerQuery, RoomSettings};
use spheres_xmpp::protocol::{Endpoint, Endpoints, Share, SpherePayload, TrackerGrant, Withdraw};
use spheres_xmpp::{BareJid, Event, Jid, TlsMode};
use tokio::sync::mpsc::Receiver;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::muc::user::Affiliation;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

fn share(n: u8, sharer: &BareJid) -> Share {
    let id = format!("{:040x}", n);
    Share {
        magnet: format!("magnet:?xt=urn:btih:{id}&dn=clip{n}.mp4"),
        id,
        name: format!("clip{n}.mp4"),
        size: 1_200_000_000,
        files: 1,
        media: "video".into(),
        sharer: sharer.clone(),
        torrent: Some(format!("d4:infod6:lengthi{n}eee").into_bytes()),
        sealed: None,
    }
}

fn payload_of(e: &Event) -> Option<SpherePayload> {
    match e {
        Event::Message(m) => SpherePayload::from_message(m),
        _ => None,
    }
}

fn occupant_of(e: &Event) -> Option<Occupant> {
    match e {
        Event::Presence(p) => Occupant::from_presence(p),
        _ => None,
    }
}

/// Waits for `room` to refuse `who`'s join (an error presence from the room).
async fn refused_by(room: &BareJid, events: &mut Receiver<Event>, who: &str) {
    next_event(events, &format!("{who}'s refusal"), |e| match e {
        Event::Presence(p)
            if p.type_ == PresenceType::Error
                && p.from.as_ref().is_some_and(|f| f.to_bare() == *room) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
}

fn form_value(q: &OwnerQuery, var: &str) -> Option<String> {
    q.form
        .as_ref()?
        .fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first().cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sphere_room_from_creation_to_removal_on_prosody() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    s.register("carol", "carol-secret").await.unwrap();
    sphere_room_scenario(&prosody_server(&s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sphere_room_from_creation_to_removal_on_ejabberd() {
    let e = Ejabberd::start();
    e.register(&["alice", "bob", "carol"]);
    sphere_room_scenario(&e.server).await;
}

/// Alice, bob and carol have accounts (`USER-secret`) on `server`.
async fn sphere_room_scenario(server: &Server) {
    let (alice, mut alice_events) = server.login("alice", TlsMode::StartTls).await;
    let (bob, mut bob_events) = server.login("bob", TlsMode::StartTls).await;
    let (carol, mut carol_events) = server.login("carol", TlsMode::Direct).await;
    for c in [&alice, &bob, &carol] {
        c.send(Presence::available()).await.unwrap();
    }
    let room = server.room("family");
    let alice_bare = alice.jid().to_bare();
    let bob_bare = bob.jid().to_bare();

    // Alice creates and configures the sphere's room.
    let settings = RoomSettings {
        name: "Family".into(),
        description: Some("Photos and videos".into()),
    };
    alice.create_room(&room, "alice", &settings).await.unwrap();
    let config = alice
        .iq(Iq::from_get("", OwnerQuery { form: None }).with_to(Jid::from(room.clone())))
        .await
        .unwrap();
    let Iq::Result {
        payload: Some(config),
        ..
    } = config
    else {
        panic!("no configuration form: {config:?}")
    };
    let config = OwnerQuery::try_from(config).unwrap();
    for (var, want) in [
        ("muc#roomconfig_persistentroom", "1"),
        ("muc#roomconfig_membersonly", "1"),
        ("muc#roomconfig_whois", "anyone"),
        ("muc#roomconfig_publicroom", "0"),
        ("muc#roomconfig_roomname", "Family"),
    ] {
        let got = form_value(&config, var);
        let same = got.as_deref() == Some(want)
            || (want == "1" && got.as_deref() == Some("true"))
            // Prosody leaves the value of an unchecked box out.
            || (want == "0" && matches!(got.as_deref(), None | Some("false")));
        assert!(same, "{var}: {got:?}");
    }

    // Carol is not a member: the room refuses her.
    carol.join_room(&room, "carol", None).await.unwrap();
    refused_by(&room, &mut carol_events, "carol").await;

    // Alice makes bob a member and invites him; bob's client sees the invitation.
    alice
        .set_affiliation(&room, &bob_bare, Affiliation::Member, None)
        .await
        .unwrap();
    alice
        .invite(&room, &bob_bare, Some("Family photos"), false, false)
        .await
        .unwrap();
    let invite = next_event(&mut bob_events, "the invitation", |e| match payload_of(e) {
        Some(SpherePayload::Invite(i)) => Some(i),
        _ => None,
    })
    .await;
    assert_eq!(invite.jid, room);
    assert_eq!(invite.reason.as_deref(), Some("Family photos"));

    // Bob joins with his node's endpoints; alice sees him, his real JID and endpoints.
    let endpoints = Endpoints {
        endpoints: vec![Endpoint {
            kind: "lan".into(),
            host: "192.168.1.20".into(),
            port: 6881,
        }],
    };
    bob.join_room(&room, "bob", Some(endpoints.clone()))
        .await
        .unwrap();
    let seen = next_event(&mut alice_events, "bob in the room", |e| {
        occupant_of(e).filter(|o| o.nick == "bob" && o.present)
    })
    .await;
    assert_eq!(seen.jid.map(|j| j.to_bare()), Some(bob_bare.clone()));
    assert_eq!(seen.affiliation, Affiliation::Member);
    assert_eq!(seen.endpoints, Some(endpoints));
    next_event(&mut bob_events, "bob's own presence", |e| {
        occupant_of(e).filter(|o| o.is_self).map(|_| ())
    })
    .await;

    let members = alice.room_members(&room).await.unwrap();
    assert!(members.contains(&(alice_bare.clone(), Affiliation::Owner)));
    assert!(members.contains(&(bob_bare.clone(), Affiliation::Member)));
    assert_eq!(members.len(), 2, "{members:?}");

    // A share announcement reaches bob with the .torrent intact.
    alice
        .send(share(1, &alice_bare).into_message(room.clone(), "Alice"))
        .await
        .unwrap();
    let got = next_event(&mut bob_events, "the share", |e| match payload_of(e) {
        Some(SpherePayload::Share(s)) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(got, share(1, &alice_bare));

    // Carol becomes a member too; a tracker grant for bob goes to bob only.
    alice
        .set_affiliation(&room, &carol.jid().to_bare(), Affiliation::Member, None)
        .await
        .unwrap();
    carol.join_room(&room, "carol", None).await.unwrap();
    next_event(&mut carol_events, "carol in the room", |e| {
        occupant_of(e).filter(|o| o.is_self).map(|_| ())
    })
    .await;
    let grant = TrackerGrant {
        member: bob_bare.clone(),
        announce: "http://127.0.0.1:6969/bobkey/announce".into(),
        secret: Some("5e".repeat(32)),
    };
    alice
        .send(
            grant
                .clone()
                .into_message(Jid::from(room.with_resource_str("bob").unwrap())),
        )
        .await
        .unwrap();
    let marker = Message::groupchat(Some(Jid::from(room.clone())))
        .with_body(Lang::from(""), "marker".to_owned());
    alice.send(marker).await.unwrap();
    let got = next_event(
        &mut bob_events,
        "bob's tracker grant",
        |e| match payload_of(e) {
            Some(SpherePayload::Tracker(t)) => Some(t),
            _ => None,
        },
    )
    .await;
    assert_eq!(got, grant);
    // The room relays in order: if carol had been sent the grant, it would come first.
    next_event(&mut carol_events, "the marker", |e| {
        if let Some(SpherePayload::Tracker(_)) = payload_of(e) {
            panic!("carol received bob's tracker key");
        }
        match e {
            Event::Message(m)
                if m.type_ == MessageType::Groupchat
                    && m.bodies.values().any(|b| b == "marker") =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;

    // Bob leaves; alice shares again and withdraws the first; bob catches up from the archive.
    bob.leave_room(&room, "bob").await.unwrap();
    next_event(&mut alice_events, "bob leaving", |e| {
        occupant_of(e).filter(|o| o.nick == "bob" && !o.present)
    })
    .await;
    alice
        .send(share(2, &alice_bare).into_message(room.clone(), "Alice"))
        .await
        .unwrap();
    alice
        .send(
            Withdraw {
                id: share(1, &alice_bare).id,
            }
            .into_message(room.clone(), "Alice", "clip1.mp4"),
        )
        .await
        .unwrap();
    // Wait until the room has both (alice gets her own messages back).
    next_event(
        &mut alice_events,
        "the withdrawal echo",
        |e| match payload_of(e) {
            Some(SpherePayload::Withdraw(_)) => Some(()),
            _ => None,
        },
    )
    .await;
    let history = bob.room_history(&room, None).await.unwrap();
    // The room records who sent each (Prosody with their affiliation, ejabberd without).
    assert!(
        history
            .iter()
            .all(|a| a.sender().is_some_and(|(jid, _)| jid == alice_bare)),
        "the archive names the sender"
    );
    let payloads: Vec<SpherePayload> = history
        .iter()
        .filter_map(|a| SpherePayload::from_message(&a.message))
        .collect();
    assert_eq!(
        payloads,
        vec![
            SpherePayload::Share(share(1, &alice_bare)),
            SpherePayload::Share(share(2, &alice_bare)),
            SpherePayload::Withdraw(Withdraw {
                id: share(1, &alice_bare).id
            }),
        ],
        "the archive has every announcement, in order (tracker grants are private)"
    );
    // Catching up from a known point returns only what came after it.
    let first_share = history
        .iter()
        .find(|a| {
            matches!(SpherePayload::from_message(&a.message), Some(SpherePayload::Share(ref s)) if s.name == "clip1.mp4")
        })
        .unwrap();
    let after = bob
        .room_history(&room, Some(first_share.id.clone()))
        .await
        .unwrap();
    assert!(after.iter().all(|a| a.id != first_share.id));
    assert_eq!(
        after
            .iter()
            .filter(|a| SpherePayload::from_message(&a.message).is_some())
            .count(),
        2
    );

    // Bob rejoins; alice removes him: he is thrown out (321) and cannot come back.
    bob.join_room(&room, "bob", None).await.unwrap();
    next_event(&mut bob_events, "bob back in", |e| {
        occupant_of(e)
            .filter(|o| o.is_self && o.present)
            .map(|_| ())
    })
    .await;
    alice.remove_member(&room, &bob_bare).await.unwrap();
    let out = next_event(&mut bob_events, "bob's removal", |e| {
        occupant_of(e).filter(|o| o.is_self && !o.present)
    })
    .await;
    assert!(out.codes.contains(&321), "{:?}", out.codes);
    bob.join_room(&room, "bob", None).await.unwrap();
    refused_by(&room, &mut bob_events, "bob").await;
    let members = alice.room_members(&room).await.unwrap();
    assert!(!members.iter().any(|(j, _)| *j == bob_bare), "{members:?}");
}
