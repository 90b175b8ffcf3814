//! WebRTC's SDP and Jingle RTP sessions, one from the other (issue 17). Pure: text and XML in,
//! text and XML out, no I/O.
//!
//! A browser describes a call in SDP (JSEP offers and answers, candidates trickled one by one);
//! XMPP clients (Conversations, Dino, Gajim, Movim) describe it in Jingle: XEP-0166 sessions
//! whose contents carry an RTP description (XEP-0167: payload types with their parameters,
//! XEP-0293 RTCP feedback, XEP-0294 header extensions, XEP-0339 sources), an ICE-UDP transport
//! (XEP-0176: ufrag, password, candidates) with a DTLS fingerprint (XEP-0320), and a bundle
//! group (XEP-0338). The node passes one to the other. What it reads is bounded (sizes and
//! counts below) and checked (numbers, addresses, names), so a peer's stanza or a page's SDP
//! gives an error, never a panic; what it writes, a browser's SDP parser reads back (tested
//! with Mozilla's `webrtc-sdp`, Firefox's).
//!
//! Directions: SDP says what its author sends and receives; Jingle's `senders` names roles
//! (`initiator`, `responder`). [`Role`] says whose description it is.

use std::fmt::Write as _;
use std::net::IpAddr;

use minidom::Element;

pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
pub const NS_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
pub const NS_ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";
pub const NS_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
pub const NS_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
pub const NS_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
pub const NS_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
pub const NS_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";

/// The longest SDP read, in bytes (a browser's video offer is 5 to 10 KiB).
pub const MAX_SDP: usize = 64 * 1024;
/// Media sections (contents) in one session.
pub const MAX_MEDIA: usize = 16;
/// Payload types, header extensions, sources or candidates in one media section.
pub const MAX_ITEMS: usize = 128;
/// Parameters or feedback lines of one payload type, or attributes of one source.
pub const MAX_PARAMS: usize = 32;
/// The longest single value (a name, a parameter, a fingerprint, a ufrag...).
const MAX_VALUE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JingleError {
    #[error("the session description is too long (over {MAX_SDP} bytes)")]
    TooLong,
    #[error("too many {0} in the session description")]
    TooMany(&'static str),
    #[error("line {line} of the session description: {why}")]
    Sdp { line: usize, why: String },
    #[error("the Jingle description is not one: {0}")]
    Jingle(String),
}

fn sdp_err(line: usize, why: impl Into<String>) -> JingleError {
    JingleError::Sdp {
        line,
        why: why.into(),
    }
}

fn bad(why: impl Into<String>) -> JingleError {
    JingleError::Jingle(why.into())
}

/// Whose description this is, for Jingle's `senders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

/// What the author of a media section sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn sdp(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Jingle's `senders`, for a description by `by`.
    fn senders(self, by: Role) -> &'static str {
        match (self, by) {
            (Direction::SendRecv, _) => "both",
            (Direction::Inactive, _) => "none",
            (Direction::SendOnly, Role::Initiator) | (Direction::RecvOnly, Role::Responder) => {
                "initiator"
            }
            (Direction::SendOnly, Role::Responder) | (Direction::RecvOnly, Role::Initiator) => {
                "responder"
            }
        }
    }

    fn from_senders(senders: &str, by: Role) -> Result<Direction, JingleError> {
        Ok(match (senders, by) {
            ("both", _) => Direction::SendRecv,
            ("none", _) => Direction::Inactive,
            ("initiator", Role::Initiator) | ("responder", Role::Responder) => Direction::SendOnly,
            ("initiator", Role::Responder) | ("responder", Role::Initiator) => Direction::RecvOnly,
            (other, _) => return Err(bad(format!("senders={other:?}"))),
        })
    }
}

/// A session: its media sections, and the mids bundled on one transport (in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub bundle: Vec<String>,
    pub media: Vec<Media>,
}

/// One media section (`m=` line; a Jingle content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio` or `video`.
    pub kind: String,
    pub mid: String,
    pub direction: Direction,
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// The DTLS fingerprint: hash name (`sha-256`) and value (colon-separated hex, upper
    /// case).
    pub fingerprint: Option<(String, String)>,
    /// The DTLS role: `actpass`, `active` or `passive`.
    pub setup: Option<String>,
    pub payloads: Vec<Payload>,
    /// `a=extmap`: id and URI.
    pub extmaps: Vec<(u16, String)>,
    pub rtcp_mux: bool,
    pub rtcp_rsize: bool,
    /// `a=ssrc`: source id and its attributes (`cname`, `msid`...).
    pub sources: Vec<(u32, Vec<(String, String)>)>,
    /// `a=ssrc-group`: semantics (`FID`, `SIM`) and sources.
    pub source_groups: Vec<(String, Vec<u32>)>,
    pub candidates: Vec<Candidate>,
}

