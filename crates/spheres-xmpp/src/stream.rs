//! The XMPP stream, written by us (docs/decisions/0004-own-xmpp-stream.md): TCP, StartTLS or
//! direct TLS (XEP-0368) with rustls, SASL (SCRAM-SHA-256, SCRAM-SHA-1, with -PLUS over
//! tls-exporter when offered; PLAIN only as a last resort, and only ever over TLS), resource
//! binding, and stream management (XEP-0198) negotiation.
//!
//! Reading: one rxml parser per stream (restarted after TLS and SASL); each top-level child
//! becomes a `minidom::Element`, which always matches, so an unknown or malformed element
//! costs only itself. Nothing here panics on what the server sends.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jid::{BareJid, FullJid};
use minidom::Element;
use rxml::xml_lang::XmlLangStack;
use rxml::{AsyncReader, Event};
use sasl::client::Mechanism as _;
use sasl::client::mechanisms::{Plain, Scram};
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::sasl::{Auth, Mechanism, Response};
use xmpp_parsers::stream_features::StreamFeatures;
use xso::FromEventsBuilder;

use crate::XmppError;

pub(crate) const NS_STREAM: &str = "http://etherx.jabber.org/streams";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SM: &str = "urn:xmpp:sm:3";

/// How to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP, then `<starttls/>` (RFC 6120; the usual port 5222).
    StartTls,
    /// TLS from the first byte (XEP-0368; the usual port 5223).
    Direct,
}

/// Everything needed to open an authenticated stream.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    pub jid: BareJid,
    pub password: String,
    /// Where to connect; `None` means the JID's domain on port 5222 (StartTLS).
    pub server: Option<SocketAddr>,
    pub tls: TlsMode,
    /// A CA to trust besides the system's (a household server's private CA).
    pub extra_ca: Option<PathBuf>,
    /// The resource to ask for; the server picks one when `None`.
    pub resource: Option<String>,
    /// Limit on each network step (connect, TLS, each answer).
    pub step_timeout: Duration,
    /// Reconnect by itself after a network failure (resuming the session when the server
    /// allows it). Wrong credentials are never retried.
    pub reconnect: bool,
    /// The wait before the second reconnection attempt (the first is immediate); it doubles
    /// at each failure, up to [`MAX_RECONNECT_DELAY`].
    pub reconnect_delay: Duration,
}

/// The longest wait between two reconnection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(60);

impl ConnectConfig {
    pub fn new(jid: BareJid, password: impl Into<String>) -> Self {
        ConnectConfig {
            jid,
            password: password.into(),
            server: None,
            tls: TlsMode::StartTls,
            extra_ca: None,
            resource: None,
            step_timeout: Duration::from_secs(20),
            reconnect: true,
            reconnect_delay: Duration::from_secs(1),
        }
    }
}

type Tls = TlsStream<TcpStream>;

/// The read half: a parser over the TLS stream's read side.
pub(crate) struct StreamReader<R = ReadHalf<Tls>> {
    reader: AsyncReader<BufReader<Bounded<R>>>,
    lang: XmlLangStack,
    /// Bytes read from the server, and where the stanza being read started.
    budget: Arc<Budget>,
}

/// The most a single stanza may take, in bytes (Prosody's own limit for clients is 256 KiB;
/// our announcements are under 64 KiB). A server that sends more is cut off, so a hostile or
/// broken one cannot make us buffer without end.
pub const MAX_STANZA: u64 = 1024 * 1024;

/// The deepest nesting of elements a stanza may have (ours need 5). Building an element
/// recurses once per level: a stanza nested a hundred thousand deep would overflow the stack
/// and abort the node.
pub const MAX_DEPTH: usize = 64;

#[derive(Default)]
struct Budget {
    read: std::sync::atomic::AtomicU64,
    stanza_start: std::sync::atomic::AtomicU64,
}

/// The server's bytes, counted: a read that takes the current stanza past [`MAX_STANZA`]
/// fails before the bytes reach the XML parser.
struct Bounded<R> {
    inner: R,
    budget: Arc<Budget>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Bounded<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::sync::atomic::Ordering::Relaxed;
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let got = (buf.filled().len() - before) as u64;
            let read = self.budget.read.fetch_add(got, Relaxed) + got;
            if read.saturating_sub(self.budget.stanza_start.load(Relaxed)) > MAX_STANZA {
                return std::task::Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server sent a stanza larger than {MAX_STANZA} bytes"),
                )));
            }
        }
        polled
    }
}

/// An authenticated, bound stream, ready to be split into a reader and a writer.
pub(crate) struct Negotiated {
    pub reader: StreamReader,
    pub writer: WriteHalf<Tls>,
    pub jid: FullJid,
    /// The server accepted `<enable resume='true'/>`; holds the id to resume with.
    pub sm: Option<SmState>,
    /// The previous session was resumed (XEP-0198): the server had received this many of
    /// our stanzas (`h`).
    pub resumed: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct SmState {
    pub id: Option<String>,
}

/// A previous session to resume instead of binding a new one.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    pub id: String,
    /// Stanzas we received in that session.
    pub h: u32,
    pub jid: FullJid,
}

