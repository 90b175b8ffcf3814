//! WebTorrent signalling: the WebSocket tracker protocol that lets browsers find each other
//! and open WebRTC data channels (as WebTorrent's `bittorrent-tracker` speaks it). Sans-IO:
//! a text message from a connection goes in with the time, messages for connections come out.
//!
//! The protocol, in short (JSON text frames; 20-byte ids as "binary strings", one character
//! per byte, U+0000 to U+00FF):
//! - `{"action":"announce","info_hash","peer_id","event","left","offers":[{"offer":{"type",
//!   "sdp"},"offer_id"}]}`: the tracker answers the announcer (`interval`, `complete`,
//!   `incomplete`) and hands each offer to one other browser of the swarm, with the
//!   announcer's `peer_id` and the `offer_id`.
//! - `{"action":"announce","info_hash","peer_id","to_peer_id","answer","offer_id"}`: the
//!   tracker passes the answer to the browser that made the offer (and answers nothing).
//! - `{"action":"scrape","info_hash": one or a list}`: counts per torrent.
//! - Errors: `{"failure reason": "...", ...}`.
//!
//! Who sends what: any browser that reaches the socket (the node puts it behind a link's
//! token, for that link's torrent only: [`Signal::message`]'s `allowed`). What it must never
//! get: to speak for another browser (a peer id stays with the connection that announced it
//! first, and an answer goes only to the browser the offer came from, within the swarm both
//! are in), a swarm it is not allowed, or the tracker's memory (swarms, peers per swarm,
//! swarms per connection, offers per announce, sizes and the rate of messages are bounded;
//! what passes through is only a type and an SDP string, never the sender's other fields).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A connection, as the driver numbers them.
pub type ConnId = u64;
type Id = [u8; 20];

/// The longest message a browser may send (bytes).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The longest SDP passed on (bytes).
pub const MAX_SDP: usize = 16 * 1024;
/// Offers of one announce passed on, at most (WebTorrent sends up to 10).
pub const MAX_OFFERS: usize = 10;
/// Browsers in one swarm.
pub const MAX_PEERS: usize = 1000;
/// Swarms at once.
pub const MAX_SWARMS: usize = 10_000;
/// Swarms one connection takes part in.
pub const MAX_SWARMS_PER_CONN: usize = 16;
/// Messages a connection may send in a burst; then one more every [`REFILL`].
pub const BURST: u32 = 30;
pub const REFILL: Duration = Duration::from_secs(1);
/// How often browsers announce (seconds), as WebTorrent's tracker tells them.
pub const INTERVAL: u64 = 120;

/// An SDP offer or answer: all of it that is passed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sdp {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

#[derive(Deserialize)]
struct OfferIn {
    offer: Sdp,
    offer_id: String,
}

/// A message as browsers send it; everything optional, checked after.
#[derive(Deserialize)]
struct Incoming {
    action: Option<String>,
    info_hash: Option<Value>,
    peer_id: Option<String>,
    event: Option<String>,
    left: Option<Value>,
    #[serde(default)]
    offers: Option<Vec<Value>>,
    answer: Option<Value>,
    to_peer_id: Option<String>,
    offer_id: Option<String>,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Announce(Announce),
    Scrape(Vec<Id>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: Id,
    pub peer_id: Id,
    pub event: Event,
    /// Whether it has the whole torrent (`left` is 0).
    pub complete: bool,
    /// Offers to hand to other browsers (at most [`MAX_OFFERS`]).
    pub offers: Vec<(Id, Sdp)>,
    /// An answer to the browser `to` for its offer `offer_id`.
    pub answer: Option<Answer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub to: Id,
    pub offer_id: Id,
    pub sdp: Sdp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Started,
    Update,
    Completed,
    Stopped,
}

/// Why a message is refused (the browser is told, in `failure reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    #[error("not a tracker message: {0}")]
    Malformed(String),
    #[error("this tracker does not serve that torrent")]
    NotAllowed,
    #[error("that peer id belongs to another connection")]
    PeerIdTaken,
    #[error("too many browsers in this swarm")]
    SwarmFull,
    #[error("too many torrents")]
    TooMany,
    #[error("too many messages: slow down")]
    SlowDown,
}

/// A 20-byte id from a binary string.
fn binary(s: &str) -> Option<Id> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        *out.get_mut(n)? = u8::try_from(u32::from(c)).ok()?;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// A 20-byte id as a binary string.
fn string(id: &Id) -> String {
    id.iter().map(|&b| char::from(b)).collect()
}