/// A payload type (`a=rtpmap`, `a=fmtp`, `a=rtcp-fb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub id: u8,
    pub name: String,
    pub clockrate: u32,
    /// Audio channels (1 unless said).
    pub channels: u32,
    /// `a=fmtp` parameters, in order (`key=value`; a bare value has an empty name).
    pub params: Vec<(String, String)>,
    /// `a=rtcp-fb`: type and subtype (`nack`, `pli`; `ccm`, `fir`; `transport-cc`, ``).
    pub feedback: Vec<(String, String)>,
}

/// An ICE candidate (RFC 8839's `candidate-attribute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub foundation: String,
    pub component: u8,
    /// `udp` or `tcp`.
    pub protocol: String,
    pub priority: u32,
    pub ip: IpAddr,
    pub port: u16,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub typ: String,
    pub related: Option<(IpAddr, u16)>,
    pub generation: u32,
    /// `active`, `passive` or `so` for TCP candidates.
    pub tcptype: Option<String>,
}

// ---------- SDP ----------

/// A token of SDP: no space or control character, not too long.
fn token(v: &str, line: usize, what: &str) -> Result<String, JingleError> {
    if v.is_empty()
        || v.len() > MAX_VALUE
        || v.chars()
            .any(|c| c.is_whitespace() || !crate::protocol::is_xml_char(c))
    {
        return Err(sdp_err(line, format!("a bad {what}: {v:?}")));
    }
    Ok(v.to_owned())
}

/// A token that SDP writes inside a larger field (a codec, a parameter's or a source
/// attribute's name): no `/`, `;`, `=` or `:` either.
fn sdp_name(v: &str, line: usize, what: &str) -> Result<String, JingleError> {
    let v = token(v, line, what)?;
    if v.contains(['/', ';', '=', ':']) {
        return Err(sdp_err(line, format!("a bad {what}: {v:?}")));
    }
    Ok(v)
}

fn number<T: std::str::FromStr>(v: &str, line: usize, what: &str) -> Result<T, JingleError> {
    v.parse()
        .map_err(|_| sdp_err(line, format!("{what} is not a number: {v:?}")))
}

fn push_bounded<T>(v: &mut Vec<T>, item: T, what: &'static str) -> Result<(), JingleError> {
    if v.len() >= MAX_ITEMS {
        return Err(JingleError::TooMany(what));
    }
    v.push(item);
    Ok(())
}

impl Candidate {
    /// Reads `candidate:…` (with or without `a=`), as trickled by a browser.
    pub fn parse_sdp(text: &str, line: usize) -> Result<Candidate, JingleError> {
        let text = text.trim_end_matches(['\r', '\n']);
        let text = text.strip_prefix("a=").unwrap_or(text);
        let rest = text
            .strip_prefix("candidate:")
            .ok_or_else(|| sdp_err(line, "not a candidate"))?;
        if rest.len() > 2 * MAX_VALUE {
            return Err(sdp_err(line, "a candidate line too long"));
        }
        let f: Vec<&str> = rest.split(' ').collect();
        if f.len() < 8 || f.len() > 8 + 2 * 8 || f[6] != "typ" {
            return Err(sdp_err(
                line,
                "a candidate is foundation component protocol priority address port typ type ...",
            ));
        }
        let protocol = f[2].to_ascii_lowercase();
        if protocol != "udp" && protocol != "tcp" {
            return Err(sdp_err(line, format!("candidate protocol {protocol:?}")));
        }
        let typ = f[7].to_owned();
        if !["host", "srflx", "prflx", "relay"].contains(&typ.as_str()) {
            return Err(sdp_err(line, format!("candidate type {typ:?}")));
        }
        let mut c = Candidate {
            foundation: token(f[0], line, "foundation")?,
            component: number(f[1], line, "the component")?,
            protocol,
            priority: number(f[3], line, "the priority")?,
            ip: number(f[4], line, "the address")?,
            port: number(f[5], line, "the port")?,
            typ,
            related: None,
            generation: 0,
            tcptype: None,
        };
        let (mut raddr, mut rport) = (None, None);
        for pair in f[8..].chunks(2) {
            let [k, v] = pair else {
                return Err(sdp_err(line, "a candidate's extension without a value"));
            };
            match *k {
                "raddr" => raddr = Some(number::<IpAddr>(v, line, "raddr")?),
                "rport" => rport = Some(number::<u16>(v, line, "rport")?),
                "generation" => c.generation = number(v, line, "the generation")?,
                "tcptype" => c.tcptype = Some(token(v, line, "tcptype")?),
                // ufrag, network-id, network-cost...: the transport says them.
                _ => {}
            }
        }
        if let (Some(a), Some(p)) = (raddr, rport) {
            c.related = Some((a, p));
        }
        Ok(c)
    }

    /// `candidate:…` (no `a=`), as a browser's `RTCIceCandidate` takes it.
    pub fn to_sdp(&self) -> String {
        let mut s = format!(
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.protocol,
            self.priority,
            self.ip,
            self.port,
            self.typ
        );
        if let Some((a, p)) = self.related {
            let _ = write!(s, " raddr {a} rport {p}");
        }
        if let Some(t) = &self.tcptype {
            let _ = write!(s, " tcptype {t}");
        }
        let _ = write!(s, " generation {}", self.generation);
        s
    }
}

