//! Calls (issue 17): the browser does the media (WebRTC); the node carries the signalling
//! over XMPP, as any Jingle client would (XEP-0353 to ring every device of the callee,
//! XEP-0166/0167/0176/0320 for the session), and turns the browser's SDP into Jingle and
//! back (`spheres_xmpp::jingle`).
//!
//! [`Calls`] is sans-IO: what the page asks and what the network says go in, with the time;
//! stanzas to send come out ([`Out`]). The `Node` methods at the bottom run it.
//!
//! Who may do what (docs/security.md, "Calls"): only a contact rings us (a stranger's call is
//! dropped without an answer, so it learns nothing, not even that we are online); only the
//! device that rang, or the one that answered, acts on a call; our ICE candidates (our
//! addresses) go to the other device only once the call is answered; everything kept is
//! bounded (calls, candidates, descriptions).

use std::collections::{HashMap, VecDeque};

use spheres_xmpp::call::{self as signal, Action, JingleRequest, Reason, Ring, RingKind};
use spheres_xmpp::jingle::{Candidate, MAX_ITEMS, Session};
use spheres_xmpp::{BareJid, FullJid, Iq, Jid, Message};

use std::sync::Arc;

use spheres_xmpp::contacts::Subscription;

use crate::api::types::{CallEnd, CallInfo, CallState, RemoteCandidate, RemoteDescription};
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::{Node, lock, now_secs};

/// How long a call rings before it is a missed one, in seconds.
pub(crate) const RING_SECS: i64 = 60;
/// How long an answered call may take to exchange its descriptions, in seconds.
pub(crate) const CONNECT_SECS: i64 = 60;
/// Calls at once (live), and ended ones kept for the page. Calls that ring here take one
/// less, so that ringing calls never keep us from placing one.
const MAX_LIVE: usize = 8;
const MAX_RINGING: usize = MAX_LIVE - 1;
const MAX_ENDED: usize = 20;
/// Candidates kept per call, each side.
const MAX_CANDIDATES: usize = 2 * MAX_ITEMS;
/// The longest tab id a page may give.
const MAX_TAB: usize = 64;

/// What the node is to send.
#[derive(Debug)]
pub(crate) enum Out {
    /// A message (ringing, XEP-0353).
    Message(Message),
    /// An answer to a request of theirs.
    Answer(Iq),
    /// A request of ours about call `sid`: when it fails, the call fails.
    Request(String, Iq),
}

#[derive(Debug, Clone)]
struct Call {
    id: String,
    with: BareJid,
    /// The other side's device in the call: the one that proposed (incoming), or the one
    /// that answered (outgoing).
    peer: Option<FullJid>,
    outgoing: bool,
    video: bool,
    state: CallState,
    end: Option<CallEnd>,
    why: Option<String>,
    tab: Option<String>,
    started: i64,
    answered: Option<i64>,
    ended: Option<i64>,
    /// Rang with a session-initiate alone (no XEP-0353 proposal before it).
    direct: bool,
    remote: Option<RemoteDescription>,
    candidates: Vec<RemoteCandidate>,
    /// Our description as sent (its ICE credentials go with our candidates).
    local: Option<Session>,
    /// Our candidates given before our description went out.
    queued: Vec<(String, Candidate)>,
    sent: usize,
    /// A leg of a call in a sphere's room (XEP-0272): the room, and the sphere's name.
    room: Option<(BareJid, String)>,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: String,
        with: BareJid,
        peer: Option<FullJid>,
        outgoing: bool,
        video: bool,
        state: CallState,
        tab: Option<String>,
        now: i64,
        direct: bool,
    ) -> Call {
        Call {
            id,
            with,
            peer,
            outgoing,
            video,
            state,
            end: None,
            why: None,
            tab,
            started: now,
            answered: None,
            ended: None,
            direct,
            remote: None,
            candidates: Vec::new(),
            local: None,
            queued: Vec::new(),
            sent: 0,
            room: None,
        }
    }

    fn info(&self) -> CallInfo {
        CallInfo {
            id: self.id.clone(),
            with: self.with.to_string(),
            outgoing: self.outgoing,
            video: self.video,
            state: self.state,
            end: self.end,
            why: self.why.clone(),
            tab: self.tab.clone(),
            started: self.started,
            answered: self.answered,
            ended: self.ended,
            remote: self.remote.clone(),
            candidates: self.candidates.clone(),
            sphere: self.room.as_ref().map(|(_, s)| s.clone()),
        }
    }

    fn live(&self) -> bool {
        self.state != CallState::Ended
    }
}

