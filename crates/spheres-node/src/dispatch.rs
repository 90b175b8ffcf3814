//! The XMPP event loop: everything the server sends comes in here and goes to the capability
//! it belongs to (room payloads to receiving, presences to peers and contacts, chat to chat).

use std::sync::Arc;

use spheres_store::Sphere;
use spheres_xmpp::muc::Occupant;
use spheres_xmpp::protocol::{SpherePayload, TrackerGrant};
use spheres_xmpp::xmpp_parsers::iq::Iq;
use spheres_xmpp::xmpp_parsers::message::{Message, MessageType};
use spheres_xmpp::xmpp_parsers::presence::Presence;
use spheres_xmpp::xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use spheres_xmpp::{Event, Jid};
use tokio::sync::mpsc::Receiver;

use crate::events::{Connection, NodeEvent};
use crate::rooms::Sender;
use crate::rooms::{Heard, Seen};
use crate::spheres::MAX_PENDING_INVITES;
use crate::{Node, lock, now_secs};

/// The archive id the room gave a live message (XEP-0359 `<stanza-id by='room'/>`).
pub(crate) fn stanza_id(m: &Message, room: &str) -> Option<String> {
    m.payloads
        .iter()
        .filter(|p| p.is("stanza-id", "urn:xmpp:sid:0"))
        .find(|p| p.attr("by") == Some(room))
        .and_then(|p| p.attr("id").map(str::to_owned))
}