fn new_media(kind: &str, line: usize) -> Result<Media, JingleError> {
    if kind != "audio" && kind != "video" {
        return Err(sdp_err(
            line,
            format!("{kind:?} media: only audio and video are calls"),
        ));
    }
    Ok(Media {
        kind: kind.to_owned(),
        mid: String::new(),
        direction: Direction::SendRecv,
        ufrag: None,
        pwd: None,
        fingerprint: None,
        setup: None,
        payloads: Vec::new(),
        extmaps: Vec::new(),
        rtcp_mux: false,
        rtcp_rsize: false,
        sources: Vec::new(),
        source_groups: Vec::new(),
        candidates: Vec::new(),
    })
}

impl Session {
    /// Reads a browser's SDP (an offer or an answer). Attributes this mapping does not carry
    /// are skipped; what it carries is checked.
    pub fn parse_sdp(text: &str) -> Result<Session, JingleError> {
        if text.len() > MAX_SDP {
            return Err(JingleError::TooLong);
        }
        let mut session = Session::default();
        // Session-level ICE and DTLS values apply to every media section without its own.
        let (mut ufrag, mut pwd, mut fingerprint, mut setup) = (None, None, None, None);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim_end_matches('\r');
            if raw.is_empty() {
                continue;
            }
            let (k, v) = raw
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| sdp_err(line, "not a type=value line"))?;
            if k == "m" {
                if session.media.len() >= MAX_MEDIA {
                    return Err(JingleError::TooMany("media sections"));
                }
                let mut f = v.split(' ');
                let kind = f.next().unwrap_or_default();
                let mut m = new_media(kind, line)?;
                // Port 0: a section the other side rejected, which Jingle would carry as a
                // content removed (not yet).
                if f.next() == Some("0") {
                    return Err(sdp_err(
                        line,
                        "a rejected media section (port 0) is not carried yet",
                    ));
                }
                // The formats name the payload types, in order of preference.
                for pt in f.skip(1).filter(|t| !t.is_empty()) {
                    let id = number::<u8>(pt, line, "a payload type")?;
                    if m.payloads.iter().any(|p| p.id == id) {
                        return Err(sdp_err(line, format!("payload type {id} twice")));
                    }
                    push_bounded(
                        &mut m.payloads,
                        Payload {
                            id,
                            name: String::new(),
                            clockrate: 0,
                            channels: 1,
                            params: Vec::new(),
                            feedback: Vec::new(),
                        },
                        "payload types",
                    )?;
                }
                session.media.push(m);
                continue;
            }
            if k != "a" {
                continue;
            }
            let (name, value) = v.split_once(':').unwrap_or((v, ""));
            let Some(m) = session.media.last_mut() else {
                match name {
                    "group" => {
                        let mut f = value.split(' ');
                        if f.next() == Some("BUNDLE") {
                            for mid in f.filter(|s| !s.is_empty()) {
                                push_bounded(
                                    &mut session.bundle,
                                    token(mid, line, "mid")?,
                                    "bundled mids",
                                )?;
                            }
                        }
                    }
                    "ice-ufrag" => ufrag = Some(token(value, line, "ufrag")?),
                    "ice-pwd" => pwd = Some(token(value, line, "password")?),
                    "fingerprint" => fingerprint = Some(parse_fingerprint(value, line)?),
                    "setup" => setup = Some(parse_setup(value, line)?),
                    _ => {}
                }
                continue;
            };
            media_attribute(m, name, value, line)?;
        }
        let mut mids = std::collections::HashSet::new();
        for m in &mut session.media {
            if m.mid.is_empty() {
                return Err(sdp_err(0, format!("a {} section without a mid", m.kind)));
            }
            if !mids.insert(m.mid.clone()) {
                return Err(sdp_err(0, format!("mid {:?} twice", m.mid)));
            }
            m.ufrag = m.ufrag.take().or_else(|| ufrag.clone());
            m.pwd = m.pwd.take().or_else(|| pwd.clone());
            m.fingerprint = m.fingerprint.take().or_else(|| fingerprint.clone());
            m.setup = m.setup.take().or_else(|| setup.clone());
            // DTLS's role means nothing without its fingerprint (and Jingle says both at once).
            if m.fingerprint.is_none() {
                m.setup = None;
            }
            // A payload type named in m= but never mapped is one we cannot describe.
            m.payloads.retain(|p| !p.name.is_empty());
        }
        // What is read may spread (`a=rtcp-fb:*` to every payload type, session values to
        // every section): what it makes is bounded as what is read.
        if session.to_sdp().len() > MAX_SDP {
            return Err(JingleError::TooLong);
        }
        Ok(session)
    }

    /// The SDP a browser takes (`setRemoteDescription`).
    pub fn to_sdp(&self) -> String {
        let mut s = String::from("v=0\r\no=- 0 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
        if !self.bundle.is_empty() {
            let _ = write!(s, "a=group:BUNDLE {}\r\n", self.bundle.join(" "));
        }
        s.push_str("a=msid-semantic: WMS *\r\n");
        for m in &self.media {
            let ids: Vec<String> = m.payloads.iter().map(|p| p.id.to_string()).collect();
            let _ = write!(
                s,
                "m={} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n",
                m.kind,
                ids.join(" ")
            );
            if let Some(u) = &m.ufrag {
                let _ = write!(s, "a=ice-ufrag:{u}\r\n");
            }
            if let Some(p) = &m.pwd {
                let _ = write!(s, "a=ice-pwd:{p}\r\n");
            }
            if let Some((hash, value)) = &m.fingerprint {
                let _ = write!(s, "a=fingerprint:{hash} {value}\r\n");
            }
            if let Some(setup) = &m.setup {
                let _ = write!(s, "a=setup:{setup}\r\n");
            }
            let _ = write!(s, "a=mid:{}\r\n", m.mid);
            for (id, uri) in &m.extmaps {
                let _ = write!(s, "a=extmap:{id} {uri}\r\n");
            }
            let _ = write!(s, "a={}\r\n", m.direction.sdp());
            if m.rtcp_mux {
                s.push_str("a=rtcp-mux\r\n");
            }
            if m.rtcp_rsize {
                s.push_str("a=rtcp-rsize\r\n");
            }
            for p in &m.payloads {
                let _ = write!(s, "a=rtpmap:{} {}/{}", p.id, p.name, p.clockrate);
                if p.channels > 1 {
                    let _ = write!(s, "/{}", p.channels);
                }
                s.push_str("\r\n");
                for (t, sub) in &p.feedback {
                    let _ = write!(s, "a=rtcp-fb:{} {t}", p.id);
                    if !sub.is_empty() {
                        let _ = write!(s, " {sub}");
                    }
                    s.push_str("\r\n");
                }
                if !p.params.is_empty() {
                    let params: Vec<String> = p
                        .params
                        .iter()
                        .map(|(k, v)| {
                            if k.is_empty() {
                                v.clone()
                            } else {
                                format!("{k}={v}")
                            }
                        })
                        .collect();
                    let _ = write!(s, "a=fmtp:{} {}\r\n", p.id, params.join(";"));
                }
            }
            for (semantics, ids) in &m.source_groups {
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                let _ = write!(s, "a=ssrc-group:{semantics} {}\r\n", ids.join(" "));
            }
            for (id, attrs) in &m.sources {
                for (k, v) in attrs {
                    let _ = write!(s, "a=ssrc:{id} {k}:{v}\r\n");
                }
            }
            for c in &m.candidates {
                let _ = write!(s, "a={}\r\n", c.to_sdp());
            }
        }
        s
    }
}

