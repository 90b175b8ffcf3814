//! A connected XMPP client: one task owns the stream; the application sends through a
//! [`Client`] handle and receives [`Event`]s from a channel.
//!
//! Why the design holds up (the tokio-xmpp lost-wakeup we avoid): the reader runs in its own
//! task and forwards complete elements over an mpsc channel; the owner task `select!`s only on
//! channels and timers, all of them cancel-safe, so no partially read element is ever lost
//! when another branch wins.
//!
//! Stream management (XEP-0198): incoming stanzas are counted and `<r/>` is answered with
//! `<a h='…'/>`; outgoing stanzas are kept until the server acknowledges them. Keepalive: a
//! whitespace ping after 60 s of silence, and the connection is declared dead when even the
//! `<r/>` that follows gets no answer.
//!
//! Reconnection: when the network fails, the owner task reconnects by itself, at once and
//! then with a doubling delay (1 s up to 60 s, with jitter). It first asks the server to
//! resume the session (XEP-0198 `<resume/>`): then nothing is lost, unacknowledged stanzas
//! are sent again and rooms stay joined. When the server cannot resume, a new session is
//! bound with the same resource, unacknowledged messages are sent again, requests in flight
//! fail, and [`Event::Online`] says `resumed: false` so the application announces its
//! presence and rejoins its rooms. Meanwhile sends are queued. Wrong credentials, a
//! `conflict` or a closed client end it for good ([`Event::Disconnected`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::io::WriteHalf;
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::mam;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::roster;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::XmppError;
use crate::sm::StreamManagement;
use crate::stream::{
    ConnectConfig, MAX_RECONNECT_DELAY, Negotiated, Resume, StreamReader, Top, negotiate,
    serialize, write_all,
};

const NS_SM: &str = "urn:xmpp:sm:3";
const NS_CLIENT: &str = "jabber:client";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_ROSTER: &str = "jabber:iq:roster";
const IQ_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_PING: Duration = Duration::from_secs(60);

/// What the server sent us.
#[derive(Debug)]
pub enum Event {
    Message(Message),
    Presence(Presence),
    /// Our contact list changed (a roster push from our server, already acknowledged): the
    /// items as they are now; `subscription='remove'` means removed. Servers push only to
    /// sessions that fetched the roster ([`Client::roster`]) first.
    Roster(Vec<roster::Item>),
    /// A Jingle request (a call's session, XEP-0166) from another device: the application
    /// answers it (`JingleRequest::ack` or an error) with [`Client::send`].
    Jingle(Box<crate::call::JingleRequest>),
    /// The connection dropped; the client is reconnecting by itself and queues what is sent
    /// meanwhile.
    Offline(XmppError),
    /// A reconnection attempt failed; the next one is in `retry_in`.
    Retrying {
        attempt: u32,
        error: XmppError,
        retry_in: Duration,
    },
    /// Connected again. `resumed`: the server kept the session, so nothing was lost and rooms
    /// are still joined. Otherwise this is a new session: send presence and rejoin rooms.
    Online {
        resumed: bool,
    },
    /// The client stopped for good: closed by us, or a failure that reconnecting cannot fix
    /// (wrong credentials, another client took our resource, reconnection turned off).
    Disconnected(XmppError),
}

enum Command {
    Send(Element, oneshot::Sender<Result<(), XmppError>>),
    Iq(Box<Iq>, Waiter),
    Close(oneshot::Sender<()>),
}

/// One page of an archive query (XEP-0313): the messages, oldest first, and the `<fin/>`.
#[derive(Debug)]
pub struct ArchivePage {
    pub messages: Vec<mam::Result_>,
    pub fin: mam::Fin,
}

/// Who waits for an iq answer.
enum Waiter {
    Iq(oneshot::Sender<Result<Iq, XmppError>>),
    /// An archive query: the `<result/>` messages carrying `queryid` are collected until the
    /// iq answer, which comes after them (XEP-0313 §4.3).
    Archive {
        queryid: String,
        /// The archive asked: a room, or our own (`None`). Results from anyone else are fakes.
        archive: Option<BareJid>,
        results: Vec<mam::Result_>,
        done: oneshot::Sender<Result<ArchivePage, XmppError>>,
    },
}