fn sdp_of(v: &Value, kind: &str) -> Option<Sdp> {
    let s: Sdp = serde_json::from_value(v.clone()).ok()?;
    (s.kind == kind && s.sdp.len() <= MAX_SDP).then_some(s)
}

/// Reads a browser's message. Pure.
pub fn parse(text: &str) -> Result<Request, RtcError> {
    let bad = |m: &str| RtcError::Malformed(m.to_owned());
    if text.len() > MAX_MESSAGE {
        return Err(bad("too long"));
    }
    let m: Incoming = serde_json::from_str(text).map_err(|_| bad("not JSON of the protocol"))?;
    match m.action.as_deref() {
        Some("announce") => {
            let info_hash = m
                .info_hash
                .as_ref()
                .and_then(Value::as_str)
                .and_then(binary)
                .ok_or_else(|| bad("invalid info_hash"))?;
            let peer_id = m
                .peer_id
                .as_deref()
                .and_then(binary)
                .ok_or_else(|| bad("invalid peer_id"))?;
            let event = match m.event.as_deref() {
                None | Some("") | Some("update") | Some("empty") => Event::Update,
                Some("started") => Event::Started,
                Some("completed") => Event::Completed,
                Some("stopped") => Event::Stopped,
                Some(_) => return Err(bad("invalid event")),
            };
            let complete = match &m.left {
                Some(Value::Number(n)) => n.as_f64() == Some(0.0),
                Some(Value::String(s)) => s == "0",
                _ => false,
            };
            let offers = m
                .offers
                .unwrap_or_default()
                .into_iter()
                .take(MAX_OFFERS)
                .filter_map(|o| {
                    let o: OfferIn = serde_json::from_value(o).ok()?;
                    let id = binary(&o.offer_id)?;
                    let sdp = sdp_of(&serde_json::to_value(&o.offer).ok()?, "offer")?;
                    Some((id, sdp))
                })
                .collect();
            let answer = match m.answer {
                None => None,
                Some(a) => Some(Answer {
                    sdp: sdp_of(&a, "answer").ok_or_else(|| bad("invalid answer"))?,
                    to: m
                        .to_peer_id
                        .as_deref()
                        .and_then(binary)
                        .ok_or_else(|| bad("invalid to_peer_id (needed with an answer)"))?,
                    offer_id: m
                        .offer_id
                        .as_deref()
                        .and_then(binary)
                        .ok_or_else(|| bad("invalid offer_id"))?,
                }),
            };
            Ok(Request::Announce(Announce {
                info_hash,
                peer_id,
                event,
                complete,
                offers,
                answer,
            }))
        }
        Some("scrape") => {
            let hashes = match m.info_hash {
                Some(Value::String(s)) => vec![s],
                Some(Value::Array(a)) => a
                    .into_iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("invalid info_hash"))?,
                _ => return Err(bad("invalid info_hash")),
            };
            if hashes.len() > MAX_SWARMS_PER_CONN {
                return Err(bad("too many info hashes"));
            }
            hashes
                .iter()
                .map(|h| binary(h).ok_or_else(|| bad("invalid info_hash")))
                .collect::<Result<_, _>>()
                .map(Request::Scrape)
        }
        _ => Err(bad("invalid action")),
    }
}

struct Peer {
    conn: ConnId,
    complete: bool,
}

#[derive(Default)]
struct Swarm {
    peers: HashMap<Id, Peer>,
}

impl Swarm {
    fn counts(&self) -> (usize, usize) {
        let complete = self.peers.values().filter(|p| p.complete).count();
        (complete, self.peers.len() - complete)
    }
}

struct Conn {
    /// The swarms it announced in, and its peer id in each.
    swarms: HashMap<Id, Id>,
    tokens: u32,
    refilled: Instant,
}

/// The swarms of browsers and who is connected. Sans-IO.
#[derive(Default)]
pub struct Signal {
    swarms: HashMap<Id, Swarm>,
    conns: HashMap<ConnId, Conn>,
}

