//! The sphere protocol: our payloads, in the namespace [`NS`], specified in docs/protocol.md.
//!
//! - [`Share`]: a share announced in a sphere's room (groupchat message), with the complete
//!   `.torrent`, a magnet URI and a human-readable body, so that any XMPP client shows
//!   "Léa shared holiday.mp4 (1.2 GB)" and the magnet link.
//! - [`Withdraw`]: a share taken back.
//! - [`Endpoints`]: where a member's node takes BitTorrent connections, in its room presence.
//! - [`TrackerGrant`]: the sphere's tracker and the member's own key, sent privately to one
//!   member inside the members-only room.
//! - [`RoomPost`](crate::roomfeed::RoomPost), [`RoomRetract`](crate::roomfeed::RoomRetract):
//!   posts and comments for a sphere's members, in its room.
//! - [`Claim`]: a newcomer's node telling a sphere's owner which invitation link it used.
//!
//! Parsing never panics: [`SpherePayload::from_message`] and [`Endpoints::from_presence`]
//! return `None` for anything that is not ours and log (and ignore) what is ours but
//! malformed.

// The xso derive's code for `Share::magnet` (an extracted required text) converts
// String -> String; the lint fires on generated code we cannot annotate item by item.
#![allow(clippy::useless_conversion)]

use minidom::Element;
use xmpp_parsers::message::{Lang, Message, MessagePayload, MessageType};
use xmpp_parsers::presence::{Presence, PresencePayload};
use xso::{AsXml, FromXml, text::Base64};

use crate::{BareJid, Jid};

/// Our namespace, versioned: a change that old nodes would misread gets a new one.
pub const NS: &str = "urn:spheres:0";

/// The largest `.torrent` we put in an announcement. Servers limit stanza sizes (Prosody
/// 256 KiB, ejabberd's example config 256 KiB, some 64 KiB); a larger torrent is announced
/// with its magnet only and members fetch the metadata from peers (BEP 9).
pub const MAX_INLINE_TORRENT: usize = 48 * 1024;

/// A share announced in a sphere.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "share")]
pub struct Share {
    /// The BitTorrent v1 infohash, 40 lowercase hex digits: the share's identity.
    #[xml(attribute)]
    pub id: String,
    /// The name of the file or folder.
    #[xml(attribute)]
    pub name: String,
    /// Total size in bytes.
    #[xml(attribute)]
    pub size: u64,
    /// Number of files.
    #[xml(attribute)]
    pub files: u64,
    /// What it mostly is: `video`, `audio`, `image`, `document`, `archive` or `other`.
    /// Unknown values must be read as `other`.
    #[xml(attribute)]
    pub media: String,
    /// The member who shared it (bare JID). Receivers check it against the sender's real JID
    /// in the room.
    #[xml(attribute)]
    pub sharer: BareJid,
    /// A magnet URI for the share.
    #[xml(extract(name = "magnet", fields(text)))]
    pub magnet: String,
    /// The complete `.torrent` file (bencoded), base64 in the XML; absent when larger than
    /// [`MAX_INLINE_TORRENT`].
    #[xml(extract(name = "torrent", default, fields(text(codec = Base64, type_ = Vec<u8>))))]
    pub torrent: Option<Vec<u8>>,
    /// A sealed share (an encrypted sphere's; docs/decisions/0015): its key and real files.
    /// Only ever inside an MLS message: `id`, `magnet` and `torrent` are then the sealed
    /// torrent's, which names nothing.
    #[xml(child(default))]
    pub sealed: Option<SealedShare>,
}

/// What only an encrypted sphere's members learn of a sealed share.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "sealed")]
pub struct SealedShare {
    /// The share's content key, 64 hex digits.
    #[xml(attribute)]
    pub key: String,
    /// `file` (one file, listed under the share's name) or `folder`.
    #[xml(attribute)]
    pub kind: String,
    /// Its files in the order of the sealed stream.
    #[xml(child(n = ..))]
    pub files: Vec<SealedFileEntry>,
}

/// One file of a sealed share: its path under the share's folder (components joined by
/// `/`) and its length.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "file")]
pub struct SealedFileEntry {
    #[xml(attribute)]
    pub path: String,
    #[xml(attribute)]
    pub length: u64,
}