impl Waiter {
    fn fail(self, e: XmppError) {
        match self {
            Waiter::Iq(done) => {
                let _ = done.send(Err(e));
            }
            Waiter::Archive { done, .. } => {
                let _ = done.send(Err(e));
            }
        }
    }
}

/// An iq sent, its answer to come.
pub struct PendingIq(oneshot::Receiver<Result<Iq, XmppError>>);

impl PendingIq {
    /// The `result` or `error` (30 s at most).
    pub async fn answer(self) -> Result<Iq, XmppError> {
        tokio::time::timeout(IQ_TIMEOUT, self.0)
            .await
            .map_err(|_| XmppError::Timeout("an iq answer".into()))?
            .map_err(|_| XmppError::Closed)?
    }
}

/// A handle on a connected client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    jid: Arc<Mutex<FullJid>>,
    /// The server enabled resumable stream management (XEP-0198) on the first connection.
    sm: bool,
}

impl Client {
    /// Connects, authenticates and binds; returns the handle and the event stream. Fails at
    /// once on wrong credentials ([`XmppError::Auth`]); later failures are reported as events
    /// and, if `config.reconnect`, repaired by reconnecting.
    pub async fn connect(
        config: ConnectConfig,
    ) -> Result<(Client, mpsc::Receiver<Event>), XmppError> {
        let negotiated = negotiate(&config, None).await?;
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let jid = Arc::new(Mutex::new(negotiated.jid.clone()));
        let sm = negotiated.sm.as_ref().is_some_and(|s| s.id.is_some());
        let mut owner = Owner {
            cfg: config,
            jid: jid.clone(),
            commands: rx,
            events: events_tx,
            pending: HashMap::new(),
            sm: StreamManagement::default(),
            next_id: 0,
            awaiting_ack: false,
            outbox: VecDeque::new(),
        };
        let conn = owner.adopt(negotiated);
        tokio::spawn(owner.run(conn));
        Ok((Client { tx, jid, sm }, events_rx))
    }

    /// The full JID the server bound us to.
    pub fn jid(&self) -> FullJid {
        match self.jid.lock() {
            Ok(j) => j.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the server enabled resumable stream management (XEP-0198).
    pub fn stream_management(&self) -> bool {
        self.sm
    }

    /// Sends a stanza (message, presence or iq); returns once it is written (or queued,
    /// while reconnecting).
    pub async fn send(&self, stanza: impl Into<Element>) -> Result<(), XmppError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Send(stanza.into(), tx))
            .await
            .map_err(|_| XmppError::Closed)?;
        rx.await.map_err(|_| XmppError::Closed)?
    }

    /// Sends an iq `get`/`set` and waits for its `result` or `error` (30 s at most). An id is
    /// assigned if the iq has none.
    pub async fn iq(&self, iq: Iq) -> Result<Iq, XmppError> {
        self.request(iq).await?.answer().await
    }

    /// Sends an iq `get`/`set` (queued in order with what is sent after it) and returns at
    /// once; its answer comes from [`PendingIq::answer`].
    pub async fn request(&self, iq: Iq) -> Result<PendingIq, XmppError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Iq(Box::new(iq), Waiter::Iq(tx)))
            .await
            .map_err(|_| XmppError::Closed)?;
        Ok(PendingIq(rx))
    }

    /// Asks an archive (our own with `to = None`, or a room's) for one page of messages
    /// (XEP-0313). The `<result/>` messages it sends are collected, not emitted as events.
    pub async fn archive_page(
        &self,
        to: Option<BareJid>,
        mut query: mam::Query,
    ) -> Result<ArchivePage, XmppError> {
        let queryid = format!("q{}", rand::random::<u64>());
        query.queryid = Some(mam::QueryId(queryid.clone()));
        let mut iq = Iq::from_set("", query);
        if let Some(to) = &to {
            iq = iq.with_to(Jid::from(to.clone()));
        }
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter::Archive {
            queryid,
            archive: to.clone(),
            results: Vec::new(),
            done: tx,
        };
        self.tx
            .send(Command::Iq(Box::new(iq), waiter))
            .await
            .map_err(|_| XmppError::Closed)?;
        tokio::time::timeout(IQ_TIMEOUT, rx)
            .await
            .map_err(|_| XmppError::Timeout("an archive answer".into()))?
            .map_err(|_| XmppError::Closed)?
    }

    /// Closes the stream cleanly (`</stream:stream>`).
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

