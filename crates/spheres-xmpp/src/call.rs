//! Call signalling over XMPP (issue 17), pure: stanzas in, typed values out, and back.
//!
//! - Ringing (XEP-0353, Jingle Message Initiation, `urn:xmpp:jingle-message:0` as Conversations,
//!   Dino and Movim speak it): the caller *proposes* to the callee's bare address, so every
//!   device of theirs rings; the device that answers says *proceed* to the caller's device
//!   and *accept* to its own account (its other devices stop ringing); *reject* declines,
//!   *retract* hangs up before an answer, *ringing* tells the caller a device rings,
//!   *finish* closes the call's record.
//! - The session (XEP-0166 actions on one full address): `session-initiate` carries the
//!   caller's description, `session-accept` the callee's, `transport-info` candidates one by
//!   one, `session-info` ringing or mute notices, `session-terminate` the end and why. The
//!   descriptions themselves are [`crate::jingle::Session`]'s.
//!
//! Every id read is a bounded token; what is not a call signal is `None` or an error, never
//! a panic.

use jid::{FullJid, Jid};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::jingle::{Candidate, JingleError, NS_ICE, NS_JINGLE, NS_RTP, Role, Session};

pub mod muji;

pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
pub const NS_RTP_INFO: &str = "urn:xmpp:jingle:apps:rtp:info:1";
const NS_HINTS: &str = "urn:xmpp:hints";

/// The longest session id read (clients use 16 to 36 characters).
pub const MAX_SID: usize = 128;

/// A session id: printable, no spaces, bounded.
fn sid_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SID
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
}

/// What a ringing message says (XEP-0353).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingKind {
    /// A call is proposed: audio, with video when `video`.
    Propose {
        video: bool,
    },
    Ringing,
    Proceed,
    Accept,
    Reject,
    Retract,
    Finish,
}

impl RingKind {
    fn name(&self) -> &'static str {
        match self {
            RingKind::Propose { .. } => "propose",
            RingKind::Ringing => "ringing",
            RingKind::Proceed => "proceed",
            RingKind::Accept => "accept",
            RingKind::Reject => "reject",
            RingKind::Retract => "retract",
            RingKind::Finish => "finish",
        }
    }
}

/// A ringing message: which session, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    pub id: String,
    pub kind: RingKind,
    /// The reason a `reject`, `retract` or `finish` gives (`busy`, `decline`...), when it
    /// gives one.
    pub reason: Option<Reason>,
}

impl Ring {
    pub fn new(id: impl Into<String>, kind: RingKind) -> Ring {
        Ring {
            id: id.into(),
            kind,
            reason: None,
        }
    }

    /// The ringing element a message carries, if it carries one (the first).
    pub fn from_message(m: &Message) -> Option<Ring> {
        if m.type_ == MessageType::Groupchat || m.type_ == MessageType::Error {
            return None;
        }
        let e = m.payloads.iter().find(|p| p.ns() == NS_JMI)?;
        Ring::from_element(e)
    }

    pub fn from_element(e: &Element) -> Option<Ring> {
        if e.ns() != NS_JMI {
            return None;
        }
        let id = e.attr("id").filter(|i| sid_ok(i))?.to_owned();
        let kind = match e.name() {
            "propose" => {
                let media: Vec<&str> = e
                    .children()
                    .filter(|c| c.is("description", NS_RTP))
                    .filter_map(|c| c.attr("media"))
                    .take(8)
                    .collect();
                // A proposal of something other than a call (a file transfer) is not ours.
                if !media.contains(&"audio") && !media.contains(&"video") {
                    return None;
                }
                RingKind::Propose {
                    video: media.contains(&"video"),
                }
            }
            "ringing" => RingKind::Ringing,
            "proceed" => RingKind::Proceed,
            "accept" => RingKind::Accept,
            "reject" => RingKind::Reject,
            "retract" => RingKind::Retract,
            "finish" => RingKind::Finish,
            _ => return None,
        };
        let reason = e
            .children()
            .any(|c| c.name() == "reason")
            .then(|| Reason::of(e));
        Some(Ring { id, kind, reason })
    }

