//! Posts for a sphere: a post (or a comment under one) that only the sphere's members read
//! travels in the sphere's room, which is members-only, as an Atom entry of XEP-0277 wrapped
//! in our namespace:
//!
//! ```xml
//! <message type='groupchat' to='family@rooms.home.test'>
//!   <body>Léa posted: Photos from Lyon</body>
//!   <post xmlns='urn:spheres:0' id='ITEM'>            <!-- on='POST' for a comment -->
//!     <entry xmlns='http://www.w3.org/2005/Atom'>…</entry>
//!   </post>
//! </message>
//! <message type='groupchat'><retract xmlns='urn:spheres:0' id='ITEM'/></message>
//! ```
//!
//! The same item id sent again by the same member is a new version (an edit). The room says
//! who sent it; the entry's own author is never believed. Parsing is pure and bounded.

use minidom::Element;
use xmpp_parsers::message::{Lang, Message, MessagePayload};

use crate::feed::{Entry, EntryError};
use crate::protocol::{NS, xml_safe};
use crate::{BareJid, Jid};

/// The longest item id we take, in bytes.
const MAX_ID: usize = 128;
/// How much of a post's text the body for plain clients carries, in characters.
const BODY_CHARS: usize = 500;

/// A post in a sphere, or a comment under one when `on` names its post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPost {
    pub id: String,
    pub on: Option<String>,
    pub entry: Entry,
}

/// A post or a comment of a sphere taken back by its author (or, for a comment, by the
/// post's author).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRetract {
    pub id: String,
    pub on: Option<String>,
}

impl MessagePayload for RoomPost {}
impl MessagePayload for RoomRetract {}

/// Whether `s` may be an item id: short, and letters, digits, `-`, `_` and `.` only (ours
/// are UUIDs), so it can go anywhere (a URL, a file name, a log line) as it is.
pub fn is_item_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The `id` and `on` of one of our elements, when both are well formed.
fn ids(el: &Element) -> Option<(String, Option<String>)> {
    let id = el.attr("id").filter(|i| is_item_id(i))?.to_owned();
    let on = match el.attr("on") {
        None => None,
        Some(on) if is_item_id(on) => Some(on.to_owned()),
        Some(_) => return None,
    };
    Some((id, on))
}

impl RoomPost {
    /// Reads `<post xmlns='urn:spheres:0'>`.
    pub fn from_element(el: &Element) -> Result<RoomPost, EntryError> {
        let (id, on) = ids(el).ok_or(EntryError::NotAnEntry)?;
        let entry = el
            .get_child("entry", crate::feed::NS_ATOM)
            .ok_or(EntryError::NotAnEntry)?;
        Ok(RoomPost {
            id,
            on,
            entry: Entry::from_element(entry)?,
        })
    }

    /// The groupchat message carrying it to `room`, with a body plain clients show ("Léa
    /// posted: …").
    pub fn into_message(self, room: BareJid, poster_name: &str) -> Message {
        let verb = if self.on.is_some() {
            "commented"
        } else {
            "posted"
        };
        let text = if self.entry.content.is_empty() {
            &self.entry.title
        } else {
            &self.entry.content
        };
        let mut said: String = text.chars().take(BODY_CHARS).collect();
        if said.len() < text.len() {
            said.push('…');
        }
        let body = xml_safe(&format!("{poster_name} {verb}: {said}"));
        Message::groupchat(Some(Jid::from(room)))
            .with_body(Lang::from(""), body)
            .with_payload(self)
    }
}

impl From<RoomPost> for Element {
    fn from(p: RoomPost) -> Element {
        let mut el = Element::builder("post", NS).attr(rxml::xml_ncname!("id").to_owned(), p.id);
        if let Some(on) = p.on {
            el = el.attr(rxml::xml_ncname!("on").to_owned(), on);
        }
        el.append(p.entry.to_element()).build()
    }
}

impl TryFrom<Element> for RoomPost {
    type Error = xso::error::FromElementError;
    fn try_from(el: Element) -> Result<Self, Self::Error> {
        if !el.is("post", NS) {
            return Err(xso::error::FromElementError::Mismatch(el));
        }
        RoomPost::from_element(&el).map_err(|e| {
            xso::error::FromElementError::Invalid(xso::error::Error::text_parse_error(e))
        })
    }
}

impl RoomRetract {
    pub fn from_element(el: &Element) -> Option<RoomRetract> {
        let (id, on) = ids(el)?;
        Some(RoomRetract { id, on })
    }

    pub fn into_message(self, room: BareJid, poster_name: &str) -> Message {
        let what = if self.on.is_some() {
            "a comment"
        } else {
            "a post"
        };
        let body = xml_safe(&format!("{poster_name} deleted {what}"));
        Message::groupchat(Some(Jid::from(room)))
            .with_body(Lang::from(""), body)
            .with_payload(self)
    }
}

