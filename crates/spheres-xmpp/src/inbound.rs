//! What the server sends, as the node needs it: typed, with the stanzas left inside this crate.
//! [`Inbound::from_event`] reads one [`Event`] of the [`Client`](crate::Client); a room's
//! archive gives the same [`RoomMessage`]s through [`Archived::into_room_message`]. Pure: no
//! I/O, no panics on what the network sends.

use jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::XmppError;
use crate::client::Event;
use crate::contacts::{Carbon, SubscriptionEvent};
use crate::feed::FeedEvent;
use crate::muc::{Affiliation, Archived, Occupant};
use crate::protocol::{Claim, DirectInvite, SpherePayload, TrackerGrant};

/// Something said or sent in a room, live or from its archive.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomMessage {
    pub room: BareJid,
    /// The sender's nick in the room (empty when the room gives none).
    pub nick: String,
    /// What people read: the body, or for an announcement its first line only (the rest is
    /// the magnet link, for plain clients); `None` for a sphere's posts and comments, which
    /// the feed shows.
    pub said: Option<String>,
    /// A spheres payload, when it carries one.
    pub payload: Option<SpherePayload>,
    /// The room's archive id for it: XEP-0359 `<stanza-id by='room'/>` live, the archive's own
    /// id in a catch-up.
    pub archive_id: Option<String>,
    /// Who sent it as the room recorded them in its archive (real bare JID and affiliation);
    /// `None` live (the sender is the occupant behind `nick`) and when the record is missing or
    /// ambiguous.
    pub recorded_sender: Option<(BareJid, Affiliation)>,
    /// When the room received it (seconds since 1970), from the archive.
    pub unix_time: Option<i64>,
}

/// One thing the server told us.
#[derive(Debug)]
pub enum Inbound {
    /// Said or sent in a room (groupchat).
    Room(Box<RoomMessage>),
    /// A sphere's tracker key, in a private message from someone in a room.
    TrackerGrant {
        room: BareJid,
        nick: String,
        grant: TrackerGrant,
    },
    /// An MLS message in a private message from someone in a room (`room/nick`): an
    /// encrypted sphere's tracker grant, sealed for its group.
    SealedPrivate {
        room: BareJid,
        nick: String,
        sealed: crate::sealed::Sealed,
    },
    /// An invitation to a room (XEP-0249), from anyone.
    /// `encrypted` when it says its sphere is; `seeder` when it asks this node to hold the
    /// sphere's encrypted files without its keys.
    Invitation {
        from: BareJid,
        invite: DirectInvite,
        encrypted: bool,
        seeder: bool,
    },
    /// An invitation link used: its holder's claim, sent to the sphere's owner.
    Claim { from: BareJid, claim: Claim },
    /// A one-to-one conversation has a new message (ours from another device included).
    Chat { with: BareJid },
    /// An MLS message of a one-to-one conversation (see [`crate::sealed::chat_group`]),
    /// from `from` (as the server says).
    SealedChat {
        from: BareJid,
        sealed: crate::sealed::Sealed,
    },
    /// Someone in a room, as a presence from the room says.
    Occupant(Occupant),
    /// Someone asks to be our contact.
    ContactRequest(BareJid),
    /// Posts or comments published or withdrawn (XEP-0277 over PEP), from whoever's account
    /// [`FeedEvent::service`] names: the node believes it only from people it follows.
    Feed(FeedEvent),
    /// A contact's device came online (`online`) or left.
    ContactPresence {
        who: BareJid,
        resource: String,
        online: bool,
    },
    /// Our contact list changed (already acknowledged to the server).
    RosterChanged,
    /// A call rings, is answered, declined or withdrawn (XEP-0353), from `from`: a contact's
    /// device, or another device of ours.
    Ring {
        from: jid::FullJid,
        ring: crate::call::Ring,
    },
    /// Another device of ours said this about a call to `to` (a carrier copy, XEP-0280):
    /// answered or declined there.
    RingSent {
        to: BareJid,
        ring: crate::call::Ring,
    },
    /// A call's session (XEP-0166): to be answered.
    Jingle(Box<crate::call::JingleRequest>),
    /// The connection dropped; the client reconnects by itself.
    Offline(XmppError),
    /// A reconnection attempt failed; the next one is in `retry_in`.
    Retrying {
        error: XmppError,
        retry_in: std::time::Duration,
    },
    /// Connected again; `resumed`: nothing was lost and rooms are still joined.
    Online { resumed: bool },
    /// The client stopped for good.
    Stopped(XmppError),
}

