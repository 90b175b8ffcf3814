//! Calls in a sphere (issue 17): any member starts one from the sphere's page, the others see
//! it live there and join. The sphere's own room is the conference (XEP-0272, Muji): who is
//! in the call says so in their room presence; every two participants' pages then hold one
//! ordinary Jingle session (a *leg*, a [`Call`] tagged with the room), so the media go
//! straight from browser to browser, encrypted end to end (DTLS-SRTP), in a mesh of at most
//! [`MAX_MESH`] people.
//!
//! The newcomer opens a leg with everyone already in the call, as Dino does; those already
//! in wait for it, and open it themselves if it does not come within [`WAIT_FOR_THEIRS`]
//! seconds (a leg that failed, a client that waits too). When both sides open one at once,
//! the leg of the side whose address sorts first stands (the other is replaced, or refused
//! with tie-break). A leg is taken only from a device that is in the sphere's room now and says
//! it is in the call (the room is members-only, so the server vouches for it), only while we
//! are in that room's call: a stranger, a member who is not in the call, or anyone when we are
//! not in it, learns nothing. Legs are put right every [`RECONCILE_SECS`] (see
//! [`Calls::reconcile`]).

use std::sync::Arc;

use spheres_xmpp::call::muji::Muji;
use spheres_xmpp::call::{self as signal, JingleRequest, Reason};
use spheres_xmpp::muc::Occupant;
use spheres_xmpp::{BareJid, FullJid};

use super::{CONNECT_SECS, Call, Calls, Out};
use crate::api::types::{CallEnd, CallParticipant, CallState, SphereCall};
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::{Node, lock, now_secs};

/// People in a sphere's call, at most: each page sends its media to every other one.
pub(crate) const MAX_MESH: usize = 6;
/// A page in a sphere's call says it is still there this often at least (it does every
/// 15 s, and a hidden tab's timers may run once a minute); past it, we leave the call for it
/// (a closed laptop does not stay "in the call").
pub(crate) const ALIVE_SECS: i64 = 90;
/// How often the legs are looked at again (missing ones opened, stale ones ended).
pub(crate) const RECONCILE_SECS: u64 = 15;
/// How long we wait for a newcomer to open its leg to us (or, after a leg failed, for the
/// other side to open it again) before we open it ourselves.
pub(crate) const WAIT_FOR_THEIRS: i64 = 10;

/// The devices among `occupants` that say they are in the room's call (`preparing` too:
/// joining it). Someone in the room who says nothing of the call is not in it.
pub(crate) fn in_call(occupants: Vec<Occupant>, preparing: bool) -> Vec<FullJid> {
    occupants
        .into_iter()
        .filter(|o| o.present)
        .filter(|o| {
            o.muji
                .as_ref()
                .is_some_and(|m| m.in_call() || (preparing && m.preparing))
        })
        .filter_map(|o| o.jid)
        .collect()
}

/// The sphere call we are in.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) room: BareJid,
    pub(crate) sphere: String,
    pub(crate) video: bool,
    pub(crate) tab: String,
    pub(crate) since: i64,
    /// This joining's own id (a page that leaves and joins again is another).
    pub(crate) id: String,
    alive: i64,
    /// Devices in the call with no leg with us yet, and since when: they should open it (a
    /// newcomer does); one that does not in a while gets one from us.
    waiting: std::collections::HashMap<FullJid, i64>,
}

impl Calls {
    /// The sphere call we are in, if any.
    pub(crate) fn group(&self) -> Option<&Group> {
        self.group.as_ref()
    }

    /// What our presence in `room` says of its call.
    pub(crate) fn muji_for(&self, room: &BareJid) -> Option<Muji> {
        self.group
            .as_ref()
            .filter(|g| g.room == *room)
            .map(|g| Muji::joined(g.video))
    }

    fn legs(&self) -> impl Iterator<Item = &Call> {
        self.live().filter(|c| c.room.is_some())
    }

    fn leg_with(&self, device: &FullJid) -> bool {
        self.legs().any(|c| c.peer.as_ref() == Some(device))
    }