fn parse_fingerprint(value: &str, line: usize) -> Result<(String, String), JingleError> {
    let (hash, fp) = value
        .split_once(' ')
        .ok_or_else(|| sdp_err(line, "a fingerprint is a hash name and a value"))?;
    let hash = token(&hash.to_ascii_lowercase(), line, "hash name")?;
    let fp = fp.trim().to_ascii_uppercase();
    if fp.is_empty()
        || fp.len() > 3 * 64
        || !fp
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(sdp_err(
            line,
            "a fingerprint's value is hex bytes separated by colons",
        ));
    }
    Ok((hash, fp))
}

fn parse_setup(value: &str, line: usize) -> Result<String, JingleError> {
    match value {
        "actpass" | "active" | "passive" => Ok(value.to_owned()),
        other => Err(sdp_err(line, format!("setup {other:?}"))),
    }
}

fn payload_mut(m: &mut Media, id: u8, line: usize) -> Result<&mut Payload, JingleError> {
    m.payloads
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| sdp_err(line, format!("payload type {id} is not in the m= line")))
}

fn media_attribute(m: &mut Media, name: &str, value: &str, line: usize) -> Result<(), JingleError> {
    match name {
        "mid" => m.mid = token(value, line, "mid")?,
        "sendrecv" => m.direction = Direction::SendRecv,
        "sendonly" => m.direction = Direction::SendOnly,
        "recvonly" => m.direction = Direction::RecvOnly,
        "inactive" => m.direction = Direction::Inactive,
        "ice-ufrag" => m.ufrag = Some(token(value, line, "ufrag")?),
        "ice-pwd" => m.pwd = Some(token(value, line, "password")?),
        "fingerprint" => m.fingerprint = Some(parse_fingerprint(value, line)?),
        "setup" => m.setup = Some(parse_setup(value, line)?),
        "rtcp-mux" => m.rtcp_mux = true,
        "rtcp-rsize" => m.rtcp_rsize = true,
        "extmap" => {
            let (id, uri) = value
                .split_once(' ')
                .ok_or_else(|| sdp_err(line, "extmap is an id and a URI"))?;
            // `id/direction`: the direction is the default, sendrecv, in every browser.
            let id = number(
                id.split('/').next().unwrap_or_default(),
                line,
                "an extmap id",
            )?;
            let uri = token(
                uri.split(' ').next().unwrap_or_default(),
                line,
                "extmap URI",
            )?;
            push_bounded(&mut m.extmaps, (id, uri), "header extensions")?;
        }
        "rtpmap" => {
            let (id, codec) = value
                .split_once(' ')
                .ok_or_else(|| sdp_err(line, "rtpmap is a payload type and a codec"))?;
            let id = number(id, line, "a payload type")?;
            let mut f = codec.split('/');
            let name = sdp_name(f.next().unwrap_or_default(), line, "codec name")?;
            let clockrate = number(f.next().unwrap_or_default(), line, "the clock rate")?;
            let channels = match f.next() {
                Some(c) => number(c, line, "the channels")?,
                None => 1,
            };
            if channels == 0 {
                return Err(sdp_err(line, "no audio channels"));
            }
            let p = payload_mut(m, id, line)?;
            (p.name, p.clockrate, p.channels) = (name, clockrate, channels);
        }
        "fmtp" => {
            let (id, params) = value
                .split_once(' ')
                .ok_or_else(|| sdp_err(line, "fmtp is a payload type and parameters"))?;
            let id = number(id, line, "a payload type")?;
            let p = payload_mut(m, id, line)?;
            for param in params.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                if p.params.len() >= MAX_PARAMS {
                    return Err(JingleError::TooMany("format parameters"));
                }
                // A bare value (RED's `111/111`, telephone-event's `0-15`) has no name.
                let (k, v) = param.split_once('=').unwrap_or(("", param));
                let v = if v.is_empty() {
                    String::new()
                } else {
                    token(v, line, "parameter")?
                };
                let k = if k.is_empty() {
                    String::new()
                } else {
                    sdp_name(k, line, "parameter name")?
                };
                if k.is_empty() && (v.is_empty() || v.contains('=')) {
                    return Err(sdp_err(
                        line,
                        format!("a format parameter without a name: {param:?}"),
                    ));
                }
                p.params.push((k, v));
            }
        }
        "rtcp-fb" => {
            let mut f = value.split(' ');
            let id = f.next().unwrap_or_default();
            let t = token(f.next().unwrap_or_default(), line, "feedback type")?;
            let sub = match f.next() {
                Some(s) => token(s, line, "feedback subtype")?,
                None => String::new(),
            };
            // `*`: every payload type of the section.
            let ids: Vec<u8> = if id == "*" {
                m.payloads.iter().map(|p| p.id).collect()
            } else {
                vec![number(id, line, "a payload type")?]
            };
            for id in ids {
                let p = payload_mut(m, id, line)?;
                if p.feedback.len() >= MAX_PARAMS {
                    return Err(JingleError::TooMany("feedback lines"));
                }
                p.feedback.push((t.clone(), sub.clone()));
            }
        }
        "ssrc" => {
            let (id, attr) = value
                .split_once(' ')
                .ok_or_else(|| sdp_err(line, "ssrc is a source and an attribute"))?;
            let id: u32 = number(id, line, "a source")?;
            let (k, v) = attr.split_once(':').unwrap_or((attr, ""));
            let k = sdp_name(k, line, "source attribute")?;
            let v = v.trim();
            // No control character at all: a CR or LF would start a line of SDP of its own.
            if v.len() > MAX_VALUE
                || v.chars()
                    .any(|c| c.is_control() || !crate::protocol::is_xml_char(c))
            {
                return Err(sdp_err(line, "a bad source attribute value"));
            }
            match m.sources.iter_mut().find(|(s, _)| *s == id) {
                Some((_, attrs)) if attrs.len() >= MAX_PARAMS => {
                    return Err(JingleError::TooMany("source attributes"));
                }
                Some((_, attrs)) => attrs.push((k, v.to_owned())),
                None => push_bounded(&mut m.sources, (id, vec![(k, v.to_owned())]), "sources")?,
            }
        }
        "ssrc-group" => {
            let mut f = value.split(' ');
            let semantics = token(f.next().unwrap_or_default(), line, "group semantics")?;
            let mut ids = Vec::new();
            for s in f.filter(|s| !s.is_empty()) {
                push_bounded(&mut ids, number(s, line, "a source")?, "grouped sources")?;
            }
            push_bounded(&mut m.source_groups, (semantics, ids), "source groups")?;
        }
        "candidate" => {
            let c = Candidate::parse_sdp(&format!("candidate:{value}"), line)?;
            push_bounded(&mut m.candidates, c, "candidates")?;
        }
        _ => {}
    }
    Ok(())
}