    /// The message that says it to `to` (a bare address for `propose`, `retract` and our own
    /// `accept`; the other side's device for the rest). Kept in archives (a `store` hint), as
    /// clients show calls in the conversation's history from them.
    pub fn to_message(&self, to: Jid, message_id: &str) -> Message {
        let mut e = Element::builder(self.kind.name(), NS_JMI)
            .attr(a!("id"), self.id.as_str())
            .build();
        if let RingKind::Propose { video } = self.kind {
            for media in ["audio", "video"]
                .into_iter()
                .take(if video { 2 } else { 1 })
            {
                e.append_child(
                    Element::builder("description", NS_RTP)
                        .attr(a!("media"), media)
                        .build(),
                );
            }
        }
        if matches!(
            self.kind,
            RingKind::Reject | RingKind::Retract | RingKind::Finish
        ) {
            e.append_child(reason_element(self.reason.unwrap_or(match self.kind {
                RingKind::Reject => Reason::Decline,
                RingKind::Retract => Reason::Cancel,
                _ => Reason::Success,
            })));
        }
        let mut m = Message::new(Some(to));
        m.type_ = MessageType::Chat;
        m.id = Some(xmpp_parsers::message::Id(message_id.to_owned()));
        m.payloads.push(e);
        m.payloads.push(Element::builder("store", NS_HINTS).build());
        m
    }
}

/// A call as a conversation's archive tells it: the ringing messages (kept with a `store`
/// hint, by us and by Conversations, Dino...) folded into one record, at the place of its
/// proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub id: String,
    /// We called.
    pub mine: bool,
    pub video: bool,
    /// A device of the callee's said it would take it (`proceed`).
    pub answered: bool,
    /// The callee declined (`reject`).
    pub declined: bool,
    /// From the answer to the end (`finish`), when both are in the archive.
    pub seconds: Option<i64>,
    answered_at: Option<i64>,
}

/// Folds one ringing message into the records so far (`mine`: we sent it; `when`: seconds
/// since 1970, as archived). A proposal makes a record (returns its index); what follows
/// updates the record of its call, and only from the side that may say it (the callee
/// answers or declines, either side finishes).
pub fn fold_ring(
    records: &mut Vec<CallRecord>,
    ring: &Ring,
    mine: bool,
    when: Option<i64>,
) -> Option<usize> {
    if let RingKind::Propose { video } = ring.kind {
        if records.iter().any(|r| r.id == ring.id) {
            return None;
        }
        records.push(CallRecord {
            id: ring.id.clone(),
            mine,
            video,
            answered: false,
            declined: false,
            seconds: None,
            answered_at: None,
        });
        return Some(records.len() - 1);
    }
    let r = records.iter_mut().find(|r| r.id == ring.id)?;
    let from_callee = mine != r.mine;
    match ring.kind {
        RingKind::Proceed | RingKind::Accept if from_callee => {
            r.answered = true;
            r.answered_at = r.answered_at.or(when);
        }
        RingKind::Reject if from_callee && !r.answered => r.declined = true,
        RingKind::Finish => {
            if let (Some(a), Some(e)) = (r.answered_at, when) {
                r.seconds = Some((e - a).max(0));
            }
        }
        _ => {}
    }
    None
}

/// Why a session ended (XEP-0166 §7.4), as far as a call cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Success,
    Decline,
    Busy,
    Cancel,
    Timeout,
    Gone,
    ConnectivityError,
    FailedApplication,
    IncompatibleParameters,
    GeneralError,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Success => "success",
            Reason::Decline => "decline",
            Reason::Busy => "busy",
            Reason::Cancel => "cancel",
            Reason::Timeout => "timeout",
            Reason::Gone => "gone",
            Reason::ConnectivityError => "connectivity-error",
            Reason::FailedApplication => "failed-application",
            Reason::IncompatibleParameters => "incompatible-parameters",
            Reason::GeneralError => "general-error",
        }
    }

    fn from_name(n: &str) -> Reason {
        match n {
            "success" => Reason::Success,
            "decline" => Reason::Decline,
            "busy" => Reason::Busy,
            "cancel" => Reason::Cancel,
            "timeout" | "expired" => Reason::Timeout,
            "gone" => Reason::Gone,
            "connectivity-error" | "failed-transport" => Reason::ConnectivityError,
            "failed-application" | "unsupported-applications" | "security-error" => {
                Reason::FailedApplication
            }
            "incompatible-parameters" | "media-error" => Reason::IncompatibleParameters,
            _ => Reason::GeneralError,
        }
    }

    /// The reason a `<jingle/>` or a ringing element gives (the first condition in its
    /// `<reason/>`), `Success` when it gives none.
    pub fn of(e: &Element) -> Reason {
        e.children()
            .find(|c| c.name() == "reason")
            .and_then(|r| r.children().find(|c| c.name() != "text"))
            .map_or(Reason::Success, |c| Reason::from_name(c.name()))
    }
}