fn not_found() -> NodeError {
    NodeError::NotFound("no such call: it may have ended already".into())
}

fn message_id() -> String {
    crate::random_token(8)
}

/// Every call, live and recently ended.
#[derive(Default)]
pub(crate) struct Calls {
    calls: HashMap<String, Call>,
    ended: VecDeque<String>,
    /// The sphere call we are in, if any.
    group: Option<group::Group>,
}

impl Calls {
    pub(crate) fn list(&self) -> Vec<CallInfo> {
        let mut v: Vec<CallInfo> = self.calls.values().map(Call::info).collect();
        v.sort_by(|a, b| b.started.cmp(&a.started).then(a.id.cmp(&b.id)));
        v
    }

    pub(crate) fn get(&self, id: &str) -> Option<CallInfo> {
        self.calls.get(id).map(Call::info)
    }

    fn live(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().filter(|c| c.live())
    }

    /// In a call: a one-to-one call placed or answered, or a sphere's call.
    fn busy(&self) -> bool {
        self.group.is_some() || self.busy_direct()
    }

    /// In a one-to-one call (placed or answered).
    fn busy_direct(&self) -> bool {
        self.live().any(|c| {
            c.room.is_none()
                && matches!(
                    c.state,
                    CallState::Calling | CallState::Connecting | CallState::Active
                )
        })
    }

    fn end(&mut self, id: &str, end: CallEnd, why: Option<String>, now: i64) {
        let Some(c) = self.calls.get_mut(id) else {
            return;
        };
        if !c.live() {
            return;
        }
        c.state = CallState::Ended;
        c.end = Some(end);
        c.why = why;
        c.ended = Some(now);
        c.queued.clear();
        c.local = None;
        self.ended.push_back(id.to_owned());
        while self.ended.len() > MAX_ENDED {
            if let Some(old) = self.ended.pop_front() {
                self.calls.remove(&old);
            }
        }
    }