impl Inbound {
    /// Reads an event of the client for the node; `None` for what the node has no use for
    /// (a subscription answer, an error bounced back, a message with nothing in it).
    /// `me`: our account (carbons are believed only from it).
    pub fn from_event(event: Event, me: &BareJid) -> Option<Inbound> {
        match event {
            Event::Message(m) => from_message(m, me),
            Event::Presence(p) => from_presence(p, me),
            Event::Roster(_) => Some(Inbound::RosterChanged),
            Event::Jingle(j) => Some(Inbound::Jingle(j)),
            Event::Offline(e) => Some(Inbound::Offline(e)),
            Event::Retrying {
                error, retry_in, ..
            } => Some(Inbound::Retrying { error, retry_in }),
            Event::Online { resumed } => Some(Inbound::Online { resumed }),
            Event::Disconnected(e) => Some(Inbound::Stopped(e)),
        }
    }
}

/// The archive id the room gave a live message (XEP-0359 `<stanza-id by='room'/>`).
fn stanza_id(m: &Message, room: &BareJid) -> Option<String> {
    m.payloads
        .iter()
        .filter(|p| p.is("stanza-id", "urn:xmpp:sid:0"))
        .find(|p| p.attr("by") == Some(room.as_str()))
        .and_then(|p| p.attr("id").map(str::to_owned))
}

/// What people read of a room message (or of an encrypted one's plaintext).
pub fn said(m: &Message, payload: Option<&SpherePayload>) -> Option<String> {
    let body = m.bodies.values().next()?;
    Some(match payload {
        // The feed shows posts and comments; the chat does not repeat them. An encrypted
        // message says what it says once opened. Libraries and holds are for nodes.
        Some(
            SpherePayload::Post(_)
            | SpherePayload::Retract(_)
            | SpherePayload::Sealed(_)
            | SpherePayload::Library(_)
            | SpherePayload::Holds(_),
        ) => {
            return None;
        }
        Some(_) => body.lines().next().unwrap_or_default().to_owned(),
        None => body.clone(),
    })
}

fn room_message(m: &Message, room: BareJid) -> RoomMessage {
    let payload = SpherePayload::from_message(m);
    RoomMessage {
        nick: m
            .from
            .as_ref()
            .and_then(|f| f.resource().map(|r| r.as_str().to_owned()))
            .unwrap_or_default(),
        said: said(m, payload.as_ref()),
        archive_id: stanza_id(m, &room),
        room,
        payload,
        recorded_sender: None,
        unix_time: None,
    }
}

