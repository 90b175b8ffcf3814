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

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jid::FullJid;
use minidom::Element;
use tokio::io::WriteHalf;
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;

use crate::XmppError;
use crate::stream::{
    ConnectConfig, Negotiated, StreamReader, Top, negotiate, serialize, write_all,
};

const NS_SM: &str = "urn:xmpp:sm:3";
const NS_CLIENT: &str = "jabber:client";
const IQ_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_PING: Duration = Duration::from_secs(60);

/// What the server sent us.
#[derive(Debug)]
pub enum Event {
    Message(Message),
    Presence(Presence),
    /// A request (`get`/`set`) addressed to us. Answer it with [`Client::send`]; unanswered
    /// requests are the application's bug, as RFC 6120 requires an answer.
    Iq(Iq),
    /// The stream ended; the client is unusable (reconnection is the caller's choice).
    Disconnected(XmppError),
}

enum Command {
    Send(Element, oneshot::Sender<Result<(), XmppError>>),
    Iq(Box<Iq>, oneshot::Sender<Result<Iq, XmppError>>),
    Close(oneshot::Sender<()>),
}

/// A handle on a connected client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    jid: FullJid,
    /// The XEP-0198 stream id when the server enabled resumable stream management.
    sm_id: Option<String>,
}

impl Client {
    /// Connects, authenticates and binds; returns the handle and the event stream. Fails at
    /// once on wrong credentials ([`XmppError::Auth`]).
    pub async fn connect(
        config: ConnectConfig,
    ) -> Result<(Client, mpsc::Receiver<Event>), XmppError> {
        let Negotiated {
            reader,
            writer,
            jid,
            sm,
        } = negotiate(&config).await?;
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (elements_tx, elements_rx) = mpsc::channel(256);
        tokio::spawn(read_loop(reader, elements_tx));
        let owner = Owner {
            writer,
            commands: rx,
            elements: elements_rx,
            events: events_tx,
            pending: HashMap::new(),
            sm: sm.is_some(),
            inbound: 0,
            unacked: VecDeque::new(),
            outbound: 0,
            next_id: 0,
            awaiting_ack: false,
        };
        tokio::spawn(owner.run());
        let sm_id = sm.and_then(|s| s.id);
        Ok((Client { tx, jid, sm_id }, events_rx))
    }

    /// The full JID the server bound us to.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// Whether the server enabled resumable stream management (XEP-0198).
    pub fn stream_management(&self) -> bool {
        self.sm_id.is_some()
    }

    /// Sends a stanza (message, presence or iq); returns once it is written.
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
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Iq(Box::new(iq), tx))
            .await
            .map_err(|_| XmppError::Closed)?;
        tokio::time::timeout(IQ_TIMEOUT, rx)
            .await
            .map_err(|_| XmppError::Timeout("an iq answer".into()))?
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

struct Owner {
    writer: Writer,
    commands: mpsc::Receiver<Command>,
    elements: mpsc::Receiver<Result<Top, XmppError>>,
    events: mpsc::Sender<Event>,
    pending: HashMap<String, oneshot::Sender<Result<Iq, XmppError>>>,
    sm: bool,
    /// Stanzas received (XEP-0198 `h`).
    inbound: u32,
    /// Stanzas sent and not yet acknowledged, oldest first.
    unacked: VecDeque<Element>,
    /// Stanzas sent in total.
    outbound: u32,
    next_id: u64,
    awaiting_ack: bool,
}

fn is_stanza(el: &Element) -> bool {
    el.ns() == NS_CLIENT && matches!(el.name(), "message" | "presence" | "iq")
}

