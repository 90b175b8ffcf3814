//! Encrypted spheres on the wire: what the server carries for a sphere whose payloads are
//! end-to-end encrypted with MLS (RFC 9420; the group itself is `spheres-mls`'s).
//!
//! - Every MLS message (a commit, a welcome, an application message) travels in the sphere's
//!   room as one groupchat message:
//!
//!   ```xml
//!   <message type='groupchat' to='family@rooms.home.test'>
//!     <body>🔒 encrypted: open it in spheres</body>
//!     <mls xmlns='urn:spheres:0'>BASE64 of the MLSMessage</mls>
//!   </message>
//!   ```
//!
//! - An application message's plaintext is a `<message xmlns='jabber:client'>` element,
//!   serialized: the body and payloads the clear protocol would have sent (a chat line, a
//!   `<share/>`, a `<post/>` …), read back with the same parsers. Its `from`, `to`, `type`
//!   and `id` are ignored: who sent it is what MLS authenticates, checked against the room.
//! - A node's key packages are items of its account's PEP node [`KEY_PACKAGES`], open to
//!   anyone (they are made to be public), one item per device:
//!   `<key-package xmlns='urn:spheres:0'>BASE64</key-package>`.
//!
//! - A one-to-one conversation between two spheres users is encrypted the same way, in a
//!   group per sending device (see [`chat_group`]), its MLS messages as chat messages that
//!   name the group:
//!
//!   ```xml
//!   <message type='chat' to='bob@home.test' id='…'>
//!     <body>🔒 encrypted: open it in spheres</body>
//!     <mls xmlns='urn:spheres:0' group='chat:alice@home.test/DEVICE>bob@home.test'>BASE64</mls>
//!   </message>
//!   ```
//!
//!   `kind='handshake'` marks a welcome or a commit (nothing to show).
//!
//! Parsing is pure and bounded: [`MAX_SEALED`] bytes of MLS message at most.

use minidom::Element;
use xmpp_parsers::message::{Lang, Message, MessagePayload};
use xso::{AsXml, FromXml, text::Base64};

use crate::protocol::NS;
use crate::{BareJid, Jid};

/// The PEP node holding a user's key packages.
pub const KEY_PACKAGES: &str = "urn:spheres:mls:keypackages:0";
/// What plain XMPP clients show for an encrypted message.
pub const SEALED_BODY: &str = "🔒 encrypted: open it in spheres";
/// The largest MLS message we send or read, in bytes (stanzas stay under servers' 256 KiB
/// once in base64, with room to spare).
pub const MAX_SEALED: usize = 160 * 1024;
/// The largest plaintext we seal: an announcement with its `.torrent` fits.
pub const MAX_PLAINTEXT: usize = 128 * 1024;
/// The longest key package we take from someone's PEP node, in bytes (ours are about 350:
/// every welcome carries each member's leaf, so fat ones would soon make welcomes too large).
pub const MAX_KEY_PACKAGE: usize = 2 * 1024;
/// How deep the elements of an opened message may nest (ours: 4).
const MAX_DEPTH: usize = 32;

/// One MLS message in a room.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "mls")]
pub struct Sealed {
    /// The group, in a one-to-one conversation (a room's is the room).
    #[xml(attribute(default))]
    pub group: Option<String>,
    /// `handshake` for a welcome or a commit in a conversation.
    #[xml(attribute(default))]
    pub kind: Option<String>,
    #[xml(text(codec = Base64))]
    pub bytes: Vec<u8>,
}

/// The group in which `device` of `sender` writes to `to` in a one-to-one conversation:
/// `chat:SENDER/DEVICE>TO` (bare JIDs). Its members are that device and `to`'s devices; it
/// is changed by `sender` only.
pub fn chat_group(sender: &BareJid, device: &str, to: &BareJid) -> String {
    format!("chat:{sender}/{device}>{to}")
}

/// Reads a [`chat_group`]: `(sender, device, to)`, when it is one.
pub fn parse_chat_group(group: &str) -> Option<(BareJid, String, BareJid)> {
    let rest = group.strip_prefix("chat:")?;
    let (sender, to) = rest.split_once('>')?;
    let (sender, device) = sender.rsplit_once('/')?;
    if device.is_empty() || device.len() > 64 || !device.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    Some((
        BareJid::new(sender).ok()?,
        device.to_owned(),
        BareJid::new(to).ok()?,
    ))
}

impl MessagePayload for Sealed {}

/// A key package as a PEP item's payload.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Eq)]
#[xml(namespace = NS, name = "key-package")]
pub struct KeyPackageItem {
    #[xml(text(codec = Base64))]
    pub bytes: Vec<u8>,
}