    fn tab(tab: &str) -> Result<String, NodeError> {
        let tab = tab.trim();
        if tab.is_empty()
            || tab.len() > MAX_TAB
            || !tab.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(NodeError::BadInput(
                "a call needs the page's tab id (letters, digits and dashes)".into(),
            ));
        }
        Ok(tab.to_owned())
    }

    /// The page calls `with` (a contact, online): every device of theirs rings.
    pub(crate) fn start(
        &mut self,
        id: String,
        with: BareJid,
        video: bool,
        tab: &str,
        now: i64,
    ) -> Result<Vec<Out>, NodeError> {
        let tab = Self::tab(tab)?;
        if self.busy() {
            return Err(NodeError::Conflict(
                "you are already in a call: hang up first".into(),
            ));
        }
        if self.live().count() >= MAX_LIVE {
            return Err(NodeError::Unavailable(
                "too many calls ringing: answer or decline one first".into(),
            ));
        }
        let ring = Ring::new(id.clone(), RingKind::Propose { video });
        let out = vec![Out::Message(
            ring.to_message(Jid::from(with.clone()), &message_id()),
        )];
        self.calls.insert(
            id.clone(),
            Call::new(
                id,
                with,
                None,
                true,
                video,
                CallState::Calling,
                Some(tab),
                now,
                false,
            ),
        );
        Ok(out)
    }

    /// The page answers a ringing call; `me`: our account (our other devices stop ringing).
    pub(crate) fn answer(
        &mut self,
        id: &str,
        tab: &str,
        me: &BareJid,
        now: i64,
    ) -> Result<Vec<Out>, NodeError> {
        let tab = Self::tab(tab)?;
        if self.group.is_some()
            || self
                .live()
                .any(|c| c.id != id && matches!(c.state, CallState::Connecting | CallState::Active))
        {
            return Err(NodeError::Conflict(
                "you are already in a call: hang up first".into(),
            ));
        }
        let c = self.calls.get_mut(id).ok_or_else(not_found)?;
        if c.state != CallState::Ringing {
            return Err(NodeError::Conflict(match c.state {
                CallState::Ended => "this call has ended".into(),
                _ => "this call is already answered".into(),
            }));
        }
        let peer = c.peer.clone().ok_or_else(not_found)?;
        c.state = CallState::Connecting;
        c.tab = Some(tab);
        c.answered = Some(now);
        let mut out = Vec::new();
        if !c.direct {
            let proceed = Ring::new(id.to_owned(), RingKind::Proceed);
            let accept = Ring::new(id.to_owned(), RingKind::Accept);
            out.push(Out::Message(
                accept.to_message(Jid::from(me.clone()), &message_id()),
            ));
            out.push(Out::Message(
                proceed.to_message(Jid::from(peer), &message_id()),
            ));
        }
        Ok(out)
    }

    /// The page declines a ringing call, or hangs up any call.
    pub(crate) fn hang_up(
        &mut self,
        id: &str,
        me: &BareJid,
        now: i64,
    ) -> Result<Vec<Out>, NodeError> {
        let c = self.calls.get(id).ok_or_else(not_found)?;
        let mut out = Vec::new();
        let end = match (c.state, &c.peer) {
            (CallState::Ended, _) => return Ok(out),
            (CallState::Calling, _) => {
                let retract = Ring::new(id.to_owned(), RingKind::Retract);
                out.push(Out::Message(
                    retract.to_message(Jid::from(c.with.clone()), &message_id()),
                ));
                CallEnd::Cancelled
            }
            (CallState::Ringing, Some(peer)) => {
                if c.direct {
                    out.push(Out::Request(
                        id.to_owned(),
                        signal::session_terminate(peer, id, Reason::Decline),
                    ));
                } else {
                    let reject = Ring::new(id.to_owned(), RingKind::Reject);
                    out.push(Out::Message(
                        reject.to_message(Jid::from(me.clone()), &message_id()),
                    ));
                    out.push(Out::Message(
                        reject.to_message(Jid::from(peer.clone()), &message_id()),
                    ));
                }
                CallEnd::DeclinedHere
            }
            (_, Some(peer)) => {
                // Answered: the session may not be up yet (a proposal answered, no
                // session-initiate yet): terminate covers both.
                out.push(Out::Request(
                    id.to_owned(),
                    signal::session_terminate(peer, id, Reason::Success),
                ));
                if !c.direct {
                    let finish = Ring::new(id.to_owned(), RingKind::Finish);
                    out.push(Out::Message(
                        finish.to_message(Jid::from(peer.clone()), &message_id()),
                    ));
                }
                CallEnd::HungUp
            }
            (_, None) => CallEnd::Cancelled,
        };
        self.end(id, end, None, now);
        Ok(out)
    }

    /// Call `id`, when the page `tab` handles it.
    fn handled_by(&mut self, id: &str, tab: &str) -> Result<&mut Call, NodeError> {
        let c = self.calls.get_mut(id).ok_or_else(not_found)?;
        if c.tab.as_deref() != Some(tab) {
            return Err(NodeError::Forbidden(
                "another page handles this call".into(),
            ));
        }
        Ok(c)
    }

    /// The page's description (its offer when we called, its answer when we were called).
    pub(crate) fn describe(
        &mut self,
        id: &str,
        tab: &str,
        kind: &str,
        sdp: &str,
        me: &FullJid,
    ) -> Result<Vec<Out>, NodeError> {
        let c = self.handled_by(id, tab)?;
        if c.state != CallState::Connecting || c.local.is_some() {
            return Err(NodeError::Conflict(
                "this call is not waiting for a description".into(),
            ));
        }
        let peer = c.peer.clone().ok_or_else(not_found)?;
        let session = Session::parse_sdp(sdp)
            .map_err(|e| NodeError::BadInput(format!("the browser's description: {e}")))?;
        let iq = match (c.outgoing, kind) {
            (true, "offer") => match &c.room {
                Some((room, _)) => signal::session_initiate_in(&peer, id, me, &session, room),
                None => signal::session_initiate(&peer, id, me, &session),
            },
            (false, "answer") if c.remote.is_some() => {
                c.state = CallState::Active;
                signal::session_accept(&peer, id, me, &session)
            }
            _ => {
                return Err(NodeError::Conflict(format!(
                    "this call does not take an {kind} now"
                )));
            }
        };
        let mut out = vec![Out::Request(id.to_owned(), iq)];
        c.local = Some(session);
        for (mid, cand) in std::mem::take(&mut c.queued) {
            out.extend(Self::trickle(c, &peer, &mid, &cand));
        }
        Ok(out)
    }

    fn trickle(c: &mut Call, peer: &FullJid, mid: &str, cand: &Candidate) -> Option<Out> {
        let local = c.local.as_ref()?;
        let media = local.media.iter().find(|m| m.mid == mid)?;
        c.sent += 1;
        Some(Out::Request(
            c.id.clone(),
            signal::transport_info(
                peer,
                &c.id,
                mid,
                (media.ufrag.as_deref(), media.pwd.as_deref()),
                cand,
                c.sent,
            ),
        ))
    }

    /// One of the page's ICE candidates (`candidate:…` and the media section it is for).
    pub(crate) fn candidate(
        &mut self,
        id: &str,
        tab: &str,
        mid: &str,
        line: &str,
    ) -> Result<Vec<Out>, NodeError> {
        let c = self.handled_by(id, tab)?;
        if !matches!(c.state, CallState::Connecting | CallState::Active) {
            return Ok(Vec::new());
        }
        let cand = Candidate::parse_sdp(line, 0)
            .map_err(|e| NodeError::BadInput(format!("the browser's candidate: {e}")))?;
        if c.sent + c.queued.len() >= MAX_CANDIDATES {
            return Err(NodeError::BadInput(
                "too many candidates for one call".into(),
            ));
        }
        let Some(peer) = c.peer.clone() else {
            return Ok(Vec::new());
        };
        if c.local.is_none() {
            c.queued.push((mid.to_owned(), cand));
            return Ok(Vec::new());
        }
        Ok(Self::trickle(c, &peer, mid, &cand).into_iter().collect())
    }

    /// A ringing message from `from` (`contact`: they are one of ours). `me`: this device.
    /// Returns what to send, and whether anything changed.
    pub(crate) fn on_ring(
        &mut self,
        from: FullJid,
        ring: Ring,
        me: &FullJid,
        contact: bool,
        now: i64,
    ) -> (Vec<Out>, bool) {
        let mut out = Vec::new();
        if from == *me {
            return (out, false);
        }
        let ours = from.to_bare() == me.to_bare();
        let id = ring.id.clone();
        let existing = self.calls.get(&id).cloned();
        match (ring.kind, existing) {
            (RingKind::Propose { video }, None) if !ours => {
                // A stranger learns nothing: not even that we are here.
                if !contact {
                    tracing::info!(from = %from, "ignoring a call from someone who is not a contact");
                    return (out, false);
                }
                if self.busy() || self.live().count() >= MAX_RINGING {
                    let mut reject = Ring::new(id, RingKind::Reject);
                    reject.reason = Some(Reason::Busy);
                    out.push(Out::Message(
                        reject.to_message(Jid::from(from), &message_id()),
                    ));
                    return (out, false);
                }
                // One call at a time rings from one person (a second proposal is noise).
                if self
                    .live()
                    .any(|c| c.with == from.to_bare() && c.state == CallState::Ringing)
                {
                    return (out, false);
                }
                let ringing = Ring::new(id.clone(), RingKind::Ringing);
                out.push(Out::Message(
                    ringing.to_message(Jid::from(from.clone()), &message_id()),
                ));
                self.calls.insert(
                    id.clone(),
                    Call::new(
                        id,
                        from.to_bare(),
                        Some(from),
                        false,
                        video,
                        CallState::Ringing,
                        None,
                        now,
                        false,
                    ),
                );
                (out, true)
            }
            (RingKind::Retract, Some(c))
                if !c.outgoing
                    && c.state == CallState::Ringing
                    && c.peer.as_ref() == Some(&from) =>
            {
                self.end(&id, CallEnd::Missed, None, now);
                (out, true)
            }
            // Another device of ours answered or declined.
            (RingKind::Accept | RingKind::Proceed | RingKind::Reject, Some(c))
                if ours && !c.outgoing && c.state == CallState::Ringing =>
            {
                self.end(&id, CallEnd::Elsewhere, None, now);
                (out, true)
            }
            (RingKind::Proceed, Some(c))
                if c.outgoing && c.state == CallState::Calling && from.to_bare() == c.with =>
            {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.peer = Some(from);
                    c.state = CallState::Connecting;
                    c.answered = Some(now);
                }
                (out, true)
            }
            (RingKind::Reject, Some(c))
                if c.outgoing && c.state == CallState::Calling && from.to_bare() == c.with =>
            {
                let reason = ring.reason.unwrap_or(Reason::Decline);
                let end = if reason == Reason::Busy {
                    CallEnd::Busy
                } else {
                    CallEnd::Declined
                };
                self.end(&id, end, None, now);
                (out, true)
            }
            (RingKind::Retract | RingKind::Finish, Some(c))
                if c.peer.as_ref() == Some(&from) && c.live() =>
            {
                let end = if c.answered.is_some() {
                    CallEnd::TheyHungUp
                } else {
                    CallEnd::Missed
                };
                self.end(&id, end, None, now);
                (out, true)
            }
            _ => (out, false),
        }
    }

    /// Another device of ours told `to` it answers or declines a call that rings here.
    pub(crate) fn on_ring_sent(&mut self, to: &BareJid, ring: &Ring, now: i64) -> bool {
        let Some(c) = self.calls.get(&ring.id) else {
            return false;
        };
        if c.outgoing || c.state != CallState::Ringing || c.with != *to {
            return false;
        }
        if matches!(ring.kind, RingKind::Proceed | RingKind::Reject) {
            self.end(&ring.id, CallEnd::Elsewhere, None, now);
            return true;
        }
        false
    }

    /// A Jingle request; the answer is in what comes out. `contact`: its sender is one of
    /// ours.
    pub(crate) fn on_jingle(
        &mut self,
        req: &JingleRequest,
        contact: bool,
        now: i64,
    ) -> (Vec<Out>, bool) {
        let sid = req.sid.as_str();
        let Some(c) = self.calls.get(sid).cloned() else {
            // A session of a sphere's call never rings (see `group_leg`).
            if req.action == Action::SessionInitiate && contact && !req.in_room() {
                return self.direct_call(req, now);
            }
            // A stranger's session, or one we do not know: the same answer for both.
            return (vec![Out::Answer(req.unknown_session())], false);
        };
        if c.peer.as_ref() != Some(&req.from)
            || (!c.live() && req.action != Action::SessionTerminate)
        {
            return (vec![Out::Answer(req.unknown_session())], false);
        }
        match req.action {
            Action::SessionInitiate
                if !c.outgoing && c.state == CallState::Connecting && c.remote.is_none() =>
            {
                self.take_description(req, "offer", now)
            }
            Action::SessionAccept
                if c.outgoing && c.state == CallState::Connecting && c.local.is_some() =>
            {
                let (out, changed) = self.take_description(req, "answer", now);
                if changed && let Some(c) = self.calls.get_mut(sid) {
                    c.state = CallState::Active;
                }
                (out, changed)
            }
            Action::TransportInfo if c.live() => {
                let cands = match req.candidates() {
                    Ok(c) => c,
                    Err(e) => return (vec![Out::Answer(req.bad_request(&e.to_string()))], false),
                };
                let Some(c) = self.calls.get_mut(sid) else {
                    return (vec![Out::Answer(req.unknown_session())], false);
                };
                let before = c.candidates.len();
                for (mid, cand) in cands {
                    if c.candidates.len() >= MAX_CANDIDATES {
                        break;
                    }
                    c.candidates.push(RemoteCandidate {
                        mid,
                        candidate: cand.to_sdp(),
                    });
                }
                // Changed (and so an event) only when something was kept.
                (vec![Out::Answer(req.ack())], c.candidates.len() > before)
            }
            Action::SessionInfo => (vec![Out::Answer(req.ack())], false),
            Action::SessionTerminate => {
                let end = match req.reason() {
                    _ if !c.live() => return (vec![Out::Answer(req.ack())], false),
                    // A leg of a sphere's call: they left it.
                    _ if c.room.is_some() => CallEnd::TheyHungUp,
                    Reason::Decline if c.answered.is_none() => CallEnd::Declined,
                    Reason::Busy => CallEnd::Busy,
                    Reason::Cancel | Reason::Timeout if c.answered.is_none() => CallEnd::Missed,
                    Reason::Success
                    | Reason::Cancel
                    | Reason::Gone
                    | Reason::Decline
                    | Reason::Timeout => CallEnd::TheyHungUp,
                    other => {
                        self.end(
                            sid,
                            CallEnd::Failed,
                            Some(format!("the other side ended it: {}", other.name())),
                            now,
                        );
                        return (vec![Out::Answer(req.ack())], true);
                    }
                };
                self.end(sid, end, None, now);
                (vec![Out::Answer(req.ack())], true)
            }
            Action::Other => (vec![Out::Answer(req.unsupported())], false),
            _ => (vec![Out::Answer(req.out_of_order())], false),
        }
    }

    /// The other side's description, from a session-initiate or session-accept.
    fn take_description(&mut self, req: &JingleRequest, kind: &str, now: i64) -> (Vec<Out>, bool) {
        let session = match req.session() {
            Ok(s) => s,
            Err(e) => {
                let why = format!("the other side's description: {e}");
                let out = vec![
                    Out::Answer(req.bad_request(&e.to_string())),
                    Out::Request(
                        req.sid.clone(),
                        signal::session_terminate(&req.from, &req.sid, Reason::FailedApplication),
                    ),
                ];
                self.end(&req.sid, CallEnd::Failed, Some(why), now);
                return (out, true);
            }
        };
        let Some(c) = self.calls.get_mut(&req.sid) else {
            return (vec![Out::Answer(req.unknown_session())], false);
        };
        // Candidates inside the description are the first ones trickled.
        for m in &session.media {
            for cand in &m.candidates {
                if c.candidates.len() < MAX_CANDIDATES {
                    c.candidates.push(RemoteCandidate {
                        mid: m.mid.clone(),
                        candidate: cand.to_sdp(),
                    });
                }
            }
        }
        c.remote = Some(RemoteDescription {
            kind: kind.to_owned(),
            sdp: session.to_sdp(),
        });
        (vec![Out::Answer(req.ack())], true)
    }

    /// A session-initiate without a proposal before it (older clients call so): it rings.
    fn direct_call(&mut self, req: &JingleRequest, now: i64) -> (Vec<Out>, bool) {
        // Busy, full, or this person already rings here (one call at a time rings from one
        // person, however it started).
        let ringing_already = self
            .live()
            .any(|c| c.with == req.from.to_bare() && c.state == CallState::Ringing);
        if self.busy() || self.live().count() >= MAX_RINGING || ringing_already {
            return (
                vec![
                    Out::Answer(req.ack()),
                    Out::Request(
                        req.sid.clone(),
                        signal::session_terminate(&req.from, &req.sid, Reason::Busy),
                    ),
                ],
                false,
            );
        }
        let video = match req.session() {
            Ok(s) => s.media.iter().any(|m| m.kind == "video"),
            Err(e) => return (vec![Out::Answer(req.bad_request(&e.to_string()))], false),
        };
        self.calls.insert(
            req.sid.clone(),
            Call::new(
                req.sid.clone(),
                req.from.to_bare(),
                Some(req.from.clone()),
                false,
                video,
                CallState::Connecting,
                None,
                now,
                true,
            ),
        );
        let (mut out, _) = self.take_description(req, "offer", now);
        if let Some(c) = self.calls.get_mut(&req.sid)
            && c.live()
        {
            c.state = CallState::Ringing;
            out.push(Out::Request(
                req.sid.clone(),
                signal::session_ringing(&req.from, &req.sid),
            ));
        }
        (out, true)
    }

    /// A device of someone's went offline: a call with it ends. Returns whether any did.
    pub(crate) fn peer_gone(&mut self, device: &FullJid, now: i64) -> bool {
        let gone: Vec<String> = self
            .live()
            .filter(|c| c.peer.as_ref() == Some(device))
            .map(|c| c.id.clone())
            .collect();
        for id in &gone {
            let end = match self.calls.get(id).map(|c| (c.state, c.outgoing)) {
                Some((CallState::Ringing, false)) => CallEnd::Missed,
                _ => CallEnd::Failed,
            };
            let why = (end == CallEnd::Failed).then(|| "the other device went offline".to_owned());
            self.end(id, end, why, now);
        }
        !gone.is_empty()
    }

    /// A request of ours about call `id` failed (the other device is gone, or refused it).
    pub(crate) fn failed(&mut self, id: &str, why: String, now: i64) -> bool {
        if self.calls.get(id).is_some_and(Call::live) {
            self.end(id, CallEnd::Failed, Some(why), now);
            return true;
        }
        false
    }

    /// Calls that rang or waited too long end. Returns what to send and whether anything
    /// changed.
    pub(crate) fn tick(&mut self, now: i64) -> (Vec<Out>, bool) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for c in self.live() {
            match c.state {
                CallState::Calling if now - c.started >= RING_SECS => {
                    let retract = Ring::new(c.id.clone(), RingKind::Retract);
                    out.push(Out::Message(
                        retract.to_message(Jid::from(c.with.clone()), &message_id()),
                    ));
                    ends.push((c.id.clone(), CallEnd::NoAnswer, None));
                }
                CallState::Ringing if now - c.started >= RING_SECS => {
                    ends.push((c.id.clone(), CallEnd::Missed, None));
                }
                CallState::Connecting if now - c.answered.unwrap_or(c.started) >= CONNECT_SECS => {
                    if let Some(peer) = &c.peer {
                        out.push(Out::Request(
                            c.id.clone(),
                            signal::session_terminate(peer, &c.id, Reason::Timeout),
                        ));
                    }
                    ends.push((
                        c.id.clone(),
                        CallEnd::Failed,
                        Some("the call was answered but could not be set up in a minute".into()),
                    ));
                }
                _ => {}
            }
        }
        let changed = !ends.is_empty();
        for (id, end, why) in ends {
            self.end(&id, end, why, now);
        }
        (out, changed)
    }
}