impl Owner {
    async fn run(mut self) {
        let reason = loop {
            let idle = tokio::time::sleep(IDLE_PING);
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Send(el, done)) => {
                        let r = self.write_stanza(el).await;
                        let failed = r.is_err();
                        let _ = done.send(r);
                        if failed { break XmppError::Disconnected("write failed".into()); }
                    }
                    Some(Command::Iq(iq, done)) => {
                        let (iq, id) = self.with_id(*iq);
                        match self.write_stanza(Element::from(iq)).await {
                            Ok(()) => { self.pending.insert(id, done); }
                            Err(e) => { let _ = done.send(Err(e)); break XmppError::Disconnected("write failed".into()); }
                        }
                    }
                    Some(Command::Close(done)) => {
                        let _ = write_all(&mut self.writer, b"</stream:stream>").await;
                        let _ = done.send(());
                        break XmppError::Closed;
                    }
                    None => {
                        let _ = write_all(&mut self.writer, b"</stream:stream>").await;
                        break XmppError::Closed;
                    }
                },
                item = self.elements.recv() => match item {
                    Some(Ok(Top::Element(el))) => {
                        if let Err(e) = self.handle(el).await { break e; }
                    }
                    Some(Ok(Top::End)) => break XmppError::Disconnected("the server closed the stream".into()),
                    Some(Err(e)) => break e,
                    None => break XmppError::Disconnected("reader stopped".into()),
                },
                _ = idle => {
                    if self.awaiting_ack {
                        break XmppError::Timeout("the server stopped answering".into());
                    }
                    // A ping the server must answer when SM is on; a keepalive otherwise.
                    let ping: &[u8] = if self.sm { b"<r xmlns='urn:xmpp:sm:3'/>" } else { b" " };
                    if write_all(&mut self.writer, ping).await.is_err() {
                        break XmppError::Disconnected("write failed".into());
                    }
                    self.awaiting_ack = self.sm;
                }
            }
        };
        for (_, waiter) in self.pending.drain() {
            let _ = waiter.send(Err(XmppError::Closed));
        }
        if !matches!(reason, XmppError::Closed) {
            tracing::info!(error = %reason, "XMPP stream ended");
        }
        let _ = self.events.send(Event::Disconnected(reason)).await;
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

    async fn write_stanza(&mut self, el: Element) -> Result<(), XmppError> {
        write_all(&mut self.writer, &serialize(&el)).await?;
        if self.sm {
            self.outbound = self.outbound.wrapping_add(1);
            self.unacked.push_back(el);
            // Ask for an acknowledgement every few stanzas, so the queue stays short.
            if self.unacked.len().is_multiple_of(8) {
                write_all(&mut self.writer, b"<r xmlns='urn:xmpp:sm:3'/>").await?;
            }
        }
        Ok(())
    }

    async fn handle(&mut self, el: Element) -> Result<(), XmppError> {
        self.awaiting_ack = false;
        if el.has_ns(NS_SM) {
            match el.name() {
                "r" => {
                    let ack = format!("<a xmlns='{NS_SM}' h='{}'/>", self.inbound);
                    write_all(&mut self.writer, ack.as_bytes()).await?;
                }
                "a" => {
                    let h: u32 = el
                        .attr("h")
                        .and_then(|h| h.parse().ok())
                        .unwrap_or(self.outbound);
                    // Everything up to h is safe on the server.
                    let unacked = self.outbound.wrapping_sub(h) as usize;
                    while self.unacked.len() > unacked {
                        self.unacked.pop_front();
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
            return Err(XmppError::Disconnected(format!(
                "stream error from the server: {condition}"
            )));
        }
        if !is_stanza(&el) {
            tracing::debug!(
                name = el.name(),
                ns = el.ns(),
                "ignoring unknown top-level element"
            );
            return Ok(());
        }
        self.inbound = self.inbound.wrapping_add(1);
        match el.name() {
            "message" => match Message::try_from(el) {
                Ok(m) => self.emit(Event::Message(m)).await,
                Err(e) => tracing::info!(error = %e, "ignoring a malformed message"),
            },
            "presence" => match Presence::try_from(el) {
                Ok(p) => self.emit(Event::Presence(p)).await,
                Err(e) => tracing::info!(error = %e, "ignoring a malformed presence"),
            },
            _ => match Iq::try_from(el) {
                Ok(iq @ (Iq::Result { .. } | Iq::Error { .. })) => {
                    match self.pending.remove(iq.id()) {
                        Some(waiter) => {
                            let _ = waiter.send(Ok(iq));
                        }
                        None => tracing::debug!(id = iq.id(), "answer to an iq we did not send"),
                    }
                }
                Ok(request) => self.emit(Event::Iq(request)).await,
                Err(e) => tracing::info!(error = %e, "ignoring a malformed iq"),
            },
        }
        Ok(())
    }

    async fn emit(&mut self, ev: Event) {
        // If the application stopped listening, events are dropped; the stream stays up for
        // sending (a send-only client is legitimate).
        let _ = self.events.send(ev).await;
    }
}