impl Node {
    pub(crate) async fn xmpp_loop(self: Arc<Self>, mut events: Receiver<Event>) {
        while let Some(event) = events.recv().await {
            match event {
                Event::Message(m) => self.on_message(m).await,
                Event::Presence(p) => self.on_presence(p).await,
                Event::Iq(iq) => self.on_iq(iq).await,
                Event::Online { resumed: false } => {
                    self.connection_is(Connection::Online { since: now_secs() });
                    lock(&self.rooms).new_session();
                    // In its own task: rejoining waits on presences this loop delivers.
                    let node = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = node.go_online().await {
                            tracing::warn!(error = %e, "cannot rejoin after reconnecting");
                        }
                    });
                }
                Event::Online { resumed: true } => {
                    self.connection_is(Connection::Online { since: now_secs() });
                }
                Event::Roster(_) => {}
                Event::Offline(e) => {
                    tracing::warn!(error = %e, "XMPP connection lost; reconnecting");
                    self.connection_is(Connection::Connecting {
                        since: now_secs(),
                        next_attempt: None,
                        error: e.to_string(),
                    });
                }
                Event::Retrying {
                    error, retry_in, ..
                } => {
                    let since = match &*lock(&self.connection) {
                        Connection::Connecting { since, .. } => *since,
                        _ => now_secs(),
                    };
                    self.connection_is(Connection::Connecting {
                        since,
                        next_attempt: Some(now_secs() + retry_in.as_secs() as i64),
                        error: error.to_string(),
                    });
                }
                Event::Disconnected(spheres_xmpp::XmppError::Closed) => return,
                Event::Disconnected(e) => {
                    tracing::error!(error = %e, "XMPP stopped for good; sharing goes on, rooms are unreachable");
                    self.connection_is(Connection::Offline {
                        since: now_secs(),
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
    }

    /// Records the link to the XMPP server as it is now, and tells the page.
    fn connection_is(&self, state: Connection) {
        *lock(&self.connection) = state.clone();
        self.emit(NodeEvent::Connection(state));
    }

    pub(crate) async fn on_iq(&self, iq: Iq) {
        // Requests we do not serve get an error, as RFC 6120 wants.
        if let Iq::Get { from, id, .. } | Iq::Set { from, id, .. } = &iq {
            let error = StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "not supported",
            );
            let answer = Iq::Error {
                from: None,
                to: from.clone(),
                id: id.clone(),
                error,
                payload: None,
            };
            let _ = self.xmpp.send(answer).await;
        }
    }

    pub(crate) async fn on_message(self: &Arc<Self>, m: Message) {
        let Some(from) = m.from.clone() else { return };
        let room = from.to_bare().to_string();
        let payload = SpherePayload::from_message(&m);
        match (m.type_.clone(), payload) {
            (MessageType::Groupchat, payload) => {
                let Ok(Some(sphere)) = self.store.sphere_by_room(&room).await else {
                    return;
                };
                let id = stanza_id(&m, &room);
                let sender = self.sender_in_room(&sphere, &from);
                self.record_said(&sphere, &m, id.as_deref(), sender.as_ref())
                    .await;
                let unknown = payload.is_some() && sender.is_none();
                if let Some(p) = payload {
                    self.on_room_payload(&sphere, p, sender, now_secs()).await;
                }
                // An announcement from someone we cannot place yet is read again from the
                // archive, which records who sent it: the catch-up position stays where it
                // is until then, and a catch-up comes soon.
                if unknown {
                    self.catch_up_soon(&sphere);
                }
                let pending = lock(&self.catching_up).contains(&sphere.room);
                if let Some(id) = id
                    && !pending
                {
                    let _ = self.store.set_archive_after(sphere.id, &id).await;
                }
            }
            (_, Some(SpherePayload::Tracker(grant))) => {
                // Only from a sphere's room (a private message from an occupant), for us,
                // from the room's owner: anyone else could point us at a tracker of theirs.
                let Ok(Some(sphere)) = self.store.sphere_by_room(&room).await else {
                    return;
                };
                if grant.member != self.me || sphere.owned {
                    return;
                }
                if !self.sender_in_room(&sphere, &from).is_some_and(|s| s.owner) {
                    tracing::warn!(sphere = %sphere.name, from = %from, "ignoring a tracker key from someone who is not the sphere's owner");
                    return;
                }
                tracing::info!(sphere = %sphere.name, "received our tracker key");
                let _ = self.store.set_announce(sphere.id, &grant.announce).await;
            }
            (_, Some(SpherePayload::Invite(inv))) => {
                let room = inv.jid.to_string();
                if let Ok(Some(_)) = self.store.sphere_by_room(&room).await {
                    return;
                }
                let from = from.to_bare().to_string();
                // Anyone may invite: the invitations waiting for a person are bounded.
                let waiting = self.store.invites().await.map(|l| l.len()).unwrap_or(0);
                if waiting >= MAX_PENDING_INVITES {
                    tracing::info!(
                        room,
                        from,
                        "too many invitations waiting; ignoring one more"
                    );
                    return;
                }
                tracing::info!(room, from, "invited to a sphere");
                let _ = self
                    .store
                    .add_invite(&room, &from, inv.reason.as_deref())
                    .await;
                self.emit(NodeEvent::Invite);
                // Accepted at once: the sphere our invitation link was for, or, on an
                // always-on node, one from someone it trusts. Others wait for a person.
                let claimed = lock(&self.claim)
                    .as_ref()
                    .is_some_and(|c| c.room == room && c.owner == from);
                let trusted = self.settings.headless && self.accepts_invites_from(&from);
                if !claimed && !trusted {
                    tracing::info!(room, from, "an invitation waits to be accepted by hand");
                }
                if claimed || trusted {
                    let node = self.clone();
                    tokio::spawn(async move {
                        match node.join(&room).await {
                            Ok(s) => {
                                tracing::info!(sphere = %s.name, "joined by invitation");
                                if claimed {
                                    node.claim_done();
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot accept an invitation"),
                        }
                    });
                }
            }
            (MessageType::Chat, None) if !m.bodies.is_empty() || self.is_carbon(&m) => {
                // A 1:1 message (or a copy of one from another device of ours): the web
                // interface reloads the conversation from the archive.
                let with = match spheres_xmpp::contacts::Carbon::from_message(&m, &self.me) {
                    Some(spheres_xmpp::contacts::Carbon::Received(c)) => {
                        c.from.map(|f| f.to_bare().to_string())
                    }
                    Some(spheres_xmpp::contacts::Carbon::Sent(c)) => {
                        c.to.map(|t| t.to_bare().to_string())
                    }
                    None => Some(from.to_bare().to_string()),
                };
                if let Some(with) = with {
                    self.emit(NodeEvent::Chat { with });
                }
            }
            (MessageType::Normal | MessageType::Chat, Some(SpherePayload::Claim(c))) => {
                let who = from.to_bare();
                let key = format!("link:{}", c.token);
                let Ok(Some(sphere)) = self.store.meta(&key).await else {
                    tracing::info!(from = %who, "ignoring a claim for an unknown invitation link");
                    return;
                };
                let _ = self.store.remove_meta(&key).await;
                tracing::info!(sphere, from = %who, "an invitation link was used");
                if let Err(e) = self.invite(&sphere, who.as_str()).await {
                    tracing::warn!(error = %e, "cannot admit the invitation link's user");
                }
            }
            _ => {}
        }
    }

    pub(crate) async fn on_presence(&self, p: Presence) {
        let Some(occ) = Occupant::from_presence(&p) else {
            self.on_contact_presence(&p);
            return;
        };
        let room = occ.room.clone();
        let nick = occ.nick.clone();
        let Ok(Some(sphere)) = self.store.sphere_by_room(room.as_str()).await else {
            return;
        };
        let seen = lock(&self.rooms).presence(occ, sphere.owned);
        let (came, grant) = match seen {
            Seen::Joined => {
                self.joined_notify.notify_waiters();
                return;
            }
            Seen::Left { removed } => {
                if removed {
                    tracing::warn!(sphere = %sphere.name, "we were removed from the sphere");
                }
                return;
            }
            Seen::Went => (false, None),
            Seen::Came { grant } => (true, grant),
        };
        self.emit(NodeEvent::Presence {
            sphere: sphere.name.clone(),
        });
        if !came || !sphere.owned {
            return;
        }
        self.feed_endpoints(&sphere).await;
        // A member of a sphere we own: their tracker key, once per visit.
        let Some(real) = grant else {
            return;
        };
        let Ok(members) = self.store.members(sphere.id).await else {
            return;
        };
        let Some(member) = members.into_iter().find(|m| m.jid == real.as_str()) else {
            return;
        };
        let Some(announce) = self.tracker.http_announce_url(Some(&member.tracker_key)) else {
            return;
        };
        let Ok(to) = room.with_resource_str(&nick) else {
            return;
        };
        let grant = TrackerGrant {
            member: real,
            announce,
        };
        if self
            .xmpp
            .send(grant.into_message(Jid::from(to)))
            .await
            .is_ok()
        {
            lock(&self.rooms).granted(room.as_str(), &nick);
        }
    }

    /// Keeps what was said in a room (the chat beside the gallery), once.
    pub(crate) async fn record_said(
        &self,
        sphere: &Sphere,
        m: &Message,
        archive_id: Option<&str>,
        sender: Option<&Sender>,
    ) {
        let Some(body) = m.bodies.values().next() else {
            return;
        };
        // An announcement's body ends with its magnet link, for plain clients; the gallery
        // shows the share, the chat only the sentence.
        let body = match SpherePayload::from_message(m) {
            Some(_) => body.lines().next().unwrap_or_default(),
            None => body.as_str(),
        };
        let nick = m
            .from
            .as_ref()
            .and_then(|f| f.resource().map(|r| r.as_str().to_owned()))
            .unwrap_or_default();
        let jid = sender.map(|s| s.jid.to_string());
        if let Ok(true) = self
            .store
            .add_message(sphere.id, archive_id, &nick, jid.as_deref(), body, None)
            .await
        {
            self.emit(NodeEvent::Message {
                sphere: sphere.name.clone(),
            });
        }
    }

    /// An announcement in a sphere's room, from `sender` (as the room knows them; `None`
    /// when it cannot tell) at `when` (seconds since 1970).
    pub(crate) async fn on_room_payload(
        self: &Arc<Self>,
        sphere: &Sphere,
        p: SpherePayload,
        sender: Option<Sender>,
        when: i64,
    ) {
        if !matches!(p, SpherePayload::Share(_) | SpherePayload::Withdraw(_)) {
            return;
        }
        let Some(sender) = sender else {
            tracing::warn!(sphere = %sphere.name, "ignoring an announcement whose sender the room does not name");
            return;
        };
        let (size, hash) = match &p {
            SpherePayload::Share(s) => (s.size, Some(s.id.as_str())),
            _ => (0, None),
        };
        let heard =
            lock(&self.rooms).announcement(&sphere.room, (&sender.jid, &self.me), hash, when, size);
        match heard {
            Heard::OverBudget => {
                tracing::warn!(sphere = %sphere.name, from = %sender.jid, "too many announcements from one member this hour; dropped");
                return;
            }
            // Our own announcement, back from the room: it has it.
            Heard::Confirmed => {
                if let Some(hash) = hash {
                    let _ = self.store.remove_outbox(sphere.id, hash).await;
                }
            }
            Heard::Accept => {}
        }
        let result = match p {
            SpherePayload::Share(s) => self.on_share(sphere, s, &sender).await,
            SpherePayload::Withdraw(w) => self.on_withdraw(sphere, w, &sender).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot process an announcement");
        }
    }

    pub(crate) fn is_carbon(&self, m: &Message) -> bool {
        m.payloads.iter().any(|p| p.ns() == "urn:xmpp:carbons:2")
    }
}