impl SealedShare {
    /// The key as bytes, when it is 64 hex digits.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        key_of_hex(&self.key)
    }

    /// Whether the share is a folder.
    pub fn folder(&self) -> bool {
        self.kind == "folder"
    }

    /// As text (XML), for keeping.
    pub fn to_text(&self) -> String {
        String::from_utf8_lossy(&crate::stream::serialize(&Element::from(self.clone())))
            .into_owned()
    }

    /// Back from [`SealedShare::to_text`].
    pub fn from_text(text: &str) -> Option<SealedShare> {
        SealedShare::try_from(text.parse::<Element>().ok()?).ok()
    }
}

/// A share taken back by its sharer.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "withdraw")]
pub struct Withdraw {
    /// The infohash of the share.
    #[xml(attribute)]
    pub id: String,
}

/// The shares of a sphere, passed on by its owner's node to the members its group just
/// welcomed (an encrypted sphere's newcomers cannot read what was announced before they
/// joined): each `<share/>` as its sharer announced it. Taken from the sphere's owner only.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "library")]
pub struct Library {
    #[xml(child(n = ..))]
    pub shares: Vec<Share>,
}

/// A sealed share's torrent for an encrypted sphere's keyless seeders, in clear in the room:
/// the sealed torrent names nothing (one file `sealed`, piece hashes over ciphertext), so it
/// tells the server and the seeders the share's size and no more. Taken from the sphere's
/// owner only, by keyless seeders only.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "hold")]
pub struct Hold {
    /// The sealed torrent's infohash (40 lowercase hex digits).
    #[xml(attribute)]
    pub id: String,
    /// Its size in bytes.
    #[xml(attribute)]
    pub size: u64,
    /// The sealed `.torrent`, base64; absent when larger than [`MAX_INLINE_TORRENT`] (the
    /// seeder then fetches it from members' nodes, BEP 9).
    #[xml(extract(name = "torrent", default, fields(text(codec = Base64, type_ = Vec<u8>))))]
    pub torrent: Option<Vec<u8>>,
}

/// A sealed share withdrawn: its keyless seeders stop serving it and delete its ciphertext.
/// Taken from the sphere's owner only, by keyless seeders only.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "unhold")]
pub struct Unhold {
    /// The sealed torrent's infohash (40 lowercase hex digits).
    #[xml(attribute)]
    pub id: String,
}

/// Sealed shares' torrents for an encrypted sphere's keyless seeders, and those to let go
/// (only the valid ones are kept): one message carries several.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "holds")]
pub struct Holds {
    #[xml(child(n = ..))]
    pub holds: Vec<Hold>,
    #[xml(child(n = ..))]
    pub unholds: Vec<Unhold>,
}

/// One address where a node accepts BitTorrent connections.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "endpoint")]
pub struct Endpoint {
    /// `lan` (a local interface), `mapped` (a port mapped on the router), `public` (a
    /// routable address of the machine) or `loopback`. Unknown kinds are kept as they are.
    #[xml(attribute)]
    pub kind: String,
    /// An IP address (v4 or v6) or a host name.
    #[xml(attribute)]
    pub host: String,
    #[xml(attribute)]
    pub port: u16,
}

/// A member node's BitTorrent endpoints, published in its room presence.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq, Default)]
#[xml(namespace = NS, name = "endpoints")]
pub struct Endpoints {
    #[xml(child(n = ..))]
    pub endpoints: Vec<Endpoint>,
}

/// What the sphere's owner gives one member, as a private message inside the room: the
/// sphere's tracker (the announce URL carries that member's own key, so removing the member
/// revokes exactly it) and the sphere's swarm secret (members' nodes prove it to each other
/// before they exchange anything; a new one after a member is removed).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "tracker")]
pub struct TrackerGrant {
    /// The member this key belongs to.
    #[xml(attribute)]
    pub member: BareJid,
    /// The HTTP announce URL, key included (`http://host:port/KEY/announce`).
    #[xml(attribute)]
    pub announce: String,
    /// The sphere's swarm secret, 64 hex digits (32 bytes); absent from older owners.
    #[xml(attribute(default))]
    pub secret: Option<String>,
}