    fn open_leg(&mut self, peer: FullJid, outgoing: bool, sid: String, now: i64) -> Option<String> {
        let g = self.group.as_ref()?;
        let mut c = Call::new(
            sid.clone(),
            peer.to_bare(),
            Some(peer),
            outgoing,
            g.video,
            CallState::Connecting,
            Some(g.tab.clone()),
            now,
            true,
        );
        c.answered = Some(now);
        c.room = Some((g.room.clone(), g.sphere.clone()));
        self.calls.insert(sid.clone(), c);
        Some(sid)
    }

    /// The page `tab` joins the call in `room` (or starts it). `others`: the devices in the
    /// call now; `me`: ours. As the newcomer, we open a leg with each (the page makes their
    /// offers). Joining again from the same page says it is still there; from
    /// another page of ours, that page takes the call over. Returns whether we joined now,
    /// and what to send.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join_group(
        &mut self,
        room: BareJid,
        sphere: &str,
        video: bool,
        tab: &str,
        me: &FullJid,
        others: &[FullJid],
        now: i64,
    ) -> Result<(bool, Vec<Out>), NodeError> {
        let tab = Self::tab(tab)?;
        if let Some(g) = &mut self.group {
            if g.room != room {
                let sphere = g.sphere.clone();
                refuse!(Conflict, "you are in a call in {sphere:?}: leave it first");
            }
            if g.tab == tab {
                g.alive = now;
                return Ok((false, Vec::new()));
            }
        }
        if self.busy_direct() {
            refuse!(Conflict, "you are already in a call: hang up first");
        }
        let others: Vec<&FullJid> = others.iter().filter(|o| *o != me).collect();
        if others.len() >= MAX_MESH {
            refuse!(
                Unavailable,
                "this call is full: {MAX_MESH} people at most can be in a call for now"
            );
        }
        // Another page of ours takes the call over: its legs start afresh.
        let out = if self.group.is_some() {
            self.leave_group(now)
        } else {
            Vec::new()
        };
        self.group = Some(Group {
            room,
            sphere: sphere.to_owned(),
            video,
            tab,
            since: now,
            id: crate::random_token(8),
            alive: now,
            waiting: Default::default(),
        });
        for o in others {
            self.open_to(o, me, now);
        }
        Ok((true, out))
    }

    /// We leave the sphere call (the page hung up, or went away): every leg ends.
    pub(crate) fn leave_group(&mut self, now: i64) -> Vec<Out> {
        let peers: Vec<FullJid> = self.legs().filter_map(|c| c.peer.clone()).collect();
        let mut out = Vec::new();
        for peer in peers {
            out.extend(self.end_legs_with(&peer, CallEnd::HungUp, now));
        }
        self.group = None;
        out
    }

    /// Ends our legs with `device` (it left the call, or they went stale), telling it.
    fn end_legs_with(&mut self, device: &FullJid, end: CallEnd, now: i64) -> Vec<Out> {
        let gone: Vec<String> = self
            .legs()
            .filter(|c| c.peer.as_ref() == Some(device))
            .map(|c| c.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in gone {
            out.push(Out::Request(
                id.clone(),
                signal::session_terminate(device, &id, Reason::Success),
            ));
            self.end(&id, end, None, now);
        }
        out
    }

    /// Opens a leg to `device` if there is none and there is room for it. Returns whether it
    /// did.
    fn open_to(&mut self, device: &FullJid, me: &FullJid, now: i64) -> bool {
        if device == me || self.leg_with(device) || self.legs().count() + 1 >= MAX_MESH {
            return false;
        }
        if let Some(g) = self.group.as_mut() {
            g.waiting.remove(device);
        }
        self.open_leg(device.clone(), true, crate::random_token(12), now)
            .is_some()
    }

    /// `device` is in `room`'s call (`in_call`) or not (any more). A newcomer opens its leg
    /// with us (we wait for it); one who left takes its leg with it. Returns what to send, and
    /// whether anything changed.
    pub(crate) fn group_member(
        &mut self,
        room: &BareJid,
        device: &FullJid,
        in_call: bool,
        me: &FullJid,
        now: i64,
    ) -> (Vec<Out>, bool) {
        if self.group.as_ref().is_none_or(|g| g.room != *room) || device == me {
            return (Vec::new(), false);
        }
        if !in_call {
            let out = self.end_legs_with(device, CallEnd::TheyHungUp, now);
            let changed = !out.is_empty();
            return (out, changed);
        }
        if !self.leg_with(device)
            && let Some(g) = self.group.as_mut()
        {
            g.waiting.entry(device.clone()).or_insert(now);
        }
        (Vec::new(), false)
    }

    /// Looks at the legs again, against `in_call` (the devices in the room that say they are
    /// in its call): a missing leg that is ours to open opens (one that failed, one the other
    /// side dropped), a leg with a device no longer in the call ends. Returns what to send and
    /// whether anything changed.
    pub(crate) fn reconcile(
        &mut self,
        in_call: &[FullJid],
        me: &FullJid,
        now: i64,
    ) -> (Vec<Out>, bool) {
        if self.group.is_none() {
            return (Vec::new(), false);
        }
        let stale: Vec<FullJid> = self
            .legs()
            .filter_map(|c| c.peer.clone())
            .filter(|p| !in_call.contains(p))
            .collect();
        let mut out = Vec::new();
        for device in &stale {
            out.extend(self.end_legs_with(device, CallEnd::TheyHungUp, now));
        }
        let mut changed = !stale.is_empty();
        // Those in the call with no leg with us: they should open it; past a while, we do.
        let late: Vec<FullJid> = {
            let legs: Vec<FullJid> = self.legs().filter_map(|c| c.peer.clone()).collect();
            let Some(g) = self.group.as_mut() else {
                return (out, changed);
            };
            g.waiting
                .retain(|d, _| in_call.contains(d) && !legs.contains(d));
            let mut late = Vec::new();
            for device in in_call {
                if device == me || legs.contains(device) {
                    continue;
                }
                let since = *g.waiting.entry(device.clone()).or_insert(now);
                if now - since >= WAIT_FOR_THEIRS {
                    late.push(device.clone());
                }
            }
            late
        };
        for device in late {
            changed |= self.open_to(&device, me, now);
        }
        (out, changed)
    }

    /// The stream to the server was lost (and not resumed): the legs went with it. We stay
    /// in the call (our page is still there); the presences build the legs again. Returns
    /// whether any ended.
    pub(crate) fn group_new_session(&mut self, now: i64) -> bool {
        let legs: Vec<String> = self.legs().map(|c| c.id.clone()).collect();
        for id in &legs {
            self.end(
                id,
                CallEnd::Failed,
                Some("the connection to the server was lost".into()),
                now,
            );
        }
        !legs.is_empty()
    }

    /// A `session-initiate` tagged with a room (a leg of that room's call). `in_call`: its
    /// sender's device is in that room now and says it is in (or joining) its call. `me`: our
    /// device.
    pub(crate) fn group_leg(
        &mut self,
        req: &JingleRequest,
        in_call: bool,
        me: &FullJid,
        now: i64,
    ) -> (Vec<Out>, bool) {
        let ours = self
            .group
            .as_ref()
            .is_some_and(|g| Some(&g.room) == req.room().as_ref());
        // Not in that call, not a member, or not in the call: the same answer as for a
        // session we do not know.
        if !ours || !in_call || self.calls.contains_key(&req.sid) {
            return (vec![Out::Answer(req.unknown_session())], false);
        }
        let mut out = Vec::new();
        let existing = self
            .legs()
            .find(|c| c.peer.as_ref() == Some(&req.from))
            .map(|c| c.state);
        if let Some(state) = existing {
            // A leg with them already. Theirs replaces ours when ours is not up yet and the
            // leg is theirs to open (ours went stale, or both sides opened one at once);
            // otherwise ours stands.
            if state == CallState::Active || me.as_str() < req.from.as_str() {
                return (vec![Out::Answer(req.tie_break())], false);
            }
            out = self.end_legs_with(&req.from, CallEnd::Failed, now);
        }
        if self.legs().count() + 1 >= MAX_MESH {
            out.push(Out::Answer(req.ack()));
            out.push(Out::Request(
                req.sid.clone(),
                signal::session_terminate(&req.from, &req.sid, Reason::Busy),
            ));
            return (out, false);
        }
        if self
            .open_leg(req.from.clone(), false, req.sid.clone(), now)
            .is_none()
        {
            out.push(Out::Answer(req.unknown_session()));
            return (out, false);
        }
        let (more, changed) = self.take_description(req, "offer", now);
        out.extend(more);
        (out, changed)
    }

    /// Leaves the sphere call when its page has not said it is there for [`ALIVE_SECS`].
    pub(crate) fn group_tick(&mut self, now: i64) -> Option<(BareJid, Vec<Out>)> {
        let g = self.group.as_ref()?;
        if now - g.alive < ALIVE_SECS {
            return None;
        }
        let room = g.room.clone();
        Some((room, self.leave_group(now)))
    }
}