/// What the reader saw at the top level.
pub(crate) enum Top {
    Element(Element),
    /// `</stream:stream>`: the server closed the stream.
    End,
}

fn invalid(msg: impl Into<String>) -> XmppError {
    XmppError::Protocol(msg.into())
}

/// What a failed read of the server's XML means: bad XML is the server's fault (not
/// retried), but the connection ending or being reset (a server restarting) is the
/// network's, and reconnection tries again. `when`: where in the stream, for the message.
fn read_error(e: io::Error, when: &str) -> XmppError {
    // The connection ending mid-document is a network failure, not bad XML.
    let cut = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rxml::Error>())
        .is_some_and(|x| matches!(x, rxml::Error::InvalidEof(_)));
    if cut {
        XmppError::Disconnected(format!(
            "the connection closed in the middle of the stream ({when})"
        ))
    } else if e.kind() == io::ErrorKind::InvalidData {
        invalid(format!("malformed XML {when}: {e}"))
    } else {
        XmppError::Io(e)
    }
}

impl<R: tokio::io::AsyncRead + Unpin> StreamReader<R> {
    fn new(io: R) -> Self {
        let budget = Arc::new(Budget::default());
        StreamReader {
            reader: AsyncReader::new(BufReader::new(Bounded {
                inner: io,
                budget: budget.clone(),
            })),
            lang: XmlLangStack::new(),
            budget,
        }
    }

    /// After a stream restart the server sends a new header: parse it as a new document.
    fn restart(&mut self) {
        *self.reader.parser_mut() = rxml::Parser::default();
        self.lang = XmlLangStack::new();
    }

    async fn next_event(&mut self) -> Result<Event, XmppError> {
        match self.reader.read().await {
            Ok(Some(ev)) => {
                self.lang.handle_event(&ev);
                Ok(ev)
            }
            Ok(None) => Err(XmppError::Disconnected(
                "the server closed the connection".into(),
            )),
            Err(e) => Err(read_error(e, "from the server")),
        }
    }

    /// Reads the server's `<stream:stream>` header; returns its `id`.
    async fn read_header(&mut self) -> Result<Option<String>, XmppError> {
        loop {
            match self.next_event().await? {
                Event::XmlDeclaration(..) => continue,
                Event::StartElement(_, (ns, name), attrs)
                    if ns.as_str() == NS_STREAM && name.as_str() == "stream" =>
                {
                    return Ok(attrs
                        .get(rxml::Namespace::none(), "id")
                        .map(|s| s.to_string()));
                }
                other => return Err(invalid(format!("expected a stream header, got {other:?}"))),
            }
        }
    }

    /// Reads the next top-level element. Whitespace between stanzas (keepalives) is skipped.
    pub async fn next(&mut self) -> Result<Top, XmppError> {
        {
            use std::sync::atomic::Ordering::Relaxed;
            let read = self.budget.read.load(Relaxed);
            self.budget.stanza_start.store(read, Relaxed);
        }
        self.reader.parser_mut().set_text_buffering(false);
        let mut builder = loop {
            match self.next_event().await? {
                Event::Text(_, t) if xso::is_xml_whitespace(t.as_bytes()) => continue,
                Event::StartElement(_, qname, attrs) => {
                    break xso::minidom_compat::ElementFromEvents::new(qname, attrs);
                }
                Event::EndElement(_) => return Ok(Top::End),
                other => return Err(invalid(format!("unexpected {other:?} between stanzas"))),
            }
        };
        self.reader.parser_mut().set_text_buffering(true);
        let mut depth = 1usize;
        loop {
            let ev = self.next_event().await?;
            match &ev {
                Event::StartElement(..) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(invalid(format!(
                            "the server sent a stanza nested deeper than {MAX_DEPTH} elements"
                        )));
                    }
                }
                Event::EndElement(_) => depth = depth.saturating_sub(1),
                _ => {}
            }
            let ctx = xso::Context::empty().with_language(self.lang.current());
            match builder.feed(ev, &ctx) {
                Ok(Some(el)) => return Ok(Top::Element(el)),
                Ok(None) => {}
                Err(e) => return Err(invalid(format!("cannot build an element: {e}"))),
            }
        }
    }

    pub(crate) async fn element(&mut self) -> Result<Element, XmppError> {
        match self.next().await? {
            Top::Element(e) => Ok(e),
            Top::End => Err(XmppError::Disconnected(
                "the server closed the stream".into(),
            )),
        }
    }
}

pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), XmppError> {
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
}