fn from_message(m: Message, me: &BareJid) -> Option<Inbound> {
    let from = m.from.clone()?;
    if m.type_ != MessageType::Groupchat
        && let Some(feed) = FeedEvent::from_message(&m)
    {
        return Some(Inbound::Feed(feed));
    }
    if let Some(ring) = crate::call::Ring::from_message(&m) {
        // A proposal kept while we were away (delivered late, XEP-0203) is history, not a
        // call ringing now: the caller has long given up.
        if matches!(ring.kind, crate::call::RingKind::Propose { .. })
            && m.payloads.iter().any(|p| p.is("delay", "urn:xmpp:delay"))
        {
            return None;
        }
        // Calls ring from a device, never from a bare address.
        let from = from.try_into_full().ok()?;
        return Some(Inbound::Ring { from, ring });
    }
    if let Some(Carbon::Sent(c)) = Carbon::from_message(&m, me)
        && let Some(ring) = crate::call::Ring::from_message(&c)
    {
        return Some(Inbound::RingSent {
            to: c.to?.to_bare(),
            ring,
        });
    }
    let payload = SpherePayload::from_message(&m);
    match (&m.type_, payload) {
        (MessageType::Groupchat, _) => {
            Some(Inbound::Room(Box::new(room_message(&m, from.to_bare()))))
        }
        (_, Some(SpherePayload::Tracker(grant))) => Some(Inbound::TrackerGrant {
            room: from.to_bare(),
            nick: from.resource()?.as_str().to_owned(),
            grant,
        }),
        (_, Some(SpherePayload::Invite(invite))) => Some(Inbound::Invitation {
            from: from.to_bare(),
            encrypted: crate::protocol::says_encrypted(&m),
            seeder: crate::protocol::says_seeder(&m),
            invite,
        }),
        (MessageType::Normal | MessageType::Chat, Some(SpherePayload::Claim(claim))) => {
            Some(Inbound::Claim {
                from: from.to_bare(),
                claim,
            })
        }
        (MessageType::Chat, Some(SpherePayload::Sealed(sealed)))
            if sealed.group.is_some() && Carbon::from_message(&m, me).is_none() =>
        {
            Some(Inbound::SealedChat {
                from: from.to_bare(),
                sealed,
            })
        }
        (MessageType::Chat, Some(SpherePayload::Sealed(sealed)))
            if sealed.group.is_none() && Carbon::from_message(&m, me).is_none() =>
        {
            Some(Inbound::SealedPrivate {
                room: from.to_bare(),
                nick: from.resource()?.as_str().to_owned(),
                sealed,
            })
        }
        (MessageType::Chat, None) => {
            // A 1:1 message, or a copy of one from another device of ours (XEP-0280).
            let with = match Carbon::from_message(&m, me) {
                Some(Carbon::Received(c)) => c.from.map(|f| f.to_bare()),
                Some(Carbon::Sent(c)) => c.to.map(|t| t.to_bare()),
                None if m.bodies.is_empty() => None,
                None => Some(from.to_bare()),
            }?;
            Some(Inbound::Chat { with })
        }
        _ => None,
    }
}

fn from_presence(p: Presence, me: &BareJid) -> Option<Inbound> {
    if let Some(occ) = Occupant::from_presence(&p) {
        return Some(Inbound::Occupant(occ));
    }
    let from: Jid = p.from.clone()?;
    let who = from.to_bare();
    if who == *me {
        return None;
    }
    if let Some(SubscriptionEvent::Request(who)) = SubscriptionEvent::from_presence(&p) {
        return Some(Inbound::ContactRequest(who));
    }
    let online = match p.type_ {
        PresenceType::None => true,
        PresenceType::Unavailable => false,
        _ => return None,
    };
    Some(Inbound::ContactPresence {
        who,
        resource: from
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        online,
    })
}