impl Node {
    /// Calls, live and recently ended, newest first.
    pub fn calls(&self) -> Vec<CallInfo> {
        lock(&self.calls).list()
    }

    /// The STUN and TURN servers the page may use, with fresh credentials, from our XMPP
    /// server (XEP-0215; the household's coturn when the node manages the server); none
    /// when it offers none, or cannot be asked now (a call then goes without a relay).
    pub async fn ice_servers(&self) -> Vec<crate::api::types::IceServerInfo> {
        match self.xmpp.ice_servers().await {
            Ok(list) => {
                let mut out: Vec<crate::api::types::IceServerInfo> = Vec::new();
                for s in list {
                    let server = crate::api::types::IceServerInfo {
                        urls: vec![s.url],
                        username: s.username,
                        credential: s.credential,
                    };
                    // STUN over UDP and over TCP are one URL.
                    if !out.contains(&server) {
                        out.push(server);
                    }
                }
                out
            }
            Err(e) => {
                tracing::info!(error = %e, "no relay servers from the XMPP server");
                Vec::new()
            }
        }
    }

    fn call_info(&self, id: &str) -> Result<CallInfo, NodeError> {
        lock(&self.calls).get(id).ok_or_else(not_found)
    }

    /// Whether `who` is one of our contacts (in our roster, with a subscription either way).
    async fn is_contact(&self, who: &BareJid) -> Result<bool, NodeError> {
        Ok(self.xmpp.roster().await?.iter().any(|i| {
            i.jid == *who
                && matches!(
                    i.subscription,
                    Subscription::Both | Subscription::To | Subscription::From
                )
        }))
    }

