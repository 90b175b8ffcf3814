//! The XMPP event loop: everything the server sends comes in here and goes to the capability
//! it belongs to (room payloads to receiving, presences to peers and contacts, chat to chat).

use std::sync::Arc;

use spheres_store::Sphere;
use spheres_xmpp::muc::Occupant;
use spheres_xmpp::protocol::{Claim, DirectInvite, SpherePayload, TrackerGrant};
use spheres_xmpp::sealed::Sealed;
use spheres_xmpp::{BareJid, Event, Inbound, Jid, RoomMessage};
use tokio::sync::mpsc::Receiver;

use crate::events::{Connection, NodeEvent};
use crate::rooms::Sender;
use crate::rooms::{Heard, Seen};
use crate::spheres::MAX_PENDING_INVITES;
use crate::{Node, lock, now_secs};

impl Node {
    pub(crate) async fn xmpp_loop(self: Arc<Self>, mut events: Receiver<Event>) {
        while let Some(event) = events.recv().await {
            let Some(inbound) = Inbound::from_event(event, &self.me) else {
                continue;
            };
            match inbound {
                Inbound::Room(m) => self.on_room_message(*m).await,
                Inbound::TrackerGrant { room, nick, grant } => {
                    self.on_tracker_grant(room, &nick, grant).await
                }
                Inbound::Invitation {
                    from,
                    invite,
                    encrypted,
                    seeder,
                } => self.on_invitation(from, invite, encrypted, seeder).await,
                Inbound::Claim { from, claim } => self.on_claim(from, claim).await,
                // The web interface reloads the conversation from the archive.
                Inbound::Chat { with } => self.emit(NodeEvent::Chat {
                    with: with.to_string(),
                }),
                Inbound::SealedChat { from, sealed } => self.on_sealed_chat(from, sealed).await,
                Inbound::SealedPrivate { room, nick, sealed } => {
                    self.on_sealed_private(room, nick, sealed).await
                }
                Inbound::Occupant(occ) => self.on_occupant(occ).await,
                Inbound::ContactRequest(who) => self.on_contact_request(who),
                Inbound::Feed(ev) => self.on_feed(ev).await,
                Inbound::ContactPresence {
                    who,
                    resource,
                    online,
                } => self.on_contact_presence(who, resource, online),
                Inbound::Online { resumed: false } => {
                    self.connection_is(Connection::Online { since: now_secs() });
                    lock(&self.rooms).new_session();
                    // The sphere call's connections went with the old session; the rooms'
                    // presences (ours, still in the call, and theirs) build them again.
                    if lock(&self.calls).group_new_session(now_secs()) {
                        self.emit(NodeEvent::Call { id: String::new() });
                    }
                    // In its own task: rejoining waits on presences this loop delivers.
                    let node = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = node.go_online().await {
                            tracing::warn!(error = %e, "cannot rejoin after reconnecting");
                        }
                    });
                }
                Inbound::Online { resumed: true } => {
                    self.connection_is(Connection::Online { since: now_secs() });
                }
                Inbound::RosterChanged => {}
                Inbound::Ring { from, ring } => self.on_ring(from, ring).await,
                Inbound::RingSent { to, ring } => self.on_ring_sent(to, ring),
                Inbound::Jingle(req) => self.on_jingle(*req).await,
                Inbound::Offline(e) => {
                    tracing::warn!(error = %e, "XMPP connection lost; reconnecting");
                    self.connection_is(Connection::Connecting {
                        since: now_secs(),
                        next_attempt: None,
                        error: e.to_string(),
                    });
                }
                Inbound::Retrying { error, retry_in } => {
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
                Inbound::Stopped(spheres_xmpp::XmppError::Closed) => return,
                Inbound::Stopped(e) => {
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

    /// Said or sent in a sphere's room, live.
    pub(crate) async fn on_room_message(self: &Arc<Self>, m: RoomMessage) {
        let Ok(Some(sphere)) = self.store.sphere_by_room(m.room.as_str()).await else {
            return;
        };
        let sender = self.sender_in_room(&sphere, &m.nick);
        let unknown = m.payload.is_some() && sender.is_none();
        let archive_id = m.archive_id.clone();
        let ahead = self.take_room_message(&sphere, m, sender, now_secs()).await;
        // An announcement from someone we cannot place yet is read again from the
        // archive, which records who sent it: the catch-up position stays where it
        // is until then, and a catch-up comes soon.
        if unknown || ahead {
            self.catch_up_soon(&sphere);
        }
        let pending = lock(&self.catching_up).contains(&sphere.room);
        if let Some(id) = archive_id
            && !pending
        {
            let _ = self.store.set_archive_after(sphere.id, &id).await;
        }
    }

    /// A room message, live or from the archive, from `sender` (as the room names them) at
    /// `when`: an encrypted one opened, what it says recorded and acted on, the MLS state
    /// saved after. Returns whether it belongs to an epoch ahead of ours (the archive is to
    /// bring the change before it).
    pub(crate) async fn take_room_message(
        self: &Arc<Self>,
        sphere: &Sphere,
        m: RoomMessage,
        sender: Option<Sender>,
        when: i64,
    ) -> bool {
        let mut ahead = false;
        let sealed = matches!(m.payload, Some(SpherePayload::Sealed(_)));
        if let Some(m) = self.unseal(sphere, m, sender.as_ref(), &mut ahead).await {
            self.record_said(sphere, &m, sender.as_ref()).await;
            if let Some(p) = m.payload {
                self.on_room_payload(sphere, p, sender, when).await;
            }
        }
        // Saved once what it carried is acted on (a crash before then reads it again).
        if sealed {
            self.save_mls().await;
        }
        ahead
    }

    /// Our tracker key for a sphere, in clear: only from a sphere's room (a private message
    /// from an occupant), from the room's owner (anyone else could point us at a tracker of
    /// theirs), and only for an open sphere or one we hold without its keys: an encrypted
    /// sphere's comes sealed for its group (`on_sealed_private`).
    async fn on_tracker_grant(&self, room: BareJid, nick: &str, grant: TrackerGrant) {
        let Ok(Some(sphere)) = self.store.sphere_by_room(room.as_str()).await else {
            return;
        };
        if !self.sender_in_room(&sphere, nick).is_some_and(|s| s.owner) {
            tracing::warn!(sphere = %sphere.name, from = %nick, "ignoring a tracker key from someone who is not the sphere's owner");
            return;
        }
        if sphere.encrypted && !sphere.holding {
            tracing::warn!(sphere = %sphere.name, "ignoring a tracker key in clear for an encrypted sphere");
            return;
        }
        self.take_grant(&sphere, grant).await;
    }

    /// Our tracker key and the sphere's swarm secret, from its owner.
    pub(crate) async fn take_grant(&self, sphere: &Sphere, grant: TrackerGrant) {
        if grant.member != self.me || sphere.owned {
            return;
        }
        tracing::info!(sphere = %sphere.name, "received our tracker key");
        // The secret first: a grant whose key shows has its secret kept too.
        match grant.swarm_secret() {
            Some(secret) => self.set_swarm_secret(sphere, secret).await,
            None if grant.secret.is_some() => {
                tracing::warn!(sphere = %sphere.name, "the owner's swarm secret is malformed; ignored")
            }
            None => {}
        }
        let _ = self.store.set_announce(sphere.id, &grant.announce).await;
    }

    /// An invitation to a room, from anyone: kept for a person to answer (bounded), or
    /// accepted at once when it is the sphere our invitation link was for, or comes to an
    /// always-on node from someone it trusts.
    async fn on_invitation(
        self: &Arc<Self>,
        from: BareJid,
        inv: DirectInvite,
        encrypted: bool,
        seeder: bool,
    ) {
        let room = inv.jid.to_string();
        if let Ok(Some(_)) = self.store.sphere_by_room(&room).await {
            return;
        }
        let from = from.to_string();
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
            .add_invite(&room, &from, inv.reason.as_deref(), encrypted, seeder)
            .await;
        self.emit(NodeEvent::Invite);
        let claimed = lock(&self.claim)
            .as_ref()
            .is_some_and(|c| c.room == room && c.owner == from);
        let trusted = self.settings.headless && self.accepts_invites_from(&from);
        if !claimed && !trusted {
            tracing::info!(room, from, "an invitation waits to be accepted by hand");
            return;
        }
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

    /// Someone used one of our invitation links: they become a member of its sphere.
    async fn on_claim(&self, who: BareJid, c: Claim) {
        let key = format!("link:{}", c.token);
        let Ok(Some(sphere)) = self.store.meta(&key).await else {
            tracing::info!(from = %who, "ignoring a claim for an unknown invitation link");
            return;
        };
        let _ = self.store.remove_meta(&key).await;
        tracing::info!(sphere, from = %who, "an invitation link was used");
        if let Err(e) = self.invite(&sphere, who.as_str(), false).await {
            tracing::warn!(error = %e, "cannot admit the invitation link's user");
        }
    }

    /// Someone in a sphere's room came, changed or went (or we did).
    pub(crate) async fn on_occupant(self: &Arc<Self>, occ: Occupant) {
        let room = occ.room.clone();
        let nick = occ.nick.clone();
        let Ok(Some(sphere)) = self.store.sphere_by_room(room.as_str()).await else {
            return;
        };
        let real = occ.jid.as_ref().map(|j| j.to_bare());
        // Their part in the room's call (XEP-0272), for the call we may be in; who left, from
        // what we knew of them when their last presence names nobody.
        let device = occ
            .jid
            .clone()
            .or_else(|| lock(&self.rooms).device(room.as_str(), &nick));
        let in_call = (
            occ.present && occ.muji.as_ref().is_some_and(|m| m.in_call()),
            device,
        );
        if occ.affiliation == spheres_xmpp::muc::Affiliation::Owner
            && let Some(owner) = &real
        {
            self.owner_seen(&sphere, owner).await;
        }
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
                // Out of the room, out of its call.
                self.end_sphere_call(&room).await;
                return;
            }
            Seen::Went => (false, None),
            Seen::Came { grant } => (true, grant),
        };
        if let (in_call, Some(device)) = in_call {
            self.group_presence(&room, &device, in_call).await;
        }
        self.emit(NodeEvent::Presence {
            sphere: sphere.name.clone(),
        });
        if !came || !sphere.owned {
            return;
        }
        self.feed_endpoints(&sphere).await;
        // Their node into the sphere's encryption group, if it is not in yet (first: their
        // tracker key is sealed for the group).
        if let Some(real) = real
            && real != self.me
        {
            self.add_to_group(&sphere, &real).await;
        }
        // A member of a sphere we own: their tracker key, once per visit.
        if let Some(real) = grant {
            self.send_grant(&sphere, &room, &nick, real).await;
        }
    }

    /// Gives a member of a sphere we own (in the room as `nick`) their tracker key and the
    /// sphere's swarm secret, in a private message inside the room: sealed for the group in
    /// an encrypted sphere (the server sees neither), in clear in an open one and to a
    /// keyless seeder (who has no keys).
    pub(crate) async fn send_grant(
        &self,
        sphere: &Sphere,
        room: &BareJid,
        nick: &str,
        real: BareJid,
    ) {
        let Ok(members) = self.store.members(sphere.id).await else {
            return;
        };
        let Some(member) = members.into_iter().find(|m| m.jid == real.as_str()) else {
            return;
        };
        let Some(announce) = self.tracker.http_announce_url(Some(&member.tracker_key)) else {
            return;
        };
        let Ok(to) = room.with_resource_str(nick) else {
            return;
        };
        let grant = TrackerGrant {
            member: real,
            announce,
            secret: self.swarm(sphere).await.members.secret().map(hex::encode),
        };
        let to = Jid::from(to);
        let msg = if sphere.encrypted && !member.seeder {
            if !self.may_seal_grant(sphere, &member.jid) {
                return;
            }
            match self.seal_for(sphere, grant.into_message(to.clone()), false) {
                Ok(bytes) => {
                    self.save_mls().await;
                    Sealed::new(bytes).into_private(to)
                }
                Err(e) => {
                    tracing::warn!(sphere = %sphere.name, error = %e, "cannot seal a member's tracker key");
                    return;
                }
            }
        } else {
            grant.into_message(to)
        };
        if self.xmpp.send(msg).await.is_ok() {
            lock(&self.rooms).granted(room.as_str(), nick);
        }
    }

    /// Keeps what was said in a room (the chat beside the gallery), once.
    pub(crate) async fn record_said(
        &self,
        sphere: &Sphere,
        m: &RoomMessage,
        sender: Option<&Sender>,
    ) {
        let Some(said) = &m.said else {
            return;
        };
        let jid = sender.map(|s| s.jid.to_string());
        if let Ok(true) = self
            .store
            .add_message(
                sphere.id,
                m.archive_id.as_deref(),
                &m.nick,
                jid.as_deref(),
                said,
                None,
            )
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
        if !matches!(
            p,
            SpherePayload::Share(_)
                | SpherePayload::Withdraw(_)
                | SpherePayload::Post(_)
                | SpherePayload::Retract(_)
                | SpherePayload::Library(_)
                | SpherePayload::Holds(_)
        ) {
            return;
        }
        let Some(sender) = sender else {
            tracing::warn!(sphere = %sphere.name, "ignoring an announcement whose sender the room does not name");
            return;
        };
        // The owner's, for keyless seeders: out of the members' budget.
        if let SpherePayload::Holds(h) = p {
            if let Err(e) = self.on_holds(sphere, h, &sender).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot process sealed torrents");
            }
            return;
        }
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
            SpherePayload::Post(post) => {
                self.on_sphere_feed(sphere, &sender.jid, Ok(*post), when)
                    .await;
                Ok(())
            }
            SpherePayload::Retract(r) => {
                self.on_sphere_feed(sphere, &sender.jid, Err(r), when).await;
                Ok(())
            }
            SpherePayload::Library(l) => self.on_library(sphere, l, &sender).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot process an announcement");
        }
    }
}