// ---------- Jingle ----------

fn child<'a>(e: &'a Element, name: &str, ns: &str) -> Option<&'a Element> {
    e.children().find(|c| c.is(name, ns))
}

fn attr<'a>(e: &'a Element, name: &'a str) -> Result<&'a str, JingleError> {
    e.attr(name)
        .ok_or_else(|| bad(format!("<{}/> without {name}", e.name())))
}

/// A Jingle attribute as an SDP token.
fn jtoken(e: &Element, name: &str) -> Result<String, JingleError> {
    token(attr(e, name)?, 0, name).map_err(|_| bad(format!("a bad {name} in <{}/>", e.name())))
}

/// A Jingle attribute that SDP writes inside a larger field: no `/`, `;`, `=` or `:` either.
fn jname(e: &Element, name: &str) -> Result<String, JingleError> {
    let v = jtoken(e, name)?;
    if v.contains(['/', ';', '=', ':']) {
        return Err(bad(format!("a bad {name} in <{}/>", e.name())));
    }
    Ok(v)
}

fn jnumber<T: std::str::FromStr>(e: &Element, name: &str) -> Result<T, JingleError> {
    attr(e, name)?
        .parse()
        .map_err(|_| bad(format!("{name} of <{}/> is not a number", e.name())))
}

fn count<'a>(
    it: impl Iterator<Item = &'a Element>,
    what: &'static str,
) -> Result<Vec<&'a Element>, JingleError> {
    let v: Vec<&Element> = it.take(MAX_ITEMS + 1).collect();
    if v.len() > MAX_ITEMS {
        return Err(JingleError::TooMany(what));
    }
    Ok(v)
}