impl Node {
    /// The devices in `room` that say they are in its call (`preparing` too: joining it).
    fn call_devices(&self, room: &str, preparing: bool) -> Vec<FullJid> {
        in_call(lock(&self.rooms).occupants(room), preparing)
    }

    /// Who is in `sphere`'s call now (and whether we are), for the sphere's page.
    pub async fn sphere_call(&self, sphere: &str) -> Result<SphereCall, NodeError> {
        let s = self.sphere_named(sphere).await?;
        let group = lock(&self.calls).group().cloned();
        let ours = group.filter(|g| g.room.as_str() == s.room);
        let mut people: Vec<CallParticipant> = lock(&self.rooms)
            .occupants(&s.room)
            .into_iter()
            .filter(|o| o.muji.as_ref().is_some_and(Muji::in_call))
            .filter_map(|o| {
                let jid = o.jid?.to_bare();
                (jid != self.me).then(|| CallParticipant {
                    jid: jid.to_string(),
                    video: o.muji.as_ref().is_some_and(Muji::video),
                    me: false,
                })
            })
            .collect();
        people.sort_by(|a, b| a.jid.cmp(&b.jid));
        people.dedup_by(|a, b| a.jid == b.jid);
        if let Some(g) = &ours {
            people.insert(
                0,
                CallParticipant {
                    jid: self.me.to_string(),
                    video: g.video,
                    me: true,
                },
            );
        }
        Ok(SphereCall {
            sphere: s.name,
            joined: ours.is_some(),
            tab: ours.as_ref().map(|g| g.tab.clone()),
            video: ours.as_ref().is_some_and(|g| g.video),
            since: ours.as_ref().map(|g| g.since),
            people,
            max: MAX_MESH as u32,
        })
    }