    /// Sends what the calls' state machine says, in order; a request of ours that fails
    /// ends its call.
    async fn send_calls(self: &Arc<Self>, out: Vec<Out>) {
        for o in out {
            let sent = match o {
                Out::Message(m) => self.xmpp.send(m).await,
                Out::Answer(iq) => self.xmpp.send(iq).await,
                Out::Request(id, iq) => match self.xmpp.request(iq).await {
                    Ok(pending) => {
                        let node = Arc::downgrade(self);
                        tokio::spawn(async move {
                            let why = match pending.answer().await {
                                Ok(Iq::Error { error, .. }) => format!(
                                    "the other side refused: {}",
                                    error.texts.values().next().cloned().unwrap_or_else(
                                        || format!("{:?}", error.defined_condition)
                                    )
                                ),
                                Ok(_) => return,
                                Err(e) => format!("no answer from the other side: {e}"),
                            };
                            // What the other side wrote, shown on the page: short.
                            let why: String = why.chars().take(120).collect();
                            if let Some(node) = node.upgrade()
                                && lock(&node.calls).failed(&id, why, now_secs())
                            {
                                node.emit(NodeEvent::Call { id });
                            }
                        });
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "a call's signal did not go out");
            }
        }
    }

    /// Looks at the calls again in `secs` (and a second), for those that rang or waited too
    /// long.
    fn calls_tick_in(self: &Arc<Self>, secs: i64) {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(secs as u64 + 1)).await;
            let Some(node) = node.upgrade() else {
                return;
            };
            let _order = node.calls_sending.lock().await;
            let (out, changed) = lock(&node.calls).tick(now_secs());
            node.send_calls(out).await;
            if changed {
                node.emit(NodeEvent::Call { id: String::new() });
            }
        });
    }

    /// Calls a contact (online): every device of theirs rings. `tab`: the page that handles
    /// the media.
    pub async fn start_call(
        self: &Arc<Self>,
        with: &str,
        video: bool,
        tab: &str,
    ) -> Result<CallInfo, NodeError> {
        let who = crate::chat::address(with)?;
        if who == self.me {
            refuse!(BadInput, "you cannot call yourself");
        }
        if !self.is_contact(&who).await? {
            refuse!(
                Forbidden,
                "{who} is not one of your contacts: add them first, then call"
            );
        }
        if !lock(&self.contacts.online).contains_key(who.as_str()) {
            refuse!(
                Unavailable,
                "{who} is not online: a call needs them connected; leave them a message instead"
            );
        }
        let id = crate::random_token(12);
        self.call_step(&id, Some(RING_SECS), |c| {
            c.start(id.clone(), who, video, tab, now_secs())
        })
        .await
    }

    /// Runs one of the page's requests about call `id` through the state machine, sends what
    /// it says, waits `wait` seconds (if any) before looking at the calls again, and answers
    /// the call as it is then.
    async fn call_step(
        self: &Arc<Self>,
        id: &str,
        wait: Option<i64>,
        step: impl FnOnce(&mut Calls) -> Result<Vec<Out>, NodeError>,
    ) -> Result<CallInfo, NodeError> {
        let _order = self.calls_sending.lock().await;
        let out = step(&mut lock(&self.calls))?;
        self.send_calls(out).await;
        if let Some(secs) = wait {
            self.calls_tick_in(secs);
        }
        self.emit(NodeEvent::Call { id: id.to_owned() });
        self.call_info(id)
    }

    /// Answers a call that rings here; `tab`: the page that handles the media.
    pub async fn answer_call(self: &Arc<Self>, id: &str, tab: &str) -> Result<CallInfo, NodeError> {
        let me = self.me.clone();
        self.call_step(id, Some(CONNECT_SECS), |c| {
            c.answer(id, tab, &me, now_secs())
        })
        .await
    }

    /// Declines a call that rings, calls one off, or hangs up.
    pub async fn hang_up(self: &Arc<Self>, id: &str) -> Result<CallInfo, NodeError> {
        let me = self.me.clone();
        self.call_step(id, None, |c| c.hang_up(id, &me, now_secs()))
            .await
    }

    /// The page's description of its side (`offer` when it called, `answer` when called).
    pub async fn describe_call(
        self: &Arc<Self>,
        id: &str,
        tab: &str,
        kind: &str,
        sdp: &str,
    ) -> Result<CallInfo, NodeError> {
        let me = self.xmpp.jid();
        self.call_step(id, None, |c| c.describe(id, tab, kind, sdp, &me))
            .await
    }

    /// One of the page's ICE candidates.
    pub async fn call_candidate(
        self: &Arc<Self>,
        id: &str,
        tab: &str,
        mid: &str,
        candidate: &str,
    ) -> Result<(), NodeError> {
        let _order = self.calls_sending.lock().await;
        let out = lock(&self.calls).candidate(id, tab, mid, candidate)?;
        self.send_calls(out).await;
        Ok(())
    }

    /// A ringing message (XEP-0353).
    pub(crate) async fn on_ring(self: &Arc<Self>, from: FullJid, ring: Ring) {
        let me = self.xmpp.jid();
        let contact = match ring.kind {
            RingKind::Propose { .. } => self.is_contact(&from.to_bare()).await.unwrap_or(false),
            _ => false,
        };
        let id = ring.id.clone();
        let _order = self.calls_sending.lock().await;
        let (out, changed) = lock(&self.calls).on_ring(from, ring, &me, contact, now_secs());
        self.send_calls(out).await;
        if changed {
            // A call that rings here rings a minute at most; one answered there (proceed)
            // has a minute to exchange its descriptions.
            match lock(&self.calls).get(&id).map(|c| c.state) {
                Some(CallState::Ringing) => self.calls_tick_in(RING_SECS),
                Some(CallState::Connecting) => self.calls_tick_in(CONNECT_SECS),
                _ => {}
            }
            self.emit(NodeEvent::Call { id });
        }
    }

    /// A contact's device went offline: a call with it ends.
    pub(crate) fn call_peer_gone(&self, device: &FullJid) {
        if lock(&self.calls).peer_gone(device, now_secs()) {
            self.emit(NodeEvent::Call { id: String::new() });
        }
    }

    /// Another device of ours answered or declined a call to someone.
    pub(crate) fn on_ring_sent(&self, to: BareJid, ring: Ring) {
        if lock(&self.calls).on_ring_sent(&to, &ring, now_secs()) {
            self.emit(NodeEvent::Call { id: ring.id });
        }
    }

    /// A Jingle request: answered, and acted on.
    pub(crate) async fn on_jingle(self: &Arc<Self>, req: JingleRequest) {
        let known = lock(&self.calls).get(&req.sid).is_some();
        if !known && req.action == Action::SessionInitiate && req.in_room() {
            return self.on_group_jingle(req).await;
        }
        let contact = !known
            && req.action == Action::SessionInitiate
            && self.is_contact(&req.from.to_bare()).await.unwrap_or(false);
        let _order = self.calls_sending.lock().await;
        let (out, changed) = lock(&self.calls).on_jingle(&req, contact, now_secs());
        self.send_calls(out).await;
        if changed {
            if !known {
                self.calls_tick_in(RING_SECS);
            }
            self.emit(NodeEvent::Call { id: req.sid });
        }
    }
}

mod group;
#[cfg(test)]
mod tests;