impl Sealed {
    /// The `<mls/>` of a message, when there is one of a size we take.
    pub fn from_message(m: &Message) -> Option<Sealed> {
        let el = m.payloads.iter().find(|p| p.is("mls", NS))?;
        // Base64 is 4/3 of the bytes: a text far too long is not decoded at all.
        if el.text().len() > MAX_SEALED / 3 * 4 + 8 {
            tracing::info!("ignoring an MLS message that is too large");
            return None;
        }
        match Sealed::try_from(el.clone()) {
            Ok(s) if !s.bytes.is_empty() && s.bytes.len() <= MAX_SEALED => Some(s),
            Ok(_) => None,
            Err(e) => {
                tracing::info!(error = %e, "ignoring a malformed MLS message");
                None
            }
        }
    }

    /// A room's MLS message.
    pub fn new(bytes: Vec<u8>) -> Sealed {
        Sealed {
            group: None,
            kind: None,
            bytes,
        }
    }

    /// The chat message that carries it to `to` (a conversation's), with the id `id`.
    pub fn into_chat(self, to: &BareJid, id: &str) -> Message {
        let mut m = Message::chat(Some(Jid::from(to.clone())))
            .with_body(Lang::from(""), SEALED_BODY.to_owned())
            .with_payload(self);
        m.id = Some(xmpp_parsers::message::Id(id.to_owned()));
        m
    }

    /// Whether it is a welcome or a commit of a conversation (nothing to show).
    pub fn is_handshake(&self) -> bool {
        self.kind.as_deref() == Some("handshake")
    }

    /// The private message that carries it to one occupant of a room (`room/nick`).
    pub fn into_private(self, occupant: Jid) -> Message {
        let mut m = Message::chat(Some(occupant))
            .with_body(Lang::from(""), SEALED_BODY.to_owned())
            .with_payload(self);
        m.payloads
            .push(minidom::Element::builder("x", "http://jabber.org/protocol/muc#user").build());
        m
    }

    /// The groupchat message that carries it to `room`.
    pub fn into_message(self, room: &BareJid) -> Message {
        Message::groupchat(Some(Jid::from(room.clone())))
            .with_body(Lang::from(""), SEALED_BODY.to_owned())
            .with_payload(self)
    }
}

impl crate::Client {
    /// Publishes this device's key package as item `device` of our [`KEY_PACKAGES`] node
    /// (open to anyone; a new one replaces the last of the same device).
    pub async fn publish_key_package(
        &self,
        device: &str,
        bytes: Vec<u8>,
    ) -> Result<(), crate::XmppError> {
        let payload = Element::from(KeyPackageItem { bytes });
        self.publish_item(
            None,
            KEY_PACKAGES,
            device,
            payload,
            crate::feed::Access::Open,
            false,
        )
        .await
    }

    /// The key packages `who` published, one per device (id, bytes); those too large or
    /// malformed are left out.
    pub async fn key_packages(
        &self,
        who: &BareJid,
    ) -> Result<Vec<(String, Vec<u8>)>, crate::XmppError> {
        let items = self.raw_items(who, KEY_PACKAGES).await?;
        Ok(items
            .into_iter()
            .filter(|(_, el)| el.is("key-package", NS) && el.text().len() <= MAX_KEY_PACKAGE * 2)
            .filter_map(|(id, el)| Some((id, KeyPackageItem::try_from(el).ok()?.bytes)))
            .filter(|(_, b)| !b.is_empty() && b.len() <= MAX_KEY_PACKAGE)
            .collect())
    }
}

/// A line said in a room (its body only; `to` is the room's when it goes out).
pub fn chat_line(body: &str) -> Message {
    Message::groupchat(None).with_body(Lang::from(""), body.to_owned())
}

/// The plaintext of an application message carrying `inner` (its body and payloads).
pub fn seal_inner(inner: Message) -> Vec<u8> {
    crate::stream::serialize(&Element::from(inner))
}

/// Reads an application message's plaintext back as a message; `None` for anything that is
/// not one `<message xmlns='jabber:client'>` of a size we take.
pub fn open_inner(plain: &[u8]) -> Option<Message> {
    if plain.len() > MAX_PLAINTEXT {
        return None;
    }
    let text = std::str::from_utf8(plain).ok()?;
    if too_deep(text) {
        return None;
    }
    let el: Element = text.parse().ok()?;
    Message::try_from(el).ok()
}