    /// How many people are in `room`'s call now, us included.
    pub(crate) fn in_sphere_call(&self, room: &str) -> usize {
        let mut others: Vec<BareJid> = self
            .call_devices(room, false)
            .into_iter()
            .map(|d| d.to_bare())
            .filter(|j| *j != self.me)
            .collect();
        others.sort();
        others.dedup();
        let us = lock(&self.calls)
            .group()
            .is_some_and(|g| g.room.as_str() == room);
        others.len() + usize::from(us)
    }

    /// Our presence in `room` as it is now: our endpoints, and the call if we are in it. Only
    /// for a sphere we still have (a presence to a room is a way into it).
    pub(crate) async fn send_room_presence(&self, room: &BareJid) {
        if !matches!(self.store.sphere_by_room(room.as_str()).await, Ok(Some(_))) {
            return;
        }
        let muji = lock(&self.calls).muji_for(room);
        if let Err(e) = self
            .xmpp
            .room_presence(room, &self.nick, Some(self.endpoints()), muji.as_ref())
            .await
        {
            tracing::warn!(room = %room, error = %e, "cannot update our presence in the room");
        }
    }

    /// The page `tab` joins `sphere`'s call, or starts it (with video or not); again every
    /// 15 s while it is in it.
    pub async fn join_sphere_call(
        self: &Arc<Self>,
        sphere: &str,
        video: bool,
        tab: &str,
    ) -> Result<SphereCall, NodeError> {
        let s = self.sphere_named(sphere).await?;
        let room = BareJid::new(&s.room)?;
        let already = lock(&self.calls)
            .group()
            .is_some_and(|g| g.room == room && g.tab == tab);
        if !already
            && !matches!(
                *lock(&self.connection),
                crate::events::Connection::Online { .. }
            )
        {
            refuse!(
                Unavailable,
                "this node is not connected to its XMPP server right now: wait until it is, then try again"
            );
        }
        let me = self.xmpp.jid();
        let joined = {
            let _order = self.calls_sending.lock().await;
            // Read under the order lock: a presence handled meanwhile is not lost between.
            let others = self.call_devices(&s.room, false);
            let (joined, out) = lock(&self.calls).join_group(
                room.clone(),
                &s.name,
                video,
                tab,
                &me,
                &others,
                now_secs(),
            )?;
            self.send_calls(out).await;
            joined
        };
        if joined {
            self.send_room_presence(&room).await;
            self.calls_tick_in(CONNECT_SECS);
            self.watch_group();
            self.emit(NodeEvent::Call { id: String::new() });
            self.emit(NodeEvent::Presence {
                sphere: s.name.clone(),
            });
        }
        self.sphere_call(&s.name).await
    }