impl From<RoomRetract> for Element {
    fn from(r: RoomRetract) -> Element {
        let mut el = Element::builder("retract", NS).attr(rxml::xml_ncname!("id").to_owned(), r.id);
        if let Some(on) = r.on {
            el = el.attr(rxml::xml_ncname!("on").to_owned(), on);
        }
        el.build()
    }
}

impl TryFrom<Element> for RoomRetract {
    type Error = xso::error::FromElementError;
    fn try_from(el: Element) -> Result<Self, Self::Error> {
        if !el.is("retract", NS) {
            return Err(xso::error::FromElementError::Mismatch(el));
        }
        RoomRetract::from_element(&el).ok_or_else(|| {
            xso::error::FromElementError::Invalid(xso::error::Error::Other(
                "a retract without a good id",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SpherePayload;

    fn room() -> BareJid {
        BareJid::new("family@rooms.home.test").unwrap()
    }

    fn entry(text: &str) -> Entry {
        Entry {
            title: text.into(),
            content: text.into(),
            published: Some(1_700_000_000),
            updated: Some(1_700_000_000),
            author_name: Some("Léa".into()),
            author: Some(BareJid::new("lea@home.test").unwrap()),
            audience: Some("sphere".into()),
            ..Default::default()
        }
    }

    #[test]
    fn posts_comments_and_retractions_round_trip_and_read_well_in_any_client() {
        let post = RoomPost {
            id: "5f0c6b1e-0000-4000-8000-000000000001".into(),
            on: None,
            entry: entry("Photos from Lyon"),
        };
        let m = post.clone().into_message(room(), "Léa");
        let xml = String::from(&Element::from(m));
        let back = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(
            back.bodies.values().next().unwrap(),
            "Léa posted: Photos from Lyon"
        );
        assert_eq!(
            SpherePayload::from_message(&back),
            Some(SpherePayload::Post(Box::new(post.clone())))
        );
        let comment = RoomPost {
            id: "c1".into(),
            on: Some(post.id.clone()),
            entry: entry("Lovely"),
        };
        let m = comment.clone().into_message(room(), "Bob");
        assert_eq!(m.bodies.values().next().unwrap(), "Bob commented: Lovely");
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Post(Box::new(comment)))
        );
        let r = RoomRetract {
            id: post.id.clone(),
            on: None,
        };
        let m = r.clone().into_message(room(), "Léa");
        assert_eq!(
            SpherePayload::from_message(&m),
            Some(SpherePayload::Retract(r))
        );
    }

    #[test]
    fn a_long_post_is_cut_in_the_body_only() {
        let text = "é".repeat(2 * BODY_CHARS);
        let post = RoomPost {
            id: "p".into(),
            on: None,
            entry: entry(&text),
        };
        let m = post.clone().into_message(room(), "Léa");
        assert!(m.bodies.values().next().unwrap().ends_with('…'));
        let Some(SpherePayload::Post(back)) = SpherePayload::from_message(&m) else {
            panic!("no post");
        };
        assert_eq!(back.entry.content, text);
    }

    #[test]
    fn malformed_posts_are_ignored() {
        let atom = "<entry xmlns='http://www.w3.org/2005/Atom'><title>x</title></entry>";
        for xml in [
            // no id, or an id that could go anywhere
            format!("<post xmlns='urn:spheres:0'>{atom}</post>"),
            format!("<post xmlns='urn:spheres:0' id='../../x'>{atom}</post>"),
            format!(
                "<post xmlns='urn:spheres:0' id='{}'>{atom}</post>",
                "a".repeat(MAX_ID + 1)
            ),
            format!("<post xmlns='urn:spheres:0' id='a' on='b c'>{atom}</post>"),
            // no entry
            "<post xmlns='urn:spheres:0' id='a'/>".into(),
            "<post xmlns='urn:spheres:0' id='a'><entry xmlns='urn:other'/></post>".into(),
            // too much text
            format!(
                "<post xmlns='urn:spheres:0' id='a'><entry xmlns='http://www.w3.org/2005/Atom'><content>{}</content></entry></post>",
                "x".repeat(crate::feed::MAX_CONTENT + 1)
            ),
            "<retract xmlns='urn:spheres:0'/>".into(),
            "<retract xmlns='urn:spheres:0' id='a/b'/>".into(),
        ] {
            let m = format!("<message xmlns='jabber:client' type='groupchat'>{xml}</message>");
            let m = Message::try_from(m.parse::<Element>().unwrap()).unwrap();
            assert_eq!(SpherePayload::from_message(&m), None, "{xml}");
        }
        assert!(is_item_id("5f0c6b1e-0000-4000-8000-000000000001"));
        assert!(!is_item_id(""));
    }
}