/// The stanza as bytes. A character XML 1.0 cannot carry (control characters, U+FFFE,
/// U+FFFF) anywhere in it, from whatever a person typed or a peer sent, becomes U+FFFD: the
/// XML writer would otherwise panic, and with it the connection.
pub(crate) fn serialize(el: &Element) -> Vec<u8> {
    if !has_bad_chars(el) {
        return String::from(el).into_bytes();
    }
    let mut clean = el.clone();
    scrub(&mut clean);
    String::from(&clean).into_bytes()
}

fn bad(s: &str) -> bool {
    s.chars().any(|c| !crate::protocol::is_xml_char(c))
}

fn has_bad_chars(el: &Element) -> bool {
    el.attrs().iter().any(|(_, v)| bad(v))
        || el.texts().any(bad)
        || el.children().any(has_bad_chars)
}

fn scrub(el: &mut Element) {
    for v in el.attrs_mut().values_mut() {
        if bad(v) {
            *v = crate::protocol::xml_safe(v);
        }
    }
    for t in el.texts_mut() {
        if bad(t) {
            *t = crate::protocol::xml_safe(t);
        }
    }
    for c in el.children_mut() {
        scrub(c);
    }
}

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' to='{domain}' version='1.0' xml:lang='en'>"
    )
}

async fn step<T>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, XmppError>>,
) -> Result<T, XmppError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| XmppError::Timeout(what.to_owned()))?
}

fn tls_config(extra_ca: Option<&PathBuf>) -> Result<Arc<rustls::ClientConfig>, XmppError> {
    spheres_net::tls::client_config(extra_ca.map(|p| p.as_path()))
        .map(Arc::new)
        .map_err(XmppError::Tls)
}

async fn tls_connect(
    tcp: TcpStream,
    domain: &str,
    extra_ca: Option<&PathBuf>,
) -> Result<Tls, XmppError> {
    let name = rustls::pki_types::ServerName::try_from(domain.to_owned())
        .map_err(|_| XmppError::Tls(format!("{domain} is not a valid server name")))?;
    TlsConnector::from(tls_config(extra_ca)?)
        .connect(name, tcp)
        .await
        .map_err(|e| XmppError::Tls(format!("TLS with {domain} failed: {e}")))
}

/// A TLS stream whose header and first features were read, before authentication.
pub(crate) struct Secured {
    pub reader: StreamReader,
    pub writer: WriteHalf<Tls>,
    pub features: StreamFeatures,
    /// RFC 9266 tls-exporter channel binding data (TLS 1.3 only).
    pub exporter: Option<Vec<u8>>,
}

/// Connects and secures the stream (StartTLS or direct TLS), up to the server's first
/// features over TLS.
pub(crate) async fn secure(cfg: &ConnectConfig) -> Result<Secured, XmppError> {
    let domain = cfg.jid.domain().as_str().to_owned();
    let limit = cfg.step_timeout;
    let addr = match cfg.server {
        Some(a) => a,
        None => {
            step(limit, "DNS", async {
                tokio::net::lookup_host((domain.as_str(), 5222))
                    .await?
                    .next()
                    .ok_or_else(|| XmppError::Disconnected(format!("{domain} has no address")))
            })
            .await?
        }
    };
    let mut tcp = step(limit, "connect", async {
        Ok(TcpStream::connect(addr).await?)
    })
    .await?;
    tcp.set_nodelay(true)?;

    if cfg.tls == TlsMode::StartTls {
        step(limit, "StartTLS", starttls(&mut tcp, &domain)).await?;
    }
    let tls = step(
        limit,
        "TLS handshake",
        tls_connect(tcp, &domain, cfg.extra_ca.as_ref()),
    )
    .await?;
    // tls-exporter channel binding (RFC 9266) exists only for TLS 1.3.
    let exporter = {
        let (_, conn) = tls.get_ref();
        if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
            conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
                .ok()
        } else {
            None
        }
    };
    let (rh, mut writer) = tokio::io::split(tls);
    let mut reader = StreamReader::new(rh);

    write_all(&mut writer, header(&domain).as_bytes()).await?;
    step(limit, "stream header", reader.read_header()).await?;
    let features = step(limit, "stream features", read_features(&mut reader)).await?;
    Ok(Secured {
        reader,
        writer,
        features,
        exporter,
    })
}

/// Connects, secures, authenticates and binds (or resumes `resume`). A wrong password is
/// reported at once as [`XmppError::Auth`], never retried.
pub(crate) async fn negotiate(
    cfg: &ConnectConfig,
    resume: Option<&Resume>,
) -> Result<Negotiated, XmppError> {
    let Secured {
        mut reader,
        mut writer,
        features,
        exporter,
    } = secure(cfg).await?;
    let (jid, sm, resumed) =
        after_tls(&mut reader, &mut writer, cfg, &features, exporter, resume).await?;
    Ok(Negotiated {
        reader,
        writer,
        jid,
        sm,
        resumed,
    })
}