impl Archived {
    /// The archived message as the node reads it, with who the room recorded as its sender.
    pub fn into_room_message(self, room: &BareJid) -> RoomMessage {
        let recorded_sender = self.sender();
        let mut m = room_message(&self.message, room.clone());
        m.archive_id = Some(self.id);
        m.recorded_sender = recorded_sender;
        m.unix_time = self.unix_time;
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::message::Lang;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn chat(from: &str, body: &str) -> Message {
        let mut m =
            Message::chat(Some(jid("alice@home.test"))).with_body(Lang::from(""), body.into());
        m.from = Some(jid(from));
        m
    }

    fn me() -> BareJid {
        BareJid::new("alice@home.test").unwrap()
    }

    #[test]
    fn a_room_message_says_who_and_what() {
        let mut m = Message::groupchat(Some(jid("family@rooms.home.test")))
            .with_body(Lang::from(""), "hello".into());
        m.from = Some(jid("family@rooms.home.test/bob"));
        let Some(Inbound::Room(r)) = Inbound::from_event(Event::Message(m), &me()) else {
            panic!("not a room message");
        };
        assert_eq!(r.room.as_str(), "family@rooms.home.test");
        assert_eq!(r.nick, "bob");
        assert_eq!(r.said.as_deref(), Some("hello"));
        assert!(r.payload.is_none() && r.recorded_sender.is_none());
    }

    #[test]
    fn one_to_one_messages_name_the_conversation() {
        let m = chat("bob@home.test/phone", "hi");
        assert!(matches!(
            Inbound::from_event(Event::Message(m), &me()),
            Some(Inbound::Chat { with }) if with.as_str() == "bob@home.test"
        ));
        // A chat state or receipt without words changes no conversation.
        let mut empty = chat("bob@home.test/phone", "");
        empty.bodies.clear();
        assert!(Inbound::from_event(Event::Message(empty), &me()).is_none());
    }

    #[test]
    fn an_mls_message_in_private_from_a_room_occupant_is_a_sealed_private() {
        let occupant = jid("family@rooms.home.test/lea");
        let mut m = crate::sealed::Sealed::new(vec![1, 2, 3]).into_private(occupant.clone());
        m.from = Some(occupant);
        let Some(Inbound::SealedPrivate { room, nick, sealed }) =
            Inbound::from_event(Event::Message(m), &me())
        else {
            panic!("not a private MLS message");
        };
        assert_eq!(
            (room.as_str(), nick.as_str(), sealed.bytes),
            ("family@rooms.home.test", "lea", vec![1, 2, 3])
        );
        // One of a conversation's groups is a conversation's.
        let mut chat = crate::sealed::Sealed::new(vec![4]);
        chat.group = Some("chat:bob@home.test/d1>alice@home.test".into());
        let mut m = chat.into_chat(&me(), "x");
        m.from = Some(jid("bob@home.test/d1"));
        assert!(matches!(
            Inbound::from_event(Event::Message(m), &me()),
            Some(Inbound::SealedChat { .. })
        ));
    }

    /// A proposal delivered late (kept offline while we were away) does not ring; one live
    /// does.
    #[test]
    fn a_proposal_delivered_late_does_not_ring() {
        let live = "<message xmlns='jabber:client' from='bob@home.test/phone' type='chat'>\
            <propose xmlns='urn:xmpp:jingle-message:0' id='s1'>\
            <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>";
        let m = Message::try_from(live.parse::<minidom::Element>().unwrap()).unwrap();
        assert!(matches!(
            Inbound::from_event(Event::Message(m), &me()),
            Some(Inbound::Ring { .. })
        ));
        let late = live.replace(
            "</propose>",
            "</propose><delay xmlns='urn:xmpp:delay' from='home.test' stamp='2026-12-01T08:00:00Z'/>",
        );
        let m = Message::try_from(late.parse::<minidom::Element>().unwrap()).unwrap();
        assert!(Inbound::from_event(Event::Message(m), &me()).is_none());
    }

    #[test]
    fn presences_are_contacts_or_requests_and_our_own_is_nothing() {
        let mut p = Presence::available();
        p.from = Some(jid("bob@home.test/laptop"));
        assert!(matches!(
            Inbound::from_event(Event::Presence(p.clone()), &me()),
            Some(Inbound::ContactPresence { who, resource, online: true })
                if who.as_str() == "bob@home.test" && resource == "laptop"
        ));
        p.type_ = PresenceType::Unavailable;
        assert!(matches!(
            Inbound::from_event(Event::Presence(p.clone()), &me()),
            Some(Inbound::ContactPresence { online: false, .. })
        ));
        p.type_ = PresenceType::Subscribe;
        assert!(matches!(
            Inbound::from_event(Event::Presence(p.clone()), &me()),
            Some(Inbound::ContactRequest(w)) if w.as_str() == "bob@home.test"
        ));
        p.type_ = PresenceType::None;
        p.from = Some(jid("alice@home.test/other-device"));
        assert!(Inbound::from_event(Event::Presence(p), &me()).is_none());
        let mut nobody = Presence::available();
        nobody.from = None;
        assert!(Inbound::from_event(Event::Presence(nobody), &me()).is_none());
    }
}