/// Whether `xml` opens more than [`MAX_DEPTH`] elements inside each other (counted on the
/// text, before parsing: a parser's recursion must not meet a deep tree from a member). Tags
/// are read with their quoted attribute values, so no text or value fools the count; what is
/// not well-formed is refused later by the parser.
fn too_deep(xml: &str) -> bool {
    let b = xml.as_bytes();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let special = matches!(b.get(i + 1), Some(b'?' | b'!'));
        // To the end of the tag, past quoted values.
        let mut quote = None;
        let mut j = i + 1;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"' | b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let empty = j > 0 && b.get(j - 1) == Some(&b'/');
        if closing {
            depth = depth.saturating_sub(1);
        } else if !special && !empty {
            depth += 1;
            if depth > MAX_DEPTH {
                return true;
            }
        }
        i = j + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{SpherePayload, Withdraw};
    use xmpp_parsers::message::MessageType;

    fn room() -> BareJid {
        BareJid::new("family@rooms.home.test").unwrap()
    }

    #[test]
    fn an_mls_message_goes_and_comes_back() {
        let m = Sealed::new(vec![0, 1, 2, 255]).into_message(&room());
        let xml = String::from(&Element::from(m));
        assert!(xml.contains(SEALED_BODY), "{xml}");
        let back = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(
            Sealed::from_message(&back).unwrap().bytes,
            vec![0, 1, 2, 255]
        );
    }

    #[test]
    fn a_conversation_names_its_group_and_who_may_write_in_it() {
        let (alice, bob) = (
            BareJid::new("alice@home.test").unwrap(),
            BareJid::new("bob@home.test").unwrap(),
        );
        let group = chat_group(&alice, "a1b2c3", &bob);
        assert_eq!(
            parse_chat_group(&group),
            Some((alice.clone(), "a1b2c3".to_owned(), bob.clone()))
        );
        for bad in [
            "room@rooms.home.test",
            "chat:alice@home.test>bob@home.test",
            "chat:alice@home.test/>bob@home.test",
            "chat:alice@home.test/a b>bob@home.test",
            "chat:alice@home.test/a1>",
            "chat:/a1>bob@home.test",
        ] {
            assert_eq!(parse_chat_group(bad), None, "{bad}");
        }
        let mut s = Sealed::new(vec![7; 3]);
        s.group = Some(group.clone());
        s.kind = Some("handshake".into());
        let m = s.clone().into_chat(&bob, "m1");
        assert_eq!(
            (m.type_.clone(), m.id.as_ref().map(|i| i.0.as_str())),
            (MessageType::Chat, Some("m1"))
        );
        let xml = String::from(&Element::from(m));
        let back = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        let got = Sealed::from_message(&back).unwrap();
        assert!(got.is_handshake());
        assert_eq!(got, s);
    }

    /// A line with characters XML cannot carry is sealed (they become U+FFFD), not a panic.
    #[test]
    fn a_line_xml_cannot_carry_is_sealed_all_the_same() {
        let back = open_inner(&seal_inner(chat_line("a\u{1}b\u{ffff}"))).unwrap();
        assert_eq!(back.bodies.values().next().unwrap(), "a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn a_payload_is_read_back_from_its_plaintext() {
        let inner = Message::groupchat(None)
            .with_body(Lang::from(""), "hello".to_owned())
            .with_payload(Withdraw {
                id: "0123456789abcdef0123456789abcdef01234567".into(),
            });
        let back = open_inner(&seal_inner(inner)).unwrap();
        assert_eq!(back.bodies.values().next().unwrap(), "hello");
        assert!(matches!(
            SpherePayload::from_message(&back),
            Some(SpherePayload::Withdraw(_))
        ));
    }

    #[test]
    fn what_is_not_ours_or_too_large_is_refused() {
        for bad in [
            &b"\xff\xfe"[..],
            b"",
            b"<iq xmlns='jabber:client' type='get' id='1'/>",
            b"<message xmlns='jabber:client'>",
            b"not xml",
        ] {
            assert!(open_inner(bad).is_none(), "{bad:?}");
        }
        let huge = vec![b'a'; MAX_PLAINTEXT + 1];
        assert!(open_inner(&huge).is_none());
        let deep = format!(
            "<message xmlns='jabber:client'>{}{}</message>",
            "<x>".repeat(40_000),
            "</x>".repeat(40_000)
        );
        assert!(open_inner(deep.as_bytes()).is_none());
        let fine = "<message xmlns='jabber:client'><body>a/b &lt;3 /></body><x a='1'/><y><z/></y></message>";
        assert!(open_inner(fine.as_bytes()).is_some());
        // Values and text that look like the end of a tag do not hide depth.
        let sly = format!(
            "<message xmlns='jabber:client'>{}{}</message>",
            "<x a='/>'>/>".repeat(64),
            "</x>".repeat(64)
        );
        assert!(too_deep(&sly));
        assert!(!too_deep("<a><b/><c d=\"<x>\"/></a>"));
        for xml in [
            "<message xmlns='jabber:client' type='groupchat'><mls xmlns='urn:spheres:0'>!!</mls></message>",
            "<message xmlns='jabber:client' type='groupchat'><mls xmlns='urn:spheres:0'></mls></message>",
        ] {
            let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
            assert_eq!(Sealed::from_message(&m), None, "{xml}");
        }
        let long = "A".repeat(MAX_SEALED / 3 * 4 + 64);
        let xml = format!(
            "<message xmlns='jabber:client' type='groupchat'><mls xmlns='urn:spheres:0'>{long}</mls></message>"
        );
        let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(Sealed::from_message(&m), None);
    }
}