fn reason_element(r: Reason) -> Element {
    Element::builder("reason", NS_JINGLE)
        .append(Element::builder(r.name(), NS_JINGLE).build())
        .build()
}

/// A Jingle action we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SessionInitiate,
    SessionAccept,
    SessionTerminate,
    SessionInfo,
    TransportInfo,
    /// Anything else (content-add, transport-replace, ...): not supported, answered so.
    Other,
}

/// A Jingle request (an iq set) from another device.
#[derive(Debug, Clone)]
pub struct JingleRequest {
    pub from: FullJid,
    /// The iq's id, for the answer.
    pub iq_id: String,
    pub action: Action,
    pub sid: String,
    /// The `<jingle/>` element itself, to read the session or the candidates from.
    pub jingle: Element,
}

impl JingleRequest {
    /// A Jingle request, if `iq` is one: an iq set from a full address, carrying `<jingle/>`
    /// with an action and a session id we can read.
    pub fn from_iq(iq: &Iq) -> Option<JingleRequest> {
        let Iq::Set {
            from: Some(from),
            id,
            payload,
            ..
        } = iq
        else {
            return None;
        };
        let from = from.clone().try_into_full().ok()?;
        if !payload.is("jingle", NS_JINGLE) {
            return None;
        }
        let sid = payload.attr("sid").filter(|s| sid_ok(s))?.to_owned();
        let action = match payload.attr("action")? {
            "session-initiate" => Action::SessionInitiate,
            "session-accept" => Action::SessionAccept,
            "session-terminate" => Action::SessionTerminate,
            "session-info" => Action::SessionInfo,
            "transport-info" => Action::TransportInfo,
            _ => Action::Other,
        };
        Some(JingleRequest {
            from: from.clone(),
            iq_id: id.clone(),
            action,
            sid,
            jingle: payload.clone(),
        })
    }

    /// The room whose call this session belongs to (XEP-0272), if it says one.
    pub fn room(&self) -> Option<jid::BareJid> {
        muji::session_room(&self.jingle)
    }

    /// Whether it says it belongs to a room's call at all (a room we may not be able to read).
    pub fn in_room(&self) -> bool {
        self.jingle.get_child("muji", muji::NS_MUJI).is_some()
    }

    /// The session a `session-initiate` (by the initiator) or `session-accept` (by the
    /// responder) describes.
    pub fn session(&self) -> Result<Session, JingleError> {
        let by = match self.action {
            Action::SessionAccept => Role::Responder,
            _ => Role::Initiator,
        };
        Session::from_jingle(&self.jingle, by)
    }

    /// The candidates a `transport-info` trickles: (content name, candidate), at most
    /// `crate::jingle::MAX_ITEMS`.
    pub fn candidates(&self) -> Result<Vec<(String, Candidate)>, JingleError> {
        let mut out = Vec::new();
        for c in self
            .jingle
            .children()
            .filter(|c| c.is("content", NS_JINGLE))
        {
            let Some(name) = c.attr("name").filter(|n| sid_ok(n)) else {
                return Err(JingleError::Jingle("a content without a name".into()));
            };
            for t in c.children().filter(|t| t.is("transport", NS_ICE)) {
                for cand in t.children().filter(|x| x.is("candidate", NS_ICE)) {
                    if out.len() >= crate::jingle::MAX_ITEMS {
                        return Err(JingleError::TooMany("candidates"));
                    }
                    out.push((name.to_owned(), Candidate::from_jingle(cand)?));
                }
            }
        }
        Ok(out)
    }

    /// Why a `session-terminate` ends the session.
    pub fn reason(&self) -> Reason {
        Reason::of(&self.jingle)
    }

    /// The answer that says the request was received (sent before acting on it, XEP-0166
    /// §6.2).
    pub fn ack(&self) -> Iq {
        Iq::Result {
            from: None,
            to: Some(Jid::from(self.from.clone())),
            id: self.iq_id.clone(),
            payload: None,
        }
    }