/// What negotiation ends with: the bound (or resumed) JID, stream management when the server
/// enabled it, and for a resumed session the server's count of our stanzas.
type Session = (FullJid, Option<SmState>, Option<u32>);

/// Everything after TLS: authentication, the stream restart, then resumption of `resume`
/// when the server can, else binding a resource and enabling stream management. Generic over
/// the transport, so a scripted server tests it in memory.
async fn after_tls<R, W>(
    reader: &mut StreamReader<R>,
    writer: &mut W,
    cfg: &ConnectConfig,
    features: &StreamFeatures,
    exporter: Option<Vec<u8>>,
    resume: Option<&Resume>,
) -> Result<Session, XmppError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let domain = cfg.jid.domain().as_str().to_owned();
    let limit = cfg.step_timeout;
    step(
        limit,
        "authentication",
        authenticate(reader, writer, cfg, features, exporter),
    )
    .await?;

    reader.restart();
    write_all(writer, header(&domain).as_bytes()).await?;
    step(limit, "stream header", reader.read_header()).await?;
    let features = step(limit, "stream features", read_features(reader)).await?;

    if let Some(previous) = resume
        && features.stream_management.is_some()
    {
        let ask = format!(
            "<resume xmlns='{NS_SM}' h='{}' previd='{}'/>",
            previous.h,
            xml_escape(&previous.id)
        );
        write_all(writer, ask.as_bytes()).await?;
        let el = step(limit, "stream resumption", reader.element()).await?;
        if el.is("resumed", NS_SM) {
            let h = el
                .attr("h")
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| invalid("<resumed/> without a valid h"))?;
            let sm = SmState {
                id: Some(previous.id.clone()),
            };
            return Ok((previous.jid.clone(), Some(sm), Some(h)));
        }
        tracing::info!("the server could not resume the session; starting a new one");
    }

    let bind = Iq::from_set("bind-1", BindQuery::new(cfg.resource.clone()));
    write_all(writer, &serialize(&Element::from(bind))).await?;
    let jid = step(limit, "resource binding", async {
        loop {
            let el = reader.element().await?;
            if let Ok(iq) = Iq::try_from(el)
                && iq.id() == "bind-1"
            {
                return match iq {
                    Iq::Result {
                        payload: Some(p), ..
                    } => BindResponse::try_from(p)
                        .map(FullJid::from)
                        .map_err(|e| invalid(format!("bad bind answer: {e}"))),
                    Iq::Error { error, .. } => Err(XmppError::Refused(format!(
                        "binding refused: {:?}",
                        error.defined_condition
                    ))),
                    _ => Err(invalid("empty bind answer")),
                };
            }
        }
    })
    .await?;

    let mut sm = None;
    if features.stream_management.is_some() {
        write_all(
            writer,
            format!("<enable xmlns='{NS_SM}' resume='true'/>").as_bytes(),
        )
        .await?;
        let el = step(limit, "stream management", reader.element()).await?;
        if el.is("enabled", NS_SM) {
            sm = Some(SmState {
                id: el.attr("id").map(str::to_owned),
            });
        } else {
            tracing::info!("the server refused stream management; going on without it");
        }
    }
    Ok((jid, sm, None))
}

/// Escapes a string for an XML attribute in single quotes.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

async fn read_features<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut StreamReader<R>,
) -> Result<StreamFeatures, XmppError> {
    let el = reader.element().await?;
    StreamFeatures::try_from(el).map_err(|e| invalid(format!("bad stream features: {e}")))
}

/// Plain-text phase: header, features, `<starttls/>`, `<proceed/>`, with a parser over the
/// bare TCP socket that is dropped before the TLS handshake (the server sends nothing after
/// `<proceed/>` until the handshake, so no buffered byte is lost).
async fn starttls(tcp: &mut TcpStream, domain: &str) -> Result<(), XmppError> {
    tcp.write_all(header(domain).as_bytes()).await?;
    let mut reader = AsyncReader::new(BufReader::new(&mut *tcp));
    let mut seen_header = false;
    let mut depth = 0usize;
    let mut offered = false;
    let mut sent = false;
    loop {
        let ev = match reader.read().await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                return Err(XmppError::Disconnected(
                    "the server closed the connection before TLS".into(),
                ));
            }
            Err(e) => return Err(read_error(e, "before TLS")),
        };
        match ev {
            Event::XmlDeclaration(..) => {}
            Event::StartElement(_, (ns, name), _) => {
                if !seen_header {
                    if ns.as_str() != NS_STREAM || name.as_str() != "stream" {
                        return Err(invalid("expected a stream header"));
                    }
                    seen_header = true;
                    continue;
                }
                depth += 1;
                if depth == 2 && ns.as_str() == NS_TLS && name.as_str() == "starttls" {
                    offered = true;
                }
                if depth == 1 && ns.as_str() == NS_TLS && name.as_str() == "proceed" {
                    // Nothing may follow until the handshake: the buffered reader is dropped here.
                    return Ok(());
                }
                if depth == 1 && ns.as_str() == NS_TLS && name.as_str() == "failure" {
                    return Err(XmppError::Tls("the server refused StartTLS".into()));
                }
            }
            Event::EndElement(_) => {
                if depth == 0 {
                    return Err(XmppError::Disconnected(
                        "the server closed the stream before TLS".into(),
                    ));
                }
                depth -= 1;
                if depth == 0 && !sent {
                    // End of <stream:features>.
                    if !offered {
                        return Err(XmppError::Tls(
                            "the server does not offer TLS; spheres never sends credentials in the clear".into(),
                        ));
                    }
                    reader
                        .inner_mut()
                        .get_mut()
                        .write_all(format!("<starttls xmlns='{NS_TLS}'/>").as_bytes())
                        .await?;
                    sent = true;
                }
            }
            Event::Text(..) => {}
        }
    }
}