impl Candidate {
    /// `<candidate/>` of XEP-0176.
    pub fn to_jingle(&self, id: &str) -> Element {
        let mut e = Element::builder("candidate", NS_ICE)
            .attr(a!("component"), self.component.to_string())
            .attr(a!("foundation"), self.foundation.as_str())
            .attr(a!("generation"), self.generation.to_string())
            .attr(a!("id"), id)
            .attr(a!("ip"), self.ip.to_string())
            .attr(a!("network"), "0")
            .attr(a!("port"), self.port.to_string())
            .attr(a!("priority"), self.priority.to_string())
            .attr(a!("protocol"), self.protocol.as_str())
            .attr(a!("type"), self.typ.as_str())
            .build();
        if let Some((a, p)) = self.related {
            e.set_attr(rxml::Namespace::NONE, a!("rel-addr"), a.to_string());
            e.set_attr(rxml::Namespace::NONE, a!("rel-port"), p.to_string());
        }
        if let Some(t) = &self.tcptype {
            e.set_attr(rxml::Namespace::NONE, a!("tcptype"), t);
        }
        e
    }

    /// Reads a `<candidate/>` of XEP-0176.
    pub fn from_jingle(e: &Element) -> Result<Candidate, JingleError> {
        let protocol = attr(e, "protocol")?.to_ascii_lowercase();
        if protocol != "udp" && protocol != "tcp" {
            return Err(bad(format!("candidate protocol {protocol:?}")));
        }
        let typ = attr(e, "type")?.to_owned();
        if !["host", "srflx", "prflx", "relay"].contains(&typ.as_str()) {
            return Err(bad(format!("candidate type {typ:?}")));
        }
        let related = match (e.attr("rel-addr"), e.attr("rel-port")) {
            (Some(_), Some(_)) => Some((jnumber(e, "rel-addr")?, jnumber(e, "rel-port")?)),
            _ => None,
        };
        Ok(Candidate {
            foundation: jtoken(e, "foundation")?,
            component: jnumber(e, "component")?,
            protocol,
            priority: jnumber(e, "priority")?,
            ip: jnumber(e, "ip")?,
            port: jnumber(e, "port")?,
            typ,
            related,
            generation: e
                .attr("generation")
                .map_or(Ok(0), |_| jnumber(e, "generation"))?,
            tcptype: e
                .attr("tcptype")
                .map(|_| jtoken(e, "tcptype"))
                .transpose()?,
        })
    }
}

impl Media {
    /// The ICE-UDP `<transport/>` of this section, with its fingerprint and candidates.
    pub fn transport(&self) -> Element {
        let mut t = Element::builder("transport", NS_ICE).build();
        if let Some(u) = &self.ufrag {
            t.set_attr(rxml::Namespace::NONE, a!("ufrag"), u);
        }
        if let Some(p) = &self.pwd {
            t.set_attr(rxml::Namespace::NONE, a!("pwd"), p);
        }
        if let Some((hash, value)) = &self.fingerprint {
            let mut f = Element::builder("fingerprint", NS_DTLS)
                .attr(a!("hash"), hash)
                .append(value.as_str())
                .build();
            // Browsers always say it; a description without it says nothing here either.
            if let Some(setup) = &self.setup {
                f.set_attr(rxml::Namespace::NONE, a!("setup"), setup.as_str());
            }
            t.append_child(f);
        }
        for (i, c) in self.candidates.iter().enumerate() {
            t.append_child(c.to_jingle(&format!("{}-{i}", self.mid)));
        }
        t
    }
}