    /// The answer for a session we do not know (XEP-0166 §7.2): `item-not-found` with
    /// `<unknown-session/>`.
    pub fn unknown_session(&self) -> Iq {
        self.error(
            ErrorType::Cancel,
            DefinedCondition::ItemNotFound,
            "unknown-session",
            "no such call",
        )
    }

    /// The answer for an action out of order (`out-of-order`, XEP-0166 §8), or one we do
    /// not support (`feature-not-implemented` with `<unsupported-info/>`).
    pub fn out_of_order(&self) -> Iq {
        self.error(
            ErrorType::Wait,
            DefinedCondition::UnexpectedRequest,
            "out-of-order",
            "not now",
        )
    }

    pub fn unsupported(&self) -> Iq {
        self.error(
            ErrorType::Cancel,
            DefinedCondition::FeatureNotImplemented,
            "unsupported-info",
            "not supported",
        )
    }

    /// A malformed description: `bad-request`.
    pub fn bad_request(&self, why: &str) -> Iq {
        let mut e = self.error(ErrorType::Modify, DefinedCondition::BadRequest, "", why);
        if let Iq::Error { error, .. } = &mut e {
            error.other = None;
        }
        e
    }

    /// Both sides opened a session at once; theirs yields to ours (XEP-0166 §7.2.16).
    pub fn tie_break(&self) -> Iq {
        self.error(
            ErrorType::Cancel,
            DefinedCondition::Conflict,
            "tie-break",
            "a session between us is already open",
        )
    }

    fn error(&self, kind: ErrorType, condition: DefinedCondition, jingle: &str, text: &str) -> Iq {
        let mut error = StanzaError::new(kind, condition, "en", text);
        if !jingle.is_empty() {
            error.other = Some(Element::builder(jingle, NS_JINGLE_ERRORS).build());
        }
        Iq::Error {
            from: None,
            to: Some(Jid::from(self.from.clone())),
            id: self.iq_id.clone(),
            error,
            payload: None,
        }
    }
}

fn jingle_element(action: &str, sid: &str) -> Element {
    Element::builder("jingle", NS_JINGLE)
        .attr(a!("action"), action)
        .attr(a!("sid"), sid)
        .build()
}

fn set(to: &FullJid, payload: Element) -> Iq {
    Iq::Set {
        from: None,
        to: Some(Jid::from(to.clone())),
        // The client gives it an id.
        id: String::new(),
        payload,
    }
}

/// A session's description by `by`, in a `session-initiate` (by the initiator, naming itself
/// in `initiator`) or a `session-accept` (by the responder, in `responder`).
fn described(to: &FullJid, sid: &str, by: Role, me: &FullJid, session: &Session) -> Iq {
    let (action, name) = match by {
        Role::Initiator => ("session-initiate", a!("initiator")),
        Role::Responder => ("session-accept", a!("responder")),
    };
    let mut j = jingle_element(action, sid);
    j.set_attr(rxml::Namespace::NONE, name, me.to_string());
    let (contents, group) = session.to_jingle(by);
    for c in contents.into_iter().chain(group) {
        j.append_child(c);
    }
    set(to, j)
}

/// `session-initiate` to `to`: the caller's (`initiator`'s) description.
pub fn session_initiate(to: &FullJid, sid: &str, initiator: &FullJid, session: &Session) -> Iq {
    described(to, sid, Role::Initiator, initiator, session)
}

/// `session-initiate` of a call in `room` (XEP-0272): tagged with the room, so that the other
/// participant answers it without ringing.
pub fn session_initiate_in(
    to: &FullJid,
    sid: &str,
    initiator: &FullJid,
    session: &Session,
    room: &jid::BareJid,
) -> Iq {
    let mut iq = described(to, sid, Role::Initiator, initiator, session);
    if let Iq::Set { payload, .. } = &mut iq {
        muji::tag_session(payload, room);
    }
    iq
}

/// `session-accept` to `to`: the callee's (`responder`'s) description.
pub fn session_accept(to: &FullJid, sid: &str, responder: &FullJid, session: &Session) -> Iq {
    described(to, sid, Role::Responder, responder, session)
}