/// What we tell the server about channel binding (RFC 5802 §6).
#[derive(Debug, PartialEq)]
enum Binding {
    /// `p=tls-exporter`: bound to this TLS connection.
    Exporter,
    /// `n`: the server binds, we cannot in a way it offers (said honestly, or a
    /// downgrade-aware server refuses us).
    No,
    /// `y`: we could bind, the server offers no binding.
    NotSupported,
}

/// The strongest SASL mechanism both sides have, and the binding that goes with it: the
/// SCRAM-PLUS ones when TLS 1.3 gives us exporter data and the server offers `tls-exporter`,
/// then SCRAM without binding, PLAIN last (only ever reached over TLS: every stream we open is
/// encrypted before this point).
fn choose_mechanism<'a>(
    offered: &std::collections::BTreeSet<String>,
    cb_types: &[String],
    have_exporter: bool,
) -> Result<(&'a str, Binding), XmppError> {
    let can_plus = have_exporter && cb_types.iter().any(|t| t.contains("exporter"));
    let preference: [(&'a str, bool); 5] = [
        ("SCRAM-SHA-256-PLUS", can_plus),
        ("SCRAM-SHA-1-PLUS", can_plus),
        ("SCRAM-SHA-256", true),
        ("SCRAM-SHA-1", true),
        ("PLAIN", true),
    ];
    let Some(chosen) = preference
        .iter()
        .find(|(name, usable)| *usable && offered.contains(*name))
        .map(|(name, _)| *name)
    else {
        return Err(XmppError::Auth(format!(
            "the server offers no mechanism we support ({})",
            offered.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    let binding = if chosen.ends_with("-PLUS") {
        Binding::Exporter
    } else if offered.iter().any(|m| m.ends_with("-PLUS")) {
        Binding::No
    } else {
        Binding::NotSupported
    };
    Ok((chosen, binding))
}

async fn authenticate<R: tokio::io::AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut StreamReader<R>,
    writer: &mut W,
    cfg: &ConnectConfig,
    features: &StreamFeatures,
    exporter: Option<Vec<u8>>,
) -> Result<(), XmppError> {
    let offered = &features.sasl_mechanisms;
    let cb_types: Vec<String> = features
        .sasl_cb
        .as_ref()
        .map(|cb| {
            cb.types
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let (chosen, bind) = choose_mechanism(offered, &cb_types, exporter.is_some())?;
    let binding = match (bind, &exporter) {
        (Binding::Exporter, Some(data)) => ChannelBinding::TlsExporter(data.clone()),
        (Binding::Exporter | Binding::No, _) => ChannelBinding::None,
        (Binding::NotSupported, _) => ChannelBinding::Unsupported,
    };
    let user = cfg
        .jid
        .node()
        .map(|n| n.as_str().to_owned())
        .ok_or_else(|| XmppError::Config(format!("{} has no user part", cfg.jid)))?;
    let creds = Credentials::default()
        .with_username(user.clone())
        .with_password(cfg.password.clone())
        .with_channel_binding(binding);
    let config_err = |e: sasl::client::MechanismError| XmppError::Config(format!("{e:?}"));
    let mut mech: Box<dyn sasl::client::Mechanism + Send> = match chosen {
        "SCRAM-SHA-256-PLUS" | "SCRAM-SHA-256" => {
            Box::new(Scram::<Sha256>::from_credentials(creds).map_err(config_err)?)
        }
        "SCRAM-SHA-1-PLUS" | "SCRAM-SHA-1" => {
            Box::new(Scram::<Sha1>::from_credentials(creds).map_err(config_err)?)
        }
        _ => Box::new(Plain::new(user, cfg.password.clone())),
    };
    let mechanism: Mechanism = mech
        .name()
        .parse()
        .map_err(|_| XmppError::Config(format!("unknown mechanism {}", mech.name())))?;
    tracing::debug!(mechanism = mech.name(), "authenticating");
    let auth = Auth {
        mechanism,
        data: mech.initial(),
    };
    write_all(writer, &serialize(&Element::from(auth))).await?;
    loop {
        let el = reader.element().await?;
        if !el.has_ns(NS_SASL) {
            return Err(invalid(format!(
                "unexpected <{}> during authentication",
                el.name()
            )));
        }
        match el.name() {
            "challenge" => {
                let c = xmpp_parsers::sasl::Challenge::try_from(el)
                    .map_err(|e| invalid(e.to_string()))?;
                let data = mech.response(&c.data).map_err(|e| {
                    XmppError::Auth(format!("bad challenge from the server: {e:?}"))
                })?;
                write_all(writer, &serialize(&Element::from(Response { data }))).await?;
            }
            "success" => {
                let s = xmpp_parsers::sasl::Success::try_from(el)
                    .map_err(|e| invalid(e.to_string()))?;
                // Verifies the server's signature: a server that does not know the password
                // (a man in the middle) fails here.
                mech.success(&s.data).map_err(|e| {
                    XmppError::Auth(format!(
                        "the server could not prove it knows the password: {e:?}"
                    ))
                })?;
                return Ok(());
            }
            "failure" => {
                let f = xmpp_parsers::sasl::Failure::try_from(el)
                    .map_err(|e| invalid(e.to_string()))?;
                let text = f.texts.values().next().cloned().unwrap_or_default();
                return Err(XmppError::Auth(match f.defined_condition {
                    xmpp_parsers::sasl::DefinedCondition::NotAuthorized => {
                        format!("wrong user name or password for {}", cfg.jid)
                    }
                    other => format!("authentication refused ({other:?}) {text}"),
                }));
            }
            other => {
                return Err(invalid(format!(
                    "unexpected <{other}> during authentication"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// What a person types or a peer sends may hold characters XML cannot carry; the stanza
    /// still goes out (with U+FFFD in their place) instead of panicking the writer.
    #[test]
    fn characters_xml_cannot_carry_go_out_replaced() {
        let mut body = Element::builder("body", "jabber:client")
            .append("hello \u{1}\u{ffff} world")
            .build();
        body.set_attr(rxml::Namespace::NONE, a!("id"), "a\u{fffe}b");
        let mut message = Element::builder("message", "jabber:client").build();
        message.append_child(body);
        let out = String::from_utf8(serialize(&message)).unwrap();
        assert!(out.contains("hello \u{fffd}\u{fffd} world"), "{out}");
        assert!(out.contains("a\u{fffd}b"), "{out}");
        let back: Element = out.parse().unwrap();
        assert!(back.children().next().unwrap().text().starts_with("hello"));
        // Nothing to change: the same bytes as before.
        let plain = Element::builder("message", "jabber:client")
            .append("ok")
            .build();
        assert_eq!(serialize(&plain), String::from(&plain).into_bytes());
    }

    /// A server restarting resets a connection before TLS: that is the network, and the
    /// client tries again (it used to take it for bad XML and give up for good).
    #[tokio::test]
    async fn a_reset_before_tls_is_retried_and_bad_xml_is_not() {
        for (answer, transient) in [(None, true), (Some(&b"<not a stream"[..]), false)] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut header = [0u8; 16];
                s.read_exact(&mut header).await.unwrap();
                match answer {
                    Some(bytes) => {
                        s.write_all(bytes).await.unwrap();
                        s.write_all(b">").await.unwrap();
                        // Kept open until the client has read it.
                        let _ = s.read(&mut header).await;
                    }
                    // Closed at once with a reset (linger 0), as a server killed mid-way.
                    None => s.set_zero_linger().unwrap(),
                }
            });
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let err = starttls(&mut tcp, "example.test").await.unwrap_err();
            assert_eq!(err.is_transient(), transient, "{err}");
            drop(tcp);
            server.await.unwrap();
        }
    }

    /// Attack: a hostile server sends a stanza nested a hundred thousand deep. It is refused
    /// at MAX_DEPTH, without recursing that deep; a normal stanza after a normal one reads.
    #[tokio::test]
    async fn a_deeply_nested_stanza_is_refused() {
        let mut xml = String::from(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        xml.push_str("<message><body>hi</body></message>");
        for _ in 0..100_000 {
            xml.push_str("<a>");
        }
        let mut r = StreamReader::new(xml.as_bytes());
        r.read_header().await.unwrap();
        assert!(matches!(r.next().await, Ok(Top::Element(_))));
        let err = r.next().await.err().expect("refused");
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    /// Attack: a hostile server sends one endless stanza. Reading stops with an error once the
    /// stanza passes MAX_STANZA, before the XML parser buffers it; a new stanza starts afresh.
    #[tokio::test]
    async fn an_endless_stanza_is_cut_off() {
        let budget = Arc::new(Budget::default());
        let endless = vec![b'a'; (MAX_STANZA as usize) * 2];
        let mut r = Bounded {
            inner: &endless[..],
            budget: budget.clone(),
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let err = loop {
            match r.read(&mut buf).await {
                Ok(0) => panic!("read {total} bytes without a stop"),
                Ok(n) => total += n as u64,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(total <= MAX_STANZA, "{total}");
        // The next stanza has its own budget.
        let read = budget.read.load(std::sync::atomic::Ordering::Relaxed);
        budget
            .stanza_start
            .store(read, std::sync::atomic::Ordering::Relaxed);
        assert!(r.read(&mut buf).await.is_ok());
    }

    fn offered(names: &[&str]) -> std::collections::BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// The strongest mechanism both have; bound to TLS when we can; honest about binding when
    /// we cannot (a server that offers -PLUS and hears "y" may think it was downgraded).
    #[test]
    fn the_strongest_mechanism_is_chosen_and_binding_is_told_honestly() {
        let all = offered(&[
            "PLAIN",
            "SCRAM-SHA-1",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-256",
            "SCRAM-SHA-256-PLUS",
        ]);
        let exporter = ["tls-exporter".to_string()];
        assert_eq!(
            choose_mechanism(&all, &exporter, true).unwrap(),
            ("SCRAM-SHA-256-PLUS", Binding::Exporter)
        );
        // TLS 1.2 (no exporter data), or the server binds only with tls-unique: "n".
        assert_eq!(
            choose_mechanism(&all, &exporter, false).unwrap(),
            ("SCRAM-SHA-256", Binding::No)
        );
        assert_eq!(
            choose_mechanism(&all, &["tls-unique".into()], true).unwrap(),
            ("SCRAM-SHA-256", Binding::No)
        );
        // No binding offered at all: "y".
        assert_eq!(
            choose_mechanism(&offered(&["SCRAM-SHA-1", "PLAIN"]), &[], true).unwrap(),
            ("SCRAM-SHA-1", Binding::NotSupported)
        );
        assert_eq!(
            choose_mechanism(&offered(&["PLAIN"]), &[], false).unwrap(),
            ("PLAIN", Binding::NotSupported)
        );
        let err = choose_mechanism(&offered(&["DIGEST-MD5", "X-OAUTH2"]), &[], true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no mechanism we support (DIGEST-MD5, X-OAUTH2)"),
            "{err}"
        );
    }

    /// A scripted server on the other end of an in-memory pipe: it reads what the client
    /// writes up to an expected piece, then answers. No network, no TLS.
    struct Script {
        io: tokio::io::DuplexStream,
        seen: String,
    }

    impl Script {
        /// Reads until the client has written `needle` (after what was matched before).
        async fn expect(&mut self, needle: &str) -> String {
            let mut buf = [0u8; 4096];
            loop {
                if let Some(i) = self.seen.find(needle) {
                    let upto = self.seen[..i + needle.len()].to_owned();
                    self.seen.drain(..i + needle.len());
                    return upto;
                }
                let n = tokio::io::AsyncReadExt::read(&mut self.io, &mut buf)
                    .await
                    .unwrap();
                assert!(
                    n > 0,
                    "the client closed before writing {needle:?}: {}",
                    self.seen
                );
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }

        /// Takes the client's `<auth/>` as good, then the restarted stream: header and the
        /// features of an authenticated stream. Returns the `<auth/>` it received.
        async fn authenticated(&mut self) -> String {
            let auth = self.expect("</auth>").await;
            self.say("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
                .await;
            self.expect("<stream:stream").await;
            self.expect(">").await;
            self.say(HEADER).await;
            self.say(FEATURES_AFTER_AUTH).await;
            auth
        }

        async fn say(&mut self, xml: &str) {
            tokio::io::AsyncWriteExt::write_all(&mut self.io, xml.as_bytes())
                .await
                .unwrap();
        }
    }

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' from='home.test' id='s2' version='1.0'>";
    const FEATURES_AFTER_AUTH: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
        <sm xmlns='urn:xmpp:sm:3'/></stream:features>";

    fn features(mechanisms: &[&str]) -> StreamFeatures {
        let xml = format!(
            "<features xmlns='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</mechanisms></features>",
            mechanisms
                .iter()
                .map(|m| format!("<mechanism>{m}</mechanism>"))
                .collect::<String>()
        );
        StreamFeatures::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    /// The client's side after TLS, over a pipe, and the server's script for it.
    fn pipe(
        password: &str,
    ) -> (
        StreamReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
        tokio::io::WriteHalf<tokio::io::DuplexStream>,
        ConnectConfig,
        Script,
    ) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (r, w) = tokio::io::split(client);
        let mut cfg = ConnectConfig::new(BareJid::new("alice@home.test").unwrap(), password);
        cfg.resource = Some("laptop".into());
        cfg.step_timeout = Duration::from_secs(10);
        let script = Script {
            io: server,
            seen: String::new(),
        };
        (StreamReader::new(r), w, cfg, script)
    }

    /// The whole sequence after TLS: PLAIN (the only mechanism offered), the stream restart,
    /// binding the asked resource, then stream management enabled with a resumable id.
    #[tokio::test]
    async fn a_new_session_authenticates_binds_and_enables_stream_management() {
        let (mut reader, mut writer, cfg, mut server) = pipe("secret");
        let script =
            tokio::spawn(async move {
                let auth = server.authenticated().await;
                // PLAIN is "\0alice\0secret" in base64.
                assert!(
                    auth.contains("mechanism='PLAIN'") || auth.contains("mechanism=\"PLAIN\""),
                    "{auth}"
                );
                assert!(auth.contains("AGFsaWNlAHNlY3JldA=="), "{auth}");
                let bind = server.expect("</iq>").await;
                assert!(bind.contains("<resource>laptop</resource>"), "{bind}");
                server
                .say("<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                      <jid>alice@home.test/laptop</jid></bind></iq>")
                .await;
                let enable = server.expect("/>").await;
                assert!(
                    enable.contains("<enable") && enable.contains("resume='true'"),
                    "{enable}"
                );
                server
                    .say("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>")
                    .await;
            });
        let (jid, sm, resumed) = after_tls(
            &mut reader,
            &mut writer,
            &cfg,
            &features(&["PLAIN"]),
            None,
            None,
        )
        .await
        .unwrap();
        script.await.unwrap();
        assert_eq!(jid.to_string(), "alice@home.test/laptop");
        assert_eq!(sm.and_then(|s| s.id).as_deref(), Some("sm-1"));
        assert_eq!(resumed, None);
    }

    /// A previous session is resumed when the server can: no binding, the old JID kept, and
    /// the server's count of our stanzas returned; when it cannot, a new session is bound.
    #[tokio::test]
    async fn a_session_is_resumed_when_the_server_can_and_bound_anew_when_not() {
        let previous = Resume {
            id: "sm-1".into(),
            h: 7,
            jid: "alice@home.test/laptop".parse().unwrap(),
        };
        for server_can in [true, false] {
            let (mut reader, mut writer, cfg, mut server) = pipe("secret");
            let script = tokio::spawn(async move {
                server.authenticated().await;
                let ask = server.expect("/>").await;
                assert!(
                    ask.contains("<resume")
                        && ask.contains("h='7'")
                        && ask.contains("previd='sm-1'"),
                    "{ask}"
                );
                if server_can {
                    server
                        .say("<resumed xmlns='urn:xmpp:sm:3' h='5' previd='sm-1'/>")
                        .await;
                    return;
                }
                server.say("<failed xmlns='urn:xmpp:sm:3'/>").await;
                server.expect("</iq>").await;
                server
                    .say("<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                          <jid>alice@home.test/laptop-2</jid></bind></iq>")
                    .await;
                server.expect("/>").await;
                server
                    .say("<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>")
                    .await;
            });
            let (jid, sm, resumed) = after_tls(
                &mut reader,
                &mut writer,
                &cfg,
                &features(&["PLAIN"]),
                None,
                Some(&previous),
            )
            .await
            .unwrap();
            script.await.unwrap();
            if server_can {
                assert_eq!(jid.to_string(), "alice@home.test/laptop");
                assert_eq!(resumed, Some(5));
                assert_eq!(sm.and_then(|s| s.id).as_deref(), Some("sm-1"));
            } else {
                assert_eq!(jid.to_string(), "alice@home.test/laptop-2");
                assert_eq!(resumed, None);
                assert_eq!(sm.and_then(|s| s.id).as_deref(), Some("sm-2"));
            }
        }
    }

    /// A wrong password is an authentication error at once (never retried by the client); a
    /// binding the server refuses is said as such.
    #[tokio::test]
    async fn a_wrong_password_and_a_refused_binding_are_said() {
        let (mut reader, mut writer, cfg, mut server) = pipe("wrong");
        let script = tokio::spawn(async move {
            server.expect("</auth>").await;
            server
                .say(
                    "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
                )
                .await;
        });
        let err = after_tls(
            &mut reader,
            &mut writer,
            &cfg,
            &features(&["PLAIN"]),
            None,
            None,
        )
        .await
        .unwrap_err();
        script.await.unwrap();
        assert!(matches!(err, XmppError::Auth(_)), "{err:?}");
        assert!(
            err.to_string().contains("wrong user name or password"),
            "{err}"
        );

        let (mut reader, mut writer, cfg, mut server) = pipe("secret");
        let script = tokio::spawn(async move {
            server.authenticated().await;
            server.expect("</iq>").await;
            server
                .say(
                    "<iq type='error' id='bind-1'><error type='cancel'>\
                      <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                )
                .await;
        });
        let err = after_tls(
            &mut reader,
            &mut writer,
            &cfg,
            &features(&["PLAIN"]),
            None,
            None,
        )
        .await
        .unwrap_err();
        script.await.unwrap();
        assert!(matches!(err, XmppError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("binding refused"), "{err}");
    }
}