impl Session {
    /// The `<content/>` elements and the bundle `<group/>` to put in a `<jingle/>`, for a
    /// description by `by`.
    pub fn to_jingle(&self, by: Role) -> (Vec<Element>, Option<Element>) {
        let contents = self
            .media
            .iter()
            .map(|m| {
                let mut d = Element::builder("description", NS_RTP)
                    .attr(a!("media"), m.kind.as_str())
                    .build();
                for p in &m.payloads {
                    let mut pe = Element::builder("payload-type", NS_RTP)
                        .attr(a!("id"), p.id.to_string())
                        .attr(a!("name"), p.name.as_str())
                        .attr(a!("clockrate"), p.clockrate.to_string())
                        .build();
                    if p.channels > 1 {
                        pe.set_attr(
                            rxml::Namespace::NONE,
                            a!("channels"),
                            p.channels.to_string(),
                        );
                    }
                    for (k, v) in &p.params {
                        pe.append_child(
                            Element::builder("parameter", NS_RTP)
                                .attr(a!("name"), k)
                                .attr(a!("value"), v)
                                .build(),
                        );
                    }
                    for (t, sub) in &p.feedback {
                        let mut f = Element::builder("rtcp-fb", NS_RTCP_FB)
                            .attr(a!("type"), t)
                            .build();
                        if !sub.is_empty() {
                            f.set_attr(rxml::Namespace::NONE, a!("subtype"), sub);
                        }
                        pe.append_child(f);
                    }
                    d.append_child(pe);
                }
                for (id, uri) in &m.extmaps {
                    d.append_child(
                        Element::builder("rtp-hdrext", NS_HDREXT)
                            .attr(a!("id"), id.to_string())
                            .attr(a!("uri"), uri)
                            .build(),
                    );
                }
                for (id, attrs) in &m.sources {
                    let mut s = Element::builder("source", NS_SSMA)
                        .attr(a!("ssrc"), id.to_string())
                        .build();
                    for (k, v) in attrs {
                        s.append_child(
                            Element::builder("parameter", NS_SSMA)
                                .attr(a!("name"), k)
                                .attr(a!("value"), v)
                                .build(),
                        );
                    }
                    d.append_child(s);
                }
                for (semantics, ids) in &m.source_groups {
                    let mut g = Element::builder("ssrc-group", NS_SSMA)
                        .attr(a!("semantics"), semantics)
                        .build();
                    for id in ids {
                        g.append_child(
                            Element::builder("source", NS_SSMA)
                                .attr(a!("ssrc"), id.to_string())
                                .build(),
                        );
                    }
                    d.append_child(g);
                }
                if m.rtcp_mux {
                    d.append_child(Element::builder("rtcp-mux", NS_RTP).build());
                }
                if m.rtcp_rsize {
                    d.append_child(Element::builder("rtcp-rsize", NS_RTP).build());
                }
                Element::builder("content", NS_JINGLE)
                    .attr(a!("creator"), "initiator")
                    .attr(a!("name"), m.mid.as_str())
                    .attr(a!("senders"), m.direction.senders(by))
                    .append(d)
                    .append(m.transport())
                    .build()
            })
            .collect();
        let group = (!self.bundle.is_empty()).then(|| {
            let mut g = Element::builder("group", NS_GROUPING)
                .attr(a!("semantics"), "BUNDLE")
                .build();
            for mid in &self.bundle {
                g.append_child(
                    Element::builder("content", NS_GROUPING)
                        .attr(a!("name"), mid)
                        .build(),
                );
            }
            g
        });
        (contents, group)
    }