/// "I am the person your invitation link was for": sent by a newcomer's node to the sphere's
/// owner, in a 1:1 message, right after it created its account with the link's token. The
/// owner then makes the sender a member and invites them.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "claim")]
pub struct Claim {
    /// The token from the invitation link.
    #[xml(attribute)]
    pub token: String,
}

/// A direct invitation (XEP-0249): "join this room", sent to the invitee's bare JID.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = "jabber:x:conference", name = "x")]
pub struct DirectInvite {
    #[xml(attribute)]
    pub jid: BareJid,
    #[xml(attribute(default))]
    pub reason: Option<String>,
    #[xml(attribute(default))]
    pub password: Option<String>,
}

impl MessagePayload for Share {}
impl MessagePayload for Withdraw {}
impl MessagePayload for Library {}
impl MessagePayload for Holds {}
impl MessagePayload for TrackerGrant {}
impl MessagePayload for DirectInvite {}
impl MessagePayload for Claim {}
impl PresencePayload for Endpoints {}

/// One of our payloads found in a message.
#[derive(Debug, Clone, PartialEq)]
pub enum SpherePayload {
    Share(Share),
    Withdraw(Withdraw),
    Tracker(TrackerGrant),
    Invite(DirectInvite),
    Claim(Claim),
    /// A post or comment for a sphere's members.
    Post(Box<crate::roomfeed::RoomPost>),
    /// A sphere's post or comment taken back.
    Retract(crate::roomfeed::RoomRetract),
    /// An MLS message of an encrypted sphere (see [`crate::sealed`]).
    Sealed(crate::sealed::Sealed),
    /// The sphere's shares, from its owner, for newcomers (only the valid ones are kept).
    Library(Library),
    /// Sealed shares' torrents, for keyless seeders.
    Holds(Holds),
}

fn child_of<T>(payloads: &[Element], ns: &str, name: &str) -> Option<T>
where
    T: TryFrom<Element, Error = xso::error::FromElementError>,
{
    let el = payloads.iter().find(|p| p.is(name, ns))?;
    match T::try_from(el.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::info!(element = name, ns, error = %e, "ignoring a malformed payload");
            None
        }
    }
}

impl SpherePayload {
    /// Our payload in a message, if there is a well-formed one.
    pub fn from_message(m: &Message) -> Option<SpherePayload> {
        let p = &m.payloads;
        if let Some(s) = crate::sealed::Sealed::from_message(m) {
            return Some(SpherePayload::Sealed(s));
        }
        if let Some(s) = child_of::<Share>(p, NS, "share") {
            return s.is_valid().then_some(SpherePayload::Share(s)).or_else(|| {
                tracing::info!("ignoring a share announcement with an invalid id or name");
                None
            });
        }
        if let Some(w) = child_of::<Withdraw>(p, NS, "withdraw") {
            return is_infohash(&w.id).then_some(SpherePayload::Withdraw(w));
        }
        if let Some(t) = child_of::<TrackerGrant>(p, NS, "tracker") {
            return Some(SpherePayload::Tracker(t));
        }
        if let Some(c) = child_of::<Claim>(p, NS, "claim") {
            return Some(SpherePayload::Claim(c));
        }
        if let Some(l) = child_of::<Library>(p, NS, "library") {
            let shares: Vec<Share> = l.shares.into_iter().filter(Share::is_valid).collect();
            return Some(SpherePayload::Library(Library { shares }));
        }
        if let Some(h) = child_of::<Holds>(p, NS, "holds") {
            let holds: Vec<Hold> = h.holds.into_iter().filter(|h| is_infohash(&h.id)).collect();
            let unholds = h.unholds.into_iter().filter(|u| is_infohash(&u.id));
            return Some(SpherePayload::Holds(Holds {
                holds,
                unholds: unholds.collect(),
            }));
        }
        if let Some(post) = child_of(p, NS, "post") {
            return Some(SpherePayload::Post(Box::new(post)));
        }
        if let Some(r) = child_of(p, NS, "retract") {
            return Some(SpherePayload::Retract(r));
        }
        child_of::<DirectInvite>(p, "jabber:x:conference", "x").map(SpherePayload::Invite)
    }
}