/// A message for a connection.
pub type Out = (ConnId, String);

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// How many swarms, and browsers in all of them.
    pub fn size(&self) -> (usize, usize) {
        (
            self.swarms.len(),
            self.swarms.values().map(|s| s.peers.len()).sum(),
        )
    }

    /// A message from connection `conn` at `now`; `allowed` says which torrents this
    /// connection may use. Returns what to send, and to whom.
    pub fn message(
        &mut self,
        conn: ConnId,
        text: &str,
        now: Instant,
        allowed: &dyn Fn(&[u8; 20]) -> bool,
    ) -> Vec<Out> {
        if let Err(e) = self.spend(conn, now) {
            return vec![(conn, failure(&e, None))];
        }
        match parse(text) {
            Ok(Request::Announce(a)) => match self.announce(conn, &a, allowed) {
                Ok(out) => out,
                Err(e) => vec![(conn, failure(&e, Some(&a.info_hash)))],
            },
            Ok(Request::Scrape(hashes)) => vec![(conn, self.scrape(&hashes, allowed))],
            Err(e) => vec![(conn, failure(&e, None))],
        }
    }

    /// Takes one message from `conn`'s budget.
    fn spend(&mut self, conn: ConnId, now: Instant) -> Result<(), RtcError> {
        let c = self.conns.entry(conn).or_insert(Conn {
            swarms: HashMap::new(),
            tokens: BURST,
            refilled: now,
        });
        let earned = now.saturating_duration_since(c.refilled).as_secs() / REFILL.as_secs().max(1);
        if earned > 0 {
            c.tokens = BURST.min(
                c.tokens
                    .saturating_add(u32::try_from(earned).unwrap_or(BURST)),
            );
            c.refilled = now;
        }
        if c.tokens == 0 {
            return Err(RtcError::SlowDown);
        }
        c.tokens -= 1;
        Ok(())
    }

    fn announce(
        &mut self,
        conn: ConnId,
        a: &Announce,
        allowed: &dyn Fn(&[u8; 20]) -> bool,
    ) -> Result<Vec<Out>, RtcError> {
        if !allowed(&a.info_hash) {
            return Err(RtcError::NotAllowed);
        }
        let c = self.conns.get(&conn).ok_or(RtcError::SlowDown)?;
        let known = c.swarms.get(&a.info_hash).copied();
        if known.is_none() && c.swarms.len() >= MAX_SWARMS_PER_CONN {
            return Err(RtcError::TooMany);
        }
        if known.is_some_and(|id| id != a.peer_id) {
            // One peer id per connection and swarm (as it first announced).
            return Err(RtcError::PeerIdTaken);
        }
        if !self.swarms.contains_key(&a.info_hash) && self.swarms.len() >= MAX_SWARMS {
            return Err(RtcError::TooMany);
        }
        let swarm = self.swarms.entry(a.info_hash).or_default();
        match swarm.peers.get(&a.peer_id) {
            Some(p) if p.conn != conn => return Err(RtcError::PeerIdTaken),
            None if a.event != Event::Stopped && swarm.peers.len() >= MAX_PEERS => {
                return Err(RtcError::SwarmFull);
            }
            _ => {}
        }
        if a.event == Event::Stopped {
            swarm.peers.remove(&a.peer_id);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.swarms.remove(&a.info_hash);
            }
        } else {
            let peer = swarm.peers.entry(a.peer_id).or_insert(Peer {
                conn,
                complete: false,
            });
            peer.complete |= a.complete || a.event == Event::Completed;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.swarms.insert(a.info_hash, a.peer_id);
            }
        }
        let ih = string(&a.info_hash);
        let from = string(&a.peer_id);
        let mut out = Vec::new();
        let Some(swarm) = self.swarms.get(&a.info_hash) else {
            return Ok(out);
        };
        if let Some(answer) = &a.answer {
            // Only to a browser of this swarm, from one of it.
            if a.event != Event::Stopped
                && let Some(to) = swarm.peers.get(&answer.to)
                && to.conn != conn
            {
                out.push((
                    to.conn,
                    json!({"action": "announce", "answer": answer.sdp, "offer_id": string(&answer.offer_id),
                           "peer_id": from, "info_hash": ih})
                    .to_string(),
                ));
            }
        } else {
            let (complete, incomplete) = swarm.counts();
            out.push((
                conn,
                json!({"action": "announce", "interval": INTERVAL, "info_hash": ih,
                       "complete": complete, "incomplete": incomplete})
                .to_string(),
            ));
        }
        if a.event != Event::Stopped && !a.offers.is_empty() {
            let mut others: Vec<ConnId> = swarm
                .peers
                .iter()
                .filter(|(id, p)| **id != a.peer_id && p.conn != conn)
                .map(|(_, p)| p.conn)
                .collect();
            // A different few each time.
            use rand::seq::SliceRandom;
            others.shuffle(&mut rand::rng());
            for ((offer_id, sdp), to) in a.offers.iter().zip(others) {
                out.push((
                    to,
                    json!({"action": "announce", "offer": sdp, "offer_id": string(offer_id),
                           "peer_id": from, "info_hash": ih})
                    .to_string(),
                ));
            }
        }
        if swarm.peers.is_empty() {
            self.swarms.remove(&a.info_hash);
        }
        Ok(out)
    }

    fn scrape(&self, hashes: &[Id], allowed: &dyn Fn(&[u8; 20]) -> bool) -> String {
        let mut files = serde_json::Map::new();
        for h in hashes {
            let (complete, incomplete) = self
                .swarms
                .get(h)
                .filter(|_| allowed(h))
                .map_or((0, 0), Swarm::counts);
            files.insert(
                string(h),
                json!({"complete": complete, "incomplete": incomplete, "downloaded": complete}),
            );
        }
        json!({"action": "scrape", "files": files}).to_string()
    }

    /// Connection `conn` closed: its browsers leave their swarms.
    pub fn closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for (hash, peer) in c.swarms {
            if let Some(s) = self.swarms.get_mut(&hash) {
                if s.peers.get(&peer).is_some_and(|p| p.conn == conn) {
                    s.peers.remove(&peer);
                }
                if s.peers.is_empty() {
                    self.swarms.remove(&hash);
                }
            }
        }
    }
}