    /// Reads the contents and bundle group of a `<jingle/>` whose description is by `by`.
    /// Contents that are not RTP over ICE-UDP (a file transfer) are an error: this is a call.
    pub fn from_jingle(jingle: &Element, by: Role) -> Result<Session, JingleError> {
        let mut session = Session::default();
        if let Some(g) = child(jingle, "group", NS_GROUPING)
            && g.attr("semantics") == Some("BUNDLE")
        {
            for c in count(
                g.children().filter(|c| c.is("content", NS_GROUPING)),
                "bundled mids",
            )? {
                session.bundle.push(jtoken(c, "name")?);
            }
        }
        let contents = count(
            jingle.children().filter(|c| c.is("content", NS_JINGLE)),
            "contents",
        )?;
        if contents.len() > MAX_MEDIA {
            return Err(JingleError::TooMany("media sections"));
        }
        for c in contents {
            let d = child(c, "description", NS_RTP)
                .ok_or_else(|| bad("a content without an RTP description"))?;
            let kind = attr(d, "media")?;
            let mut m = new_media(kind, 0).map_err(|e| bad(e.to_string()))?;
            m.mid = jtoken(c, "name")?;
            if session.media.iter().any(|o| o.mid == m.mid) {
                return Err(bad(format!("content {:?} twice", m.mid)));
            }
            m.direction = Direction::from_senders(c.attr("senders").unwrap_or("both"), by)?;
            for p in count(
                d.children().filter(|e| e.is("payload-type", NS_RTP)),
                "payload types",
            )? {
                let mut payload = Payload {
                    id: jnumber(p, "id")?,
                    name: jname(p, "name")?,
                    clockrate: p
                        .attr("clockrate")
                        .map_or(Ok(0), |_| jnumber(p, "clockrate"))?,
                    channels: p
                        .attr("channels")
                        .map_or(Ok(1), |_| jnumber(p, "channels"))?,
                    params: Vec::new(),
                    feedback: Vec::new(),
                };
                if payload.channels == 0 || m.payloads.iter().any(|q| q.id == payload.id) {
                    return Err(bad(format!(
                        "payload type {} twice, or with no channels",
                        payload.id
                    )));
                }
                for e in p.children().take(2 * MAX_PARAMS + 1) {
                    if e.is("parameter", NS_RTP) && payload.params.len() < MAX_PARAMS {
                        let v = attr(e, "value")?;
                        let v = if v.is_empty() {
                            String::new()
                        } else {
                            jtoken(e, "value")?
                        };
                        if v.contains(';') {
                            return Err(bad("a parameter value with ';'"));
                        }
                        let k = if attr(e, "name")?.is_empty() {
                            String::new()
                        } else {
                            jname(e, "name")?
                        };
                        if k.is_empty() && (v.is_empty() || v.contains('=')) {
                            return Err(bad("a parameter without a name"));
                        }
                        payload.params.push((k, v));
                    } else if e.is("rtcp-fb", NS_RTCP_FB) && payload.feedback.len() < MAX_PARAMS {
                        let sub = e
                            .attr("subtype")
                            .map(|_| jtoken(e, "subtype"))
                            .transpose()?;
                        payload
                            .feedback
                            .push((jtoken(e, "type")?, sub.unwrap_or_default()));
                    }
                }
                m.payloads.push(payload);
            }
            for h in count(
                d.children().filter(|e| e.is("rtp-hdrext", NS_HDREXT)),
                "header extensions",
            )? {
                m.extmaps.push((jnumber(h, "id")?, jtoken(h, "uri")?));
            }
            for s in count(d.children().filter(|e| e.is("source", NS_SSMA)), "sources")? {
                let mut attrs = Vec::new();
                for p in s
                    .children()
                    .filter(|e| e.is("parameter", NS_SSMA))
                    .take(MAX_PARAMS)
                {
                    let v = p.attr("value").unwrap_or_default().trim();
                    // A CR or LF (as a character reference) would start a line of SDP.
                    if v.len() > MAX_VALUE
                        || v.chars()
                            .any(|c| c.is_control() || !crate::protocol::is_xml_char(c))
                    {
                        return Err(bad("a bad source parameter"));
                    }
                    attrs.push((jname(p, "name")?, v.to_owned()));
                }
                let id: u32 = jnumber(s, "ssrc")?;
                if m.sources.iter().any(|(s, _)| *s == id) {
                    return Err(bad(format!("source {id} twice")));
                }
                // A source with nothing said of it says nothing in SDP either.
                if !attrs.is_empty() {
                    m.sources.push((id, attrs));
                }
            }
            for g in count(
                d.children().filter(|e| e.is("ssrc-group", NS_SSMA)),
                "source groups",
            )? {
                let mut ids = Vec::new();
                for s in count(
                    g.children().filter(|e| e.is("source", NS_SSMA)),
                    "grouped sources",
                )? {
                    ids.push(jnumber(s, "ssrc")?);
                }
                m.source_groups.push((jtoken(g, "semantics")?, ids));
            }
            m.rtcp_mux = child(d, "rtcp-mux", NS_RTP).is_some();
            m.rtcp_rsize = child(d, "rtcp-rsize", NS_RTP).is_some();
            let t = child(c, "transport", NS_ICE)
                .ok_or_else(|| bad("a content without an ICE-UDP transport"))?;
            m.ufrag = t.attr("ufrag").map(|_| jtoken(t, "ufrag")).transpose()?;
            m.pwd = t.attr("pwd").map(|_| jtoken(t, "pwd")).transpose()?;
            if let Some(f) = child(t, "fingerprint", NS_DTLS) {
                m.fingerprint = Some(
                    parse_fingerprint(&format!("{} {}", attr(f, "hash")?, f.text()), 0)
                        .map_err(|_| bad("a bad fingerprint"))?,
                );
                m.setup = f
                    .attr("setup")
                    .map(|v| parse_setup(v, 0).map_err(|_| bad("a bad setup")))
                    .transpose()?;
            }
            for e in count(
                t.children().filter(|e| e.is("candidate", NS_ICE)),
                "candidates",
            )? {
                m.candidates.push(Candidate::from_jingle(e)?);
            }
            session.media.push(m);
        }
        if session.to_sdp().len() > MAX_SDP {
            return Err(JingleError::TooLong);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests;