/// Whether a message (an invitation) says its sphere is encrypted:
/// `<encrypted xmlns='urn:spheres:0'/>` beside the XEP-0249 `<x/>`.
pub fn says_encrypted(m: &Message) -> bool {
    m.payloads.iter().any(|p| p.is("encrypted", NS))
}

/// The mark [`says_encrypted`] reads.
pub fn encrypted_mark() -> Element {
    Element::builder("encrypted", NS).build()
}

/// Whether an invitation asks the invitee's node to hold the sphere's encrypted files as a
/// keyless seeder: `<seeder xmlns='urn:spheres:0'/>` beside `<encrypted/>`.
pub fn says_seeder(m: &Message) -> bool {
    m.payloads.iter().any(|p| p.is("seeder", NS))
}

/// The mark [`says_seeder`] reads.
pub fn seeder_mark() -> Element {
    Element::builder("seeder", NS).build()
}

/// 32 bytes written as 64 hex digits (a swarm secret, a sealed share's key); `None` for
/// anything else.
fn key_of_hex(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

fn is_infohash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether XML 1.0 can carry `c` (its `Char` production, less the C1 controls, which it
/// allows but discourages).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Control characters, U+FFFE and U+FFFF cannot travel in XML 1.0; names from disks sometimes
/// have them: they become U+FFFD.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// A size for people: "1.2 GB", "340 kB", "12 bytes" (decimal units, as file managers show).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Share {
    fn is_valid(&self) -> bool {
        is_infohash(&self.id) && !self.name.is_empty() && self.magnet.starts_with("magnet:?")
    }

    /// What a plain XMPP client shows: "Léa shared holiday.mp4 (1.2 GB)", then the magnet.
    pub fn body(&self, sharer_name: &str) -> String {
        let what = if self.files > 1 {
            format!(
                "{} ({} files, {})",
                self.name,
                self.files,
                human_size(self.size)
            )
        } else {
            format!("{} ({})", self.name, human_size(self.size))
        };
        format!("{sharer_name} shared {what}\n{}", self.magnet)
    }

    /// The groupchat message announcing this share in `room`. Names are made XML-safe and a
    /// torrent too large for a stanza is left out (the magnet remains).
    pub fn into_message(mut self, room: BareJid, sharer_name: &str) -> Message {
        self.name = xml_safe(&self.name);
        if self
            .torrent
            .as_ref()
            .is_some_and(|t| t.len() > MAX_INLINE_TORRENT)
        {
            self.torrent = None;
        }
        let body = self.body(&xml_safe(sharer_name));
        Message::groupchat(Some(Jid::from(room)))
            .with_body(Lang::from(""), body)
            .with_payload(self)
    }
}

impl Withdraw {
    pub fn into_message(self, room: BareJid, sharer_name: &str, share_name: &str) -> Message {
        let body = format!(
            "{} withdrew {}",
            xml_safe(sharer_name),
            xml_safe(share_name)
        );
        Message::groupchat(Some(Jid::from(room)))
            .with_body(Lang::from(""), body)
            .with_payload(self)
    }
}

impl TrackerGrant {
    /// The swarm secret, when it is one (64 hex digits).
    pub fn swarm_secret(&self) -> Option<[u8; 32]> {
        key_of_hex(self.secret.as_deref()?)
    }

    /// A private message to one occupant of the room (`room/nick`), never to the room.
    pub fn into_message(self, occupant: Jid) -> Message {
        let mut m = Message::new(Some(occupant));
        m.type_ = MessageType::Chat;
        m.payloads
            .push(Element::builder("x", "http://jabber.org/protocol/muc#user").build());
        m.with_payload(self)
    }
}

impl Claim {
    pub fn into_message(self, to: BareJid) -> Message {
        let mut m = Message::new(Some(Jid::from(to)));
        m.type_ = MessageType::Normal;
        m.with_payload(self)
    }
}

impl DirectInvite {
    pub fn into_message(self, to: BareJid) -> Message {
        let mut m = Message::new(Some(Jid::from(to)));
        m.type_ = MessageType::Normal;
        m.with_payload(self)
    }
}

impl Endpoints {
    /// The endpoints in a presence, if it carries well-formed ones.
    pub fn from_presence(p: &Presence) -> Option<Endpoints> {
        child_of::<Endpoints>(&p.payloads, NS, "endpoints")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_share_carries_its_key_and_files() {
        let mut s = share();
        s.sealed = Some(SealedShare {
            key: "ab".repeat(32),
            kind: "folder".into(),
            files: vec![
                SealedFileEntry {
                    path: "day one/beach.jpg".into(),
                    length: 70_000,
                },
                SealedFileEntry {
                    path: "notes.txt".into(),
                    length: 1_000,
                },
            ],
        });
        let room = BareJid::new("family@rooms.home.test").unwrap();
        let m = s.clone().into_message(room, "Léa");
        let back =
            Message::try_from(String::from(&Element::from(m)).parse::<Element>().unwrap()).unwrap();
        let Some(SpherePayload::Share(got)) = SpherePayload::from_message(&back) else {
            panic!("no share");
        };
        assert_eq!(got.sealed, s.sealed);
        let sealed = got.sealed.unwrap();
        assert_eq!(sealed.key_bytes(), Some([0xab; 32]));
        assert!(sealed.folder());
        assert_eq!(
            SealedShare::from_text(&sealed.to_text()),
            Some(sealed.clone())
        );
        for bad in ["ab", "zz".repeat(32).as_str(), &"ab".repeat(33)] {
            let k = SealedShare {
                key: bad.to_owned(),
                ..sealed.clone()
            };
            assert_eq!(k.key_bytes(), None, "{bad}");
        }
        assert_eq!(SealedShare::from_text("<nope/>"), None);
    }

    fn share() -> Share {
        Share {
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            name: "holiday.mp4".into(),
            size: 1_234_567_890,
            files: 1,
            media: "video".into(),
            sharer: BareJid::new("lea@home.test").unwrap(),
            magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567".into(),
            torrent: Some(b"d4:infod4:name3:abcee".to_vec()),
            sealed: None,
        }
    }

    fn room() -> BareJid {
        BareJid::new("family@rooms.home.test").unwrap()
    }

    #[test]
    fn a_share_round_trips_through_xml_and_reads_well_in_any_client() {
        let m = share().into_message(room(), "Léa");
        let xml = String::from(&Element::from(m));
        assert!(xml.contains("urn:spheres:0"), "{xml}");
        let back = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(
            back.bodies.values().next().unwrap(),
            "Léa shared holiday.mp4 (1.2 GB)\nmagnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            SpherePayload::from_message(&back),
            Some(SpherePayload::Share(share()))
        );
    }

    #[test]
    fn a_huge_torrent_is_left_out_and_the_magnet_stays() {
        let mut s = share();
        s.torrent = Some(vec![b'x'; MAX_INLINE_TORRENT + 1]);
        let m = s.into_message(room(), "Léa");
        match SpherePayload::from_message(&m) {
            Some(SpherePayload::Share(s)) => {
                assert!(s.torrent.is_none());
                assert!(s.magnet.starts_with("magnet:?"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_or_foreign_payloads_are_ignored() {
        for xml in [
            // no magnet
            "<message xmlns='jabber:client' type='groupchat'><share xmlns='urn:spheres:0' id='0123456789abcdef0123456789abcdef01234567' name='a' size='1' files='1' media='video' sharer='a@b'/></message>",
            // size not a number
            "<message xmlns='jabber:client' type='groupchat'><share xmlns='urn:spheres:0' id='0123456789abcdef0123456789abcdef01234567' name='a' size='big' files='1' media='video' sharer='a@b'><magnet>magnet:?x</magnet></share></message>",
            // id not an infohash
            "<message xmlns='jabber:client' type='groupchat'><share xmlns='urn:spheres:0' id='../../etc' name='a' size='1' files='1' media='video' sharer='a@b'><magnet>magnet:?x</magnet></share></message>",
            // bad base64
            "<message xmlns='jabber:client' type='groupchat'><share xmlns='urn:spheres:0' id='0123456789abcdef0123456789abcdef01234567' name='a' size='1' files='1' media='video' sharer='a@b'><magnet>magnet:?x</magnet><torrent>!!!</torrent></share></message>",
            // bad JID
            "<message xmlns='jabber:client' type='groupchat'><share xmlns='urn:spheres:0' id='0123456789abcdef0123456789abcdef01234567' name='a' size='1' files='1' media='video' sharer='@@'><magnet>magnet:?x</magnet></share></message>",
            "<message xmlns='jabber:client' type='groupchat'><withdraw xmlns='urn:spheres:0' id='nope'/></message>",
            "<message xmlns='jabber:client' type='groupchat'><body>just chat</body></message>",
            "<message xmlns='jabber:client'><share xmlns='urn:other:1'/></message>",
        ] {
            let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
            assert_eq!(SpherePayload::from_message(&m), None, "{xml}");
        }
    }

    #[test]
    fn endpoints_ride_in_presence() {
        let e = Endpoints {
            endpoints: vec![
                Endpoint {
                    kind: "lan".into(),
                    host: "192.168.1.20".into(),
                    port: 6881,
                },
                Endpoint {
                    kind: "mapped".into(),
                    host: "2001:db8::1".into(),
                    port: 41234,
                },
            ],
        };
        let p = Presence::available().with_payload(e.clone());
        let back = Presence::try_from(Element::from(p)).unwrap();
        assert_eq!(Endpoints::from_presence(&back), Some(e));
        let bad: Element = "<presence xmlns='jabber:client'><endpoints xmlns='urn:spheres:0'><endpoint kind='lan' host='x' port='99999'/></endpoints></presence>".parse().unwrap();
        assert_eq!(
            Endpoints::from_presence(&Presence::try_from(bad).unwrap()),
            None
        );
    }

    #[test]
    fn tracker_grants_and_invites_round_trip() {
        let g = TrackerGrant {
            member: BareJid::new("bob@home.test").unwrap(),
            announce: "http://192.0.2.1:6969/k3y/announce".into(),
            secret: Some("ab".repeat(32)),
        };
        let m = g
            .clone()
            .into_message(Jid::new("family@rooms.home.test/bob").unwrap());
        assert_eq!(m.type_, MessageType::Chat);
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Tracker(g.clone()))
        );
        assert_eq!(g.swarm_secret(), Some([0xab; 32]));
        for bad in ["ab", "+f".repeat(32).as_str(), "é".repeat(32).as_str(), ""] {
            let g = TrackerGrant {
                secret: Some(bad.into()),
                ..g.clone()
            };
            assert_eq!(g.swarm_secret(), None, "{bad}");
        }
        let c = Claim {
            token: "tok".into(),
        };
        let m = c
            .clone()
            .into_message(BareJid::new("lea@home.test").unwrap());
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Claim(c))
        );
        let i = DirectInvite {
            jid: room(),
            reason: Some("Family photos".into()),
            password: None,
        };
        let m = i
            .clone()
            .into_message(BareJid::new("bob@home.test").unwrap());
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Invite(i))
        );
    }

    #[test]
    fn holds_and_the_seeder_mark_round_trip() {
        let h = Hold {
            id: "ab".repeat(20),
            size: 1_000_000,
            torrent: Some(b"d4:infodee".to_vec()),
        };
        let bare = Hold {
            torrent: None,
            ..h.clone()
        };
        let bad: Vec<Hold> = ["AB".repeat(20), "ab".repeat(19), "../".into()]
            .into_iter()
            .map(|id| Hold { id, ..h.clone() })
            .collect();
        let gone = Unhold {
            id: "cd".repeat(20),
        };
        let all = Holds {
            holds: [vec![h.clone(), bare.clone()], bad].concat(),
            unholds: vec![gone.clone(), Unhold { id: "../x".into() }],
        };
        let m = Message::groupchat(Some(room().into())).with_payload(all);
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Holds(Holds {
                holds: vec![h, bare],
                unholds: vec![gone],
            })),
            "the valid ones only"
        );
        let mut invite = Message::normal(Some(BareJid::new("vault@home.test").unwrap().into()));
        assert!(!says_seeder(&invite));
        invite.payloads.push(seeder_mark());
        assert!(says_seeder(&invite));
    }

    #[test]
    fn sizes_and_names_for_people() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(340_000), "340 kB");
        assert_eq!(human_size(1_234_567_890), "1.2 GB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(xml_safe("a\u{1}b"), "a\u{FFFD}b");
    }
}