async fn read_loop(mut reader: StreamReader, out: mpsc::Sender<Result<Top, XmppError>>) {
    loop {
        let item = reader.next().await;
        let stop = !matches!(item, Ok(Top::Element(_)));
        if out.send(item).await.is_err() || stop {
            return;
        }
    }
}

type Writer = WriteHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// One live connection: the write half and the reader task's output.
struct Conn {
    writer: Writer,
    elements: mpsc::Receiver<Result<Top, XmppError>>,
}

struct Owner {
    cfg: ConnectConfig,
    jid: Arc<Mutex<FullJid>>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    pending: HashMap<String, Waiter>,
    /// Stream management (XEP-0198) of the current session.
    sm: StreamManagement,
    next_id: u64,
    awaiting_ack: bool,
    /// Stanzas queued while offline, sent once connected again.
    outbox: VecDeque<Element>,
}

fn archive_answer(iq: Iq, messages: Vec<mam::Result_>) -> Result<ArchivePage, XmppError> {
    match iq {
        Iq::Result {
            payload: Some(p), ..
        } => mam::Fin::try_from(p)
            .map(|fin| ArchivePage { messages, fin })
            .map_err(|e| XmppError::Protocol(format!("bad archive answer: {e}"))),
        Iq::Error { error, .. } => Err(XmppError::Refused(format!(
            "archive query refused: {:?}",
            error.defined_condition
        ))),
        _ => Err(XmppError::Protocol("empty archive answer".into())),
    }
}

/// The node of our entity capabilities (XEP-0115): which software we are.
pub(crate) const CAPS_NODE: &str = "urn:spheres:client";

/// What we are and do (XEP-0030): a client that wants its contacts' posts pushed (XEP-0163),
/// and takes audio and video calls (Jingle RTP over ICE-UDP with DTLS-SRTP, rung with
/// XEP-0353): the features Conversations, Dino and Movim look for before offering a call.
pub(crate) fn disco_info(node: Option<String>) -> xmpp_parsers::disco::DiscoInfoResult {
    use xmpp_parsers::disco::{DiscoInfoResult, Identity};
    DiscoInfoResult {
        node,
        identities: vec![Identity {
            category: "client".into(),
            type_: "pc".into(),
            lang: None,
            name: Some("spheres".into()),
        }],
        features: [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            crate::feed::NOTIFY,
            crate::jingle::NS_JINGLE,
            crate::jingle::NS_RTP,
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:apps:rtp:video",
            crate::jingle::NS_ICE,
            crate::jingle::NS_DTLS,
            crate::jingle::NS_GROUPING,
            crate::jingle::NS_RTCP_FB,
            crate::jingle::NS_HDREXT,
            crate::jingle::NS_SSMA,
            crate::call::NS_JMI,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        extensions: Vec::new(),
    }
}

/// Our entity capabilities, for our presence: the hash of [`disco_info`].
pub(crate) fn caps() -> Option<xmpp_parsers::caps::Caps> {
    use xmpp_parsers::caps::{Caps, compute_disco, hash_caps};
    let hash = hash_caps(
        &compute_disco(&disco_info(None)),
        xmpp_parsers::hashes::Algo::Sha_1,
    );
    hash.ok().map(|h| Caps::new(CAPS_NODE, h))
}

/// The answer to a disco#info request (for us, or for our caps node `CAPS_NODE#ver`, as
/// servers ask to learn our `+notify` features); `None` for any other request.
fn disco_answer(request: &Iq) -> Option<Iq> {
    let Iq::Get {
        from, id, payload, ..
    } = request
    else {
        return None;
    };
    let query = xmpp_parsers::disco::DiscoInfoQuery::try_from(payload.clone()).ok()?;
    Some(Iq::Result {
        from: None,
        to: from.clone(),
        id: id.clone(),
        payload: Some(disco_info(query.node).into()),
    })
}

/// The answer to a request we do not serve: `service-unavailable` (RFC 6120 §8.2.3, and what
/// XEP-0030 says a client without the feature answers).
fn unsupported(request: &Iq) -> Iq {
    let (to, id) = match request {
        Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => (from.clone(), id.clone()),
        Iq::Result { from, id, .. } | Iq::Error { from, id, .. } => (from.clone(), id.clone()),
    };
    Iq::Error {
        from: None,
        to,
        id,
        error: StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            "en",
            "not supported",
        ),
        payload: None,
    }
}