/// `transport-info` to `to`: one candidate of the content `mid`, with the ICE credentials it
/// belongs to (`ufrag`, `pwd`, as the description said them).
pub fn transport_info(
    to: &FullJid,
    sid: &str,
    mid: &str,
    credentials: (Option<&str>, Option<&str>),
    candidate: &Candidate,
    index: usize,
) -> Iq {
    let mut j = jingle_element("transport-info", sid);
    let mut t = Element::builder("transport", NS_ICE).build();
    if let Some(u) = credentials.0 {
        t.set_attr(rxml::Namespace::NONE, a!("ufrag"), u);
    }
    if let Some(p) = credentials.1 {
        t.set_attr(rxml::Namespace::NONE, a!("pwd"), p);
    }
    t.append_child(candidate.to_jingle(&format!("{mid}-t{index}")));
    j.append_child(
        Element::builder("content", NS_JINGLE)
            .attr(a!("creator"), "initiator")
            .attr(a!("name"), mid)
            .append(t)
            .build(),
    );
    set(to, j)
}

/// `session-info` saying this device rings (XEP-0167 §7).
pub fn session_ringing(to: &FullJid, sid: &str) -> Iq {
    let mut j = jingle_element("session-info", sid);
    j.append_child(Element::builder("ringing", NS_RTP_INFO).build());
    set(to, j)
}

/// `session-terminate` to `to`, saying why.
pub fn session_terminate(to: &FullJid, sid: &str, reason: Reason) -> Iq {
    let mut j = jingle_element("session-terminate", sid);
    j.append_child(reason_element(reason));
    set(to, j)
}

pub const NS_EXTDISCO: &str = "urn:xmpp:extdisco:2";
/// The most relay and STUN servers taken from one answer.
const MAX_SERVERS: usize = 16;

/// A STUN or TURN server as a browser's `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:HOST:PORT`, `turn:HOST:PORT?transport=udp|tcp` or `turns:…`.
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// The servers an XEP-0215 answer (`<services xmlns='urn:xmpp:extdisco:2'>`) lists: STUN,
/// TURN and TURNS over UDP or TCP, with their credentials; anything else, or a host or port
/// that could not be in a URL, is left out. At most 16.
pub fn read_ice_servers(services: &Element) -> Vec<IceServer> {
    services
        .children()
        .filter(|c| c.is("service", NS_EXTDISCO))
        .filter_map(|c| {
            let kind = c.attr("type")?;
            if !matches!(kind, "stun" | "turn" | "turns") {
                return None;
            }
            let host = c.attr("host")?;
            let host = match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                Ok(v4) => v4.to_string(),
                // A name: letters, digits, dots and dashes only.
                Err(_)
                    if !host.is_empty()
                        && host.len() <= 253
                        && host
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-') =>
                {
                    host.to_owned()
                }
                Err(_) => return None,
            };
            let port: u16 = c.attr("port").map_or(Ok(3478), str::parse).ok()?;
            if port == 0 {
                return None;
            }
            let mut url = format!("{kind}:{host}:{port}");
            if kind != "stun" {
                match c.attr("transport") {
                    Some(t @ ("udp" | "tcp")) => url.push_str(&format!("?transport={t}")),
                    None => {}
                    Some(_) => return None,
                }
            }
            let text = |name: &str| {
                c.attr(name)
                    .filter(|v| v.len() <= 512 && v.chars().all(|ch| !ch.is_control()))
                    .map(str::to_owned)
            };
            let (username, credential) = (text("username"), text("password"));
            // A relay without credentials is one a browser refuses to be given at all.
            if kind != "stun" && (username.is_none() || credential.is_none()) {
                return None;
            }
            Some(IceServer {
                url,
                username,
                credential,
            })
        })
        .take(MAX_SERVERS)
        .collect()
}

impl crate::Client {
    /// The STUN and TURN servers our server offers (XEP-0215), with fresh credentials;
    /// none when it offers none (or does not know the protocol).
    pub async fn ice_servers(&self) -> Result<Vec<IceServer>, crate::XmppError> {
        let domain = jid::BareJid::from_parts(None, self.jid().domain());
        let iq = Iq::Get {
            from: None,
            to: Some(Jid::from(domain)),
            id: String::new(),
            payload: Element::builder("services", NS_EXTDISCO).build(),
        };
        Ok(match self.iq(iq).await? {
            Iq::Result {
                payload: Some(p), ..
            } if p.is("services", NS_EXTDISCO) => read_ice_servers(&p),
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