fn failure(e: &RtcError, info_hash: Option<&Id>) -> String {
    let mut v = json!({"failure reason": e.to_string()});
    if let Some(h) = info_hash {
        v["action"] = json!("announce");
        v["info_hash"] = json!(string(h));
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        let mut i = [b; 20];
        i[0] = 0xff; // a byte past ASCII, as real ids have
        i
    }

    fn announce(hash: u8, peer: u8, extra: Value) -> String {
        let mut v = json!({"action": "announce", "info_hash": string(&id(hash)), "peer_id": string(&id(peer)),
                           "event": "started", "left": 100, "numwant": 5});
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v.to_string()
    }

    fn offers(n: usize) -> Value {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"offer": {"type": "offer", "sdp": format!("v=0 offer {i}")}, "offer_id": string(&id(100 + i as u8))}))
            .collect();
        json!({ "offers": list })
    }

    fn parsed(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    const ALL: &dyn Fn(&[u8; 20]) -> bool = &|_| true;

    #[test]
    fn offers_reach_other_browsers_and_answers_come_back() {
        let mut s = Signal::new();
        let now = Instant::now();
        // Two browsers join; the second's offer reaches the first, whose answer comes back.
        let out = s.message(1, &announce(1, 1, json!({})), now, ALL);
        assert_eq!(out.len(), 1);
        let reply = parsed(&out[0].1);
        assert_eq!(
            (reply["interval"].as_u64(), reply["incomplete"].as_u64()),
            (Some(INTERVAL), Some(1))
        );
        assert_eq!(reply["info_hash"], string(&id(1)));
        let out = s.message(2, &announce(1, 2, offers(3)), now, ALL);
        assert_eq!(
            out.len(),
            2,
            "a reply, and one offer for the one other browser: {out:?}"
        );
        let (to, offer) = &out[1];
        assert_eq!(*to, 1);
        let offer = parsed(offer);
        assert_eq!(offer["peer_id"], string(&id(2)));
        assert_eq!(offer["offer"]["sdp"], "v=0 offer 0");
        let answer = json!({"answer": {"type": "answer", "sdp": "v=0 answer"}, "to_peer_id": string(&id(2)),
                            "offer_id": offer["offer_id"].clone(), "event": null});
        let out = s.message(1, &announce(1, 1, answer), now, ALL);
        assert_eq!(out.len(), 1, "no reply to an answer: {out:?}");
        assert_eq!(out[0].0, 2);
        let back = parsed(&out[0].1);
        assert_eq!(
            (back["answer"]["sdp"].as_str(), back["peer_id"].as_str()),
            (Some("v=0 answer"), Some(string(&id(1)).as_str()))
        );
        // Scrape; then the first leaves with its connection.
        let scrape = json!({"action": "scrape", "info_hash": [string(&id(1))]}).to_string();
        let files = parsed(&s.message(2, &scrape, now, ALL)[0].1);
        assert_eq!(files["files"][string(&id(1))]["incomplete"], 2);
        s.closed(1);
        assert_eq!(s.size(), (1, 1));
        s.closed(2);
        assert_eq!(s.size(), (0, 0), "empty swarms go");
    }

    /// Attack: a browser speaks for another (its peer id, answers to offers it never got),
    /// or reaches a torrent it is not allowed.
    #[test]
    fn a_browser_cannot_speak_for_another_or_reach_other_torrents() {
        let mut s = Signal::new();
        let now = Instant::now();
        s.message(1, &announce(1, 1, json!({})), now, ALL);
        s.message(2, &announce(1, 2, json!({})), now, ALL);
        // Connection 3 claims browser 1's peer id: refused, and it gets no offers meant for 1.
        let out = s.message(3, &announce(1, 1, json!({})), now, ALL);
        assert!(out[0].1.contains("another connection"), "{out:?}");
        let out = s.message(2, &announce(1, 2, offers(5)), now, ALL);
        assert!(out.iter().all(|(to, _)| *to != 3), "{out:?}");
        // An answer to a browser of a swarm the answerer is not in goes nowhere.
        let answer = json!({"answer": {"type": "answer", "sdp": "x"}, "to_peer_id": string(&id(1)), "offer_id": string(&id(9))});
        let out = s.message(3, &announce(2, 3, answer), now, ALL);
        assert!(out.iter().all(|(to, _)| *to == 3), "{out:?}");
        // Not allowed: refused, nothing joined.
        let only_two: &dyn Fn(&[u8; 20]) -> bool = &|h| *h == id(2);
        let out = s.message(4, &announce(1, 4, json!({})), now, only_two);
        assert!(out[0].1.contains("does not serve"), "{out:?}");
        let scrape = json!({"action": "scrape", "info_hash": string(&id(1))}).to_string();
        let files = parsed(&s.message(4, &scrape, now, only_two)[0].1);
        assert_eq!(
            files["files"][string(&id(1))]["incomplete"],
            0,
            "counts of a torrent not allowed"
        );
        // Only the type and the SDP pass; another field in an offer does not.
        let sneaky = json!({"offers": [{"offer": {"type": "offer", "sdp": "v=0", "x": "<script>"}, "offer_id": string(&id(7))}]});
        let out = s.message(2, &announce(1, 2, sneaky), now, ALL);
        assert!(out.iter().all(|(_, m)| !m.contains("script")), "{out:?}");
    }

    /// Attack: flooding the tracker with messages, offers, swarms, or one huge message.
    #[test]
    fn what_a_browser_sends_is_bounded() {
        let mut s = Signal::new();
        let now = Instant::now();
        let mut refused = 0;
        for i in 0..(BURST + 10) {
            let out = s.message(
                1,
                &announce(1, 1, json!({"event": "update", "n": i})),
                now,
                ALL,
            );
            refused += usize::from(out[0].1.contains("slow down"));
        }
        assert_eq!(refused, 10);
        let later = now + REFILL * BURST;
        assert!(
            !s.message(1, &announce(1, 1, json!({})), later, ALL)[0]
                .1
                .contains("slow down")
        );
        // Swarms per connection.
        for h in 2..(MAX_SWARMS_PER_CONN as u8 + 5) {
            s.message(2, &announce(h, 2, json!({})), later, ALL);
        }
        assert!(s.conns[&2].swarms.len() <= MAX_SWARMS_PER_CONN);
        // Offers per announce: at most MAX_OFFERS handed on.
        for c in 10..30u64 {
            s.message(c, &announce(50, c as u8, json!({})), later, ALL);
        }
        let out = s.message(99, &announce(50, 99, offers(40)), later, ALL);
        assert_eq!(out.len(), 1 + MAX_OFFERS);
        // Too long; an SDP too long.
        let huge = announce(1, 3, json!({"pad": "x".repeat(MAX_MESSAGE)}));
        assert!(s.message(3, &huge, later, ALL)[0].1.contains("too long"));
        let big_sdp = json!({"offers": [{"offer": {"type": "offer", "sdp": "x".repeat(MAX_SDP + 1)}, "offer_id": string(&id(7))}]});
        let out = s.message(4, &announce(50, 4, big_sdp), later, ALL);
        assert_eq!(out.len(), 1, "the long SDP was passed on: {out:?}");
    }

    #[test]
    fn bad_messages_get_a_reason_and_change_nothing() {
        for bad in [
            "",
            "null",
            "[]",
            "{\"action\":\"announce\"}",
            "{\"action\":\"announce\",\"info_hash\":\"short\",\"peer_id\":\"x\"}",
            "{\"action\":\"connect\"}",
            "{\"action\":\"scrape\",\"info_hash\":7}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // A character past U+00FF is no byte.
        let wide = format!("{}é€", "a".repeat(18));
        assert_eq!(binary(&wide), None);
        assert_eq!(binary(&string(&id(3))), Some(id(3)));
        let mut s = Signal::new();
        let out = s.message(1, "{", Instant::now(), ALL);
        assert!(parsed(&out[0].1)["failure reason"].is_string());
        assert_eq!(s.size(), (0, 0));
    }
}