fn is_stanza(el: &Element) -> bool {
    el.ns() == NS_CLIENT && matches!(el.name(), "message" | "presence" | "iq")
}

/// The wait before reconnection attempt `n` (0 = at once), with ±25% jitter.
fn backoff(first: Duration, n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let base = first
        .saturating_mul(1u32 << (n - 1).min(16))
        .min(MAX_RECONNECT_DELAY);
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    base.mul_f64(jitter)
}

impl Owner {
    async fn run(mut self, mut conn: Conn) {
        let reason = loop {
            let reason = self.serve(&mut conn).await;
            if matches!(reason, XmppError::Closed) || !reason.is_transient() || !self.cfg.reconnect
            {
                break reason;
            }
            tracing::info!(error = %reason, "XMPP connection lost; reconnecting");
            self.emit(Event::Offline(reason)).await;
            match self.reconnect().await {
                Ok(c) => conn = c,
                Err(e) => break e,
            }
        };
        for (_, waiter) in self.pending.drain() {
            waiter.fail(XmppError::Closed);
        }
        if !matches!(reason, XmppError::Closed) {
            tracing::info!(error = %reason, "XMPP client stopped");
        }
        let _ = self.events.send(Event::Disconnected(reason)).await;
    }

    /// Runs one connection until it ends; returns why.
    async fn serve(&mut self, conn: &mut Conn) -> XmppError {
        loop {
            let idle = tokio::time::sleep(IDLE_PING);
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Send(el, done)) => {
                        let r = self.write_stanza(&mut conn.writer, el).await;
                        let failed = r.is_err();
                        let _ = done.send(r);
                        if failed { return XmppError::Disconnected("write failed".into()); }
                    }
                    Some(Command::Iq(iq, done)) => {
                        let (iq, id) = self.with_id(*iq);
                        self.pending.insert(id, done);
                        if self.write_stanza(&mut conn.writer, Element::from(iq)).await.is_err() {
                            return XmppError::Disconnected("write failed".into());
                        }
                    }
                    Some(Command::Close(done)) => {
                        let _ = write_all(&mut conn.writer, b"</stream:stream>").await;
                        let _ = done.send(());
                        return XmppError::Closed;
                    }
                    None => {
                        let _ = write_all(&mut conn.writer, b"</stream:stream>").await;
                        return XmppError::Closed;
                    }
                },
                item = conn.elements.recv() => match item {
                    Some(Ok(Top::Element(el))) => {
                        if let Err(e) = self.handle(&mut conn.writer, el).await { return e; }
                    }
                    Some(Ok(Top::End)) => return XmppError::Disconnected("the server closed the stream".into()),
                    Some(Err(e)) => return e,
                    None => return XmppError::Disconnected("reader stopped".into()),
                },
                _ = idle => {
                    if self.awaiting_ack {
                        return XmppError::Timeout("the server stopped answering".into());
                    }
                    // A ping the server must answer when SM is on; a keepalive otherwise.
                    let ping: &[u8] = if self.sm.enabled { b"<r xmlns='urn:xmpp:sm:3'/>" } else { b" " };
                    if write_all(&mut conn.writer, ping).await.is_err() {
                        return XmppError::Disconnected("write failed".into());
                    }
                    self.awaiting_ack = self.sm.enabled;
                }
            }
        }
    }

    /// Reconnects with backoff, queueing commands meanwhile. Returns the new connection, or
    /// why it gave up.
    async fn reconnect(&mut self) -> Result<Conn, XmppError> {
        let mut attempt = 0u32;
        let mut delay = backoff(self.cfg.reconnect_delay, attempt);
        loop {
            let wait = tokio::time::sleep(delay);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(Command::Send(el, done)) => {
                            self.outbox.push_back(el);
                            let _ = done.send(Ok(()));
                        }
                        Some(Command::Iq(iq, done)) => {
                            let (iq, id) = self.with_id(*iq);
                            self.pending.insert(id, done);
                            self.outbox.push_back(Element::from(iq));
                        }
                        Some(Command::Close(done)) => {
                            let _ = done.send(());
                            return Err(XmppError::Closed);
                        }
                        None => return Err(XmppError::Closed),
                    }
                }
            }
            attempt += 1;
            let jid = self.current_jid();
            let resume = self.sm.id.clone().map(|id| Resume {
                id,
                h: self.sm.h(),
                jid: jid.clone(),
            });
            let mut cfg = self.cfg.clone();
            cfg.resource = Some(jid.resource().as_str().to_owned());
            match negotiate(&cfg, resume.as_ref()).await {
                Ok(n) => {
                    let resumed = n.resumed.is_some();
                    let mut conn = self.adopt(n);
                    if let Err(e) = self.flush_outbox(&mut conn.writer).await {
                        tracing::info!(error = %e, "connection lost again at once");
                        delay = backoff(self.cfg.reconnect_delay, attempt);
                        continue;
                    }
                    tracing::info!(resumed, attempt, "XMPP connection back");
                    self.emit(Event::Online { resumed }).await;
                    return Ok(conn);
                }
                Err(e) if e.is_transient() => {
                    tracing::info!(attempt, error = %e, "reconnection failed; will retry");
                    delay = backoff(self.cfg.reconnect_delay, attempt);
                    self.emit(Event::Retrying {
                        attempt,
                        error: e,
                        retry_in: delay,
                    })
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn current_jid(&self) -> FullJid {
        match self.jid.lock() {
            Ok(j) => j.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes over a freshly negotiated stream: starts its reader and reconciles the stream
    /// management state with what the server kept.
    fn adopt(&mut self, n: Negotiated) -> Conn {
        let Negotiated {
            reader,
            writer,
            jid,
            sm,
            resumed,
        } = n;
        let (elements_tx, elements_rx) = mpsc::channel(256);
        tokio::spawn(read_loop(reader, elements_tx));
        match self.jid.lock() {
            Ok(mut j) => *j = jid,
            Err(poisoned) => *poisoned.into_inner() = jid,
        }
        self.awaiting_ack = false;
        match resumed {
            Some(h) => {
                // The server has everything up to h; what follows is sent again.
                for el in self.sm.resumed(h).into_iter().rev() {
                    self.outbox.push_front(el);
                }
            }
            None => {
                let enabled = sm.is_some();
                let resend = self.sm.new_session(enabled, sm.and_then(|s| s.id));
                // Requests in flight are lost with the old session.
                let queued: HashSet<String> = self
                    .outbox
                    .iter()
                    .filter(|el| el.name() == "iq")
                    .filter_map(|el| el.attr("id").map(str::to_owned))
                    .collect();
                let lost: Vec<String> = self
                    .pending
                    .keys()
                    .filter(|id| !queued.contains(*id))
                    .cloned()
                    .collect();
                for id in lost {
                    if let Some(w) = self.pending.remove(&id) {
                        w.fail(XmppError::Disconnected(
                            "the session was lost before the answer came".into(),
                        ));
                    }
                }
                for el in resend.into_iter().rev() {
                    self.outbox.push_front(el);
                }
            }
        }
        Conn {
            writer,
            elements: elements_rx,
        }
    }

    async fn flush_outbox(&mut self, writer: &mut Writer) -> Result<(), XmppError> {
        while let Some(el) = self.outbox.pop_front() {
            self.write_stanza(writer, el).await?;
        }
        Ok(())
    }

    fn with_id(&mut self, iq: Iq) -> (Iq, String) {
        let id = iq.id().to_owned();
        if !id.is_empty() {
            return (iq, id);
        }
        self.next_id += 1;
        let id = format!("spheres-{}-{}", self.next_id, rand::random::<u32>());
        (iq.with_id(id.clone()), id)
    }

    async fn write_stanza(&mut self, writer: &mut Writer, el: Element) -> Result<(), XmppError> {
        // Kept for sending again before it is written, so a failed write loses nothing.
        let ask = self.sm.sending(&el);
        write_all(writer, &serialize(&el)).await?;
        // Ask for an acknowledgement every few stanzas, so the queue stays short.
        if ask {
            write_all(writer, b"<r xmlns='urn:xmpp:sm:3'/>").await?;
        }
        Ok(())
    }

    async fn handle(&mut self, writer: &mut Writer, el: Element) -> Result<(), XmppError> {
        self.awaiting_ack = false;
        if el.has_ns(NS_SM) {
            match el.name() {
                "r" => {
                    let ack = format!("<a xmlns='{NS_SM}' h='{}'/>", self.sm.h());
                    write_all(writer, ack.as_bytes()).await?;
                }
                "a" => {
                    // Everything up to h is safe on the server (an ack without a number
                    // is ignored rather than taken for everything).
                    if let Some(h) = el.attr("h").and_then(|h| h.parse().ok()) {
                        self.sm.acknowledged(h);
                    }
                }
                other => tracing::debug!(element = other, "ignoring stream management element"),
            }
            return Ok(());
        }
        if el.is("error", crate::stream::NS_STREAM) {
            let condition = el
                .children()
                .next()
                .map(|c| c.name().to_owned())
                .unwrap_or_default();
            let message = format!("stream error from the server: {condition}");
            // Reconnecting would only fight the other session, or fail the same way.
            return Err(match condition.as_str() {
                "conflict" | "not-authorized" | "policy-violation" => XmppError::Refused(message),
                _ => XmppError::Disconnected(message),
            });
        }
        if !is_stanza(&el) {
            tracing::debug!(
                name = el.name(),
                ns = el.ns(),
                "ignoring unknown top-level element"
            );
            return Ok(());
        }
        self.sm.received();
        match el.name() {
            "message" => match Message::try_from(el) {
                Ok(m) => {
                    if let Some(m) = self.collect_archived(m) {
                        self.emit(Event::Message(m)).await;
                    }
                }
                Err(e) => tracing::info!(error = %e, "ignoring a malformed message"),
            },
            "presence" => match Presence::try_from(el) {
                Ok(p) => self.emit(Event::Presence(p)).await,
                Err(e) => tracing::info!(error = %e, "ignoring a malformed presence"),
            },
            _ => match Iq::try_from(el) {
                Ok(iq @ (Iq::Result { .. } | Iq::Error { .. })) => {
                    match self.pending.remove(iq.id()) {
                        Some(Waiter::Iq(done)) => {
                            let _ = done.send(Ok(iq));
                        }
                        Some(Waiter::Archive { results, done, .. }) => {
                            let _ = done.send(archive_answer(iq, results));
                        }
                        None => tracing::debug!(id = iq.id(), "answer to an iq we did not send"),
                    }
                }
                Ok(request) => {
                    if let Some(items) = self.roster_push(writer, &request).await? {
                        self.emit(Event::Roster(items)).await;
                    } else if let Some(jingle) = crate::call::JingleRequest::from_iq(&request) {
                        self.emit(Event::Jingle(Box::new(jingle))).await;
                    } else if let Some(answer) = disco_answer(&request) {
                        self.write_stanza(writer, Element::from(answer)).await?;
                    } else {
                        // Requests we do not serve get an error, as RFC 6120 wants.
                        let answer = unsupported(&request);
                        self.write_stanza(writer, Element::from(answer)).await?;
                    }
                }
                Err(e) => tracing::info!(error = %e, "ignoring a malformed iq"),
            },
        }
        Ok(())
    }

    /// A roster push (RFC 6121 §2.1.6) from our own server: acknowledged here, and its items
    /// returned. `None` for any other request. Pushes from anyone else are not ours to trust.
    async fn roster_push(
        &mut self,
        writer: &mut Writer,
        iq: &Iq,
    ) -> Result<Option<Vec<roster::Item>>, XmppError> {
        let Iq::Set {
            from, id, payload, ..
        } = iq
        else {
            return Ok(None);
        };
        if !payload.is("query", NS_ROSTER) {
            return Ok(None);
        }
        let me = self.current_jid().to_bare();
        if from.as_ref().is_some_and(|f| f.to_bare() != me) {
            tracing::info!(from = ?from, "ignoring a roster push from someone else");
            return Ok(None);
        }
        let items = match roster::Roster::try_from(payload.clone()) {
            Ok(r) => r.items,
            Err(e) => {
                tracing::info!(error = %e, "ignoring a malformed roster push");
                return Ok(None);
            }
        };
        let ack = Iq::empty_result(Jid::from(me), id.clone());
        self.write_stanza(writer, Element::from(ack)).await?;
        Ok(Some(items))
    }

    /// Keeps an archive result for the query waiting for it; gives the message back when it
    /// is not one.
    fn collect_archived(&mut self, m: Message) -> Option<Message> {
        let Some(el) = m.payloads.iter().find(|p| p.is("result", NS_MAM)) else {
            return Some(m);
        };
        let Some(qid) = el.attr("queryid") else {
            return Some(m);
        };
        let me = self.current_jid().to_bare();
        let from = m.from.as_ref().map(|f| f.to_bare());
        let slot = self.pending.values_mut().find_map(|w| match w {
            Waiter::Archive {
                queryid,
                archive,
                results,
                ..
            } if queryid == qid => {
                let genuine = match archive {
                    Some(room) => from.as_ref() == Some(room),
                    None => from.is_none() || from.as_ref() == Some(&me),
                };
                genuine.then_some(results)
            }
            _ => None,
        });
        let Some(results) = slot else {
            tracing::debug!(queryid = qid, "archive result for no query of ours");
            return None;
        };
        match mam::Result_::try_from(el.clone()) {
            Ok(r) => results.push(r),
            Err(e) => tracing::info!(error = %e, "ignoring a malformed archive result"),
        }
        None
    }

    async fn emit(&mut self, ev: Event) {
        // If the application stopped listening, events are dropped; the stream stays up for
        // sending (a send-only client is legitimate).
        let _ = self.events.send(ev).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At once first, then the first delay doubling, never past the cap, always within the
    /// ±25 % jitter.
    #[test]
    fn reconnection_waits_grow_and_stay_bounded() {
        let first = Duration::from_secs(1);
        assert_eq!(backoff(first, 0), Duration::ZERO);
        for n in 1..40u32 {
            let base = first
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(MAX_RECONNECT_DELAY);
            for _ in 0..20 {
                let wait = backoff(first, n);
                assert!(
                    wait >= base.mul_f64(0.75) && wait <= base.mul_f64(1.25),
                    "attempt {n}: {wait:?} vs {base:?}"
                );
            }
        }
        assert!(backoff(first, 39) <= MAX_RECONNECT_DELAY.mul_f64(1.25));
    }

    /// A disco#info request is answered with what we do, for our caps node too; the hash
    /// in our presence is the hash of that answer (or servers would ask again and again).
    #[test]
    fn disco_is_answered_and_caps_hash_it() {
        use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
        let caps = caps().unwrap();
        use base64::Engine;
        let ver = base64::engine::general_purpose::STANDARD.encode(&caps.ver);
        let node = format!("{CAPS_NODE}#{ver}");
        let request = Iq::from_get(
            "d1",
            DiscoInfoQuery {
                node: Some(node.clone()),
            },
        )
        .with_from(Jid::new("home.test").unwrap());
        let Some(Iq::Result {
            to,
            id,
            payload: Some(p),
            ..
        }) = disco_answer(&request)
        else {
            panic!("no answer");
        };
        assert_eq!(
            (to, id.as_str()),
            (Some(Jid::new("home.test").unwrap()), "d1")
        );
        let info = DiscoInfoResult::try_from(p).unwrap();
        assert_eq!(info.node.as_deref(), Some(node.as_str()));
        assert!(info.features.contains(crate::feed::NOTIFY));
        for calls in [
            crate::jingle::NS_RTP,
            crate::jingle::NS_ICE,
            crate::call::NS_JMI,
        ] {
            assert!(info.features.iter().any(|f| f == calls), "{calls}");
        }
        let again = xmpp_parsers::caps::hash_caps(
            &xmpp_parsers::caps::compute_disco(&DiscoInfoResult { node: None, ..info }),
            xmpp_parsers::hashes::Algo::Sha_1,
        )
        .unwrap();
        assert_eq!(again.hash, caps.ver);
        // Anything else is not a disco request.
        let other = Iq::from_get(
            "r1",
            xmpp_parsers::roster::Roster {
                ver: None,
                items: vec![],
            },
        );
        assert!(disco_answer(&other).is_none());
    }

    /// A request we do not serve is answered `service-unavailable`, to its sender, same id.
    #[test]
    fn requests_we_do_not_serve_get_an_error() {
        let request = Iq::from_get("q1", xmpp_parsers::ping::Ping)
            .with_from(Jid::new("bob@home.test/phone").unwrap());
        match unsupported(&request) {
            Iq::Error { to, id, error, .. } => {
                assert_eq!(to, Some(Jid::new("bob@home.test/phone").unwrap()));
                assert_eq!(id, "q1");
                assert_eq!(
                    error.defined_condition,
                    DefinedCondition::ServiceUnavailable
                );
                assert_eq!(error.type_, ErrorType::Cancel);
            }
            other => panic!("not an error: {other:?}"),
        }
    }
}