    /// We leave `sphere`'s call (`tab`: only if that page is the one in it).
    pub async fn leave_sphere_call(
        self: &Arc<Self>,
        sphere: &str,
        tab: Option<&str>,
    ) -> Result<SphereCall, NodeError> {
        let s = self.sphere_named(sphere).await?;
        let room = BareJid::new(&s.room)?;
        let ours = lock(&self.calls)
            .group()
            .is_some_and(|g| g.room == room && tab.is_none_or(|t| t == g.tab));
        if ours {
            self.end_sphere_call(&room).await;
            self.send_room_presence(&room).await;
            self.emit(NodeEvent::Presence {
                sphere: s.name.clone(),
            });
        }
        self.sphere_call(&s.name).await
    }

    /// Leaves `room`'s call if we are in it (its legs end, each told). No presence: the
    /// caller says where we are.
    pub(crate) async fn end_sphere_call(self: &Arc<Self>, room: &BareJid) {
        let _order = self.calls_sending.lock().await;
        let in_it = lock(&self.calls).group().is_some_and(|g| g.room == *room);
        if !in_it {
            return;
        }
        let out = lock(&self.calls).leave_group(now_secs());
        self.send_calls(out).await;
        self.emit(NodeEvent::Call { id: String::new() });
    }

    /// Watches the sphere call we just joined, every [`RECONCILE_SECS`]: legs missing or
    /// stale are put right, and when its page stops saying it is there, we leave it. One
    /// task per call joined, gone when the call is.
    fn watch_group(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(id) = node
                .upgrade()
                .and_then(|n| lock(&n.calls).group().map(|g| g.id.clone()))
            else {
                return;
            };
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(RECONCILE_SECS)).await;
                let Some(node) = node.upgrade() else {
                    return;
                };
                let _order = node.calls_sending.lock().await;
                let Some(room) = lock(&node.calls)
                    .group()
                    .filter(|g| g.id == id)
                    .map(|g| g.room.clone())
                else {
                    return;
                };
                let now = now_secs();
                let left = lock(&node.calls).group_tick(now);
                if let Some((room, out)) = left {
                    tracing::info!(room = %room, "the page in the sphere's call went away: leaving the call");
                    node.send_calls(out).await;
                    node.send_room_presence(&room).await;
                    node.emit(NodeEvent::Call { id: String::new() });
                    return;
                }
                let devices = node.call_devices(room.as_str(), false);
                let me = node.xmpp.jid();
                let (out, changed) = lock(&node.calls).reconcile(&devices, &me, now);
                node.send_calls(out).await;
                if changed {
                    node.emit(NodeEvent::Call { id: String::new() });
                }
            }
        });
    }

    /// Someone's presence in a sphere's room said they are in its call, or not (any more).
    pub(crate) async fn group_presence(
        self: &Arc<Self>,
        room: &BareJid,
        device: &FullJid,
        in_call: bool,
    ) {
        let me = self.xmpp.jid();
        let _order = self.calls_sending.lock().await;
        let (out, changed) = lock(&self.calls).group_member(room, device, in_call, &me, now_secs());
        self.send_calls(out).await;
        if changed {
            if in_call {
                self.calls_tick_in(CONNECT_SECS);
            }
            self.emit(NodeEvent::Call { id: String::new() });
        }
    }

    /// A leg of a sphere's call, opened by another participant.
    pub(crate) async fn on_group_jingle(self: &Arc<Self>, req: JingleRequest) {
        let in_call = req
            .room()
            .is_some_and(|room| self.call_devices(room.as_str(), true).contains(&req.from));
        let me = self.xmpp.jid();
        let _order = self.calls_sending.lock().await;
        let (out, changed) = lock(&self.calls).group_leg(&req, in_call, &me, now_secs());
        self.send_calls(out).await;
        if changed {
            self.calls_tick_in(CONNECT_SECS);
            self.emit(NodeEvent::Call { id: req.sid });
        }
    }
}
