//! Calls in a room (XEP-0272, Multiparty Jingle, "Muji"): who takes part says so in their
//! room presence, with the media they send; every two participants then hold an ordinary
//! Jingle session between their real addresses, tagged with the room it belongs to.
//!
//! Pure: a presence's payload in, a typed value out, and back. What is not ours to read is
//! `None`, never a panic; what is kept is bounded (a handful of media, short names).

use jid::BareJid;
use minidom::Element;

use crate::jingle::{NS_JINGLE, NS_RTP};

pub const NS_MUJI: &str = "urn:xmpp:jingle:muji:0";

/// Contents read from one presence, at most (audio, video, and room to spare).
pub const MAX_CONTENTS: usize = 4;
/// The longest content name read.
const MAX_NAME: usize = 32;

/// What a participant says in its room presence about the room's call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Muji {
    /// Still getting ready: not yet in the call (XEP-0272 §3).
    pub preparing: bool,
    /// The media it sends ("audio", "video"), in its order, without repeats.
    pub media: Vec<String>,
}

impl Muji {
    /// In the call, sending audio, and video when `video`.
    pub fn joined(video: bool) -> Muji {
        let mut media = vec!["audio".to_owned()];
        if video {
            media.push("video".to_owned());
        }
        Muji {
            preparing: false,
            media,
        }
    }

    /// In the call (not preparing), with at least one medium.
    pub fn in_call(&self) -> bool {
        !self.preparing && !self.media.is_empty()
    }

    pub fn video(&self) -> bool {
        self.media.iter().any(|m| m == "video")
    }

    /// The `<muji/>` among a presence's payloads, if any.
    pub fn from_payloads<'a>(payloads: impl IntoIterator<Item = &'a Element>) -> Option<Muji> {
        payloads
            .into_iter()
            .find(|e| e.is("muji", NS_MUJI))
            .map(Muji::from_element)
    }

    /// Reads `<muji/>`: a `<preparing/>`, and `<content/>`s whose RTP description names the
    /// medium (or, lacking one, whose name does).
    pub fn from_element(e: &Element) -> Muji {
        let mut m = Muji {
            preparing: e.get_child("preparing", NS_MUJI).is_some(),
            media: Vec::new(),
        };
        for c in e.children().filter(|c| c.is("content", NS_JINGLE)) {
            if m.media.len() >= MAX_CONTENTS {
                break;
            }
            let medium = c
                .get_child("description", NS_RTP)
                .and_then(|d| d.attr("media"))
                .or_else(|| c.attr("name"));
            let Some(medium) = medium else {
                continue;
            };
            if medium.is_empty()
                || medium.len() > MAX_NAME
                || !medium.chars().all(|ch| ch.is_ascii_alphanumeric())
                || m.media.iter().any(|x| x == medium)
            {
                continue;
            }
            m.media.push(medium.to_owned());
        }
        m
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::builder("muji", NS_MUJI).build();
        if self.preparing {
            e.append_child(Element::builder("preparing", NS_MUJI).build());
        }
        for medium in &self.media {
            e.append_child(
                Element::builder("content", NS_JINGLE)
                    .attr(a!("creator"), "initiator")
                    .attr(a!("name"), medium.as_str())
                    .append(
                        Element::builder("description", NS_RTP)
                            .attr(a!("media"), medium.as_str())
                            .build(),
                    )
                    .build(),
            );
        }
        e
    }
}

/// The room a Jingle session belongs to (`<muji room=…/>` inside `<jingle/>`), if any.
pub fn session_room(jingle: &Element) -> Option<BareJid> {
    let room = jingle.get_child("muji", NS_MUJI)?.attr("room")?;
    BareJid::new(room).ok()
}

/// Tags a `session-initiate` (or any Jingle request) as part of `room`'s call.
pub fn tag_session(jingle: &mut Element, room: &BareJid) {
    jingle.append_child(
        Element::builder("muji", NS_MUJI)
            .attr(a!("room"), room.as_str())
            .build(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test XML")
    }

    #[test]
    fn a_presence_in_the_call_reads_back_as_written() {
        for video in [false, true] {
            let m = Muji::joined(video);
            let wire: Element = String::from(&m.to_element()).parse().expect("ours");
            let back = Muji::from_element(&wire);
            assert_eq!(back, m);
            assert!(back.in_call());
            assert_eq!(back.video(), video);
        }
    }

    #[test]
    fn preparing_or_empty_is_not_in_the_call() {
        let p = parse(&format!(
            "<muji xmlns='{NS_MUJI}'><preparing/><content xmlns='{NS_JINGLE}' name='audio'/></muji>"
        ));
        let m = Muji::from_element(&p);
        assert!(m.preparing && !m.in_call());
        let empty = parse(&format!("<muji xmlns='{NS_MUJI}'/>"));
        assert!(!Muji::from_element(&empty).in_call());
    }

    #[test]
    fn contents_are_bounded_named_and_not_repeated() {
        // A QXmpp-style content (a name, no description) counts; odd names and repeats do
        // not; past the bound nothing more is kept.
        let mut xml = format!(
            "<muji xmlns='{NS_MUJI}'><content xmlns='{NS_JINGLE}' creator='initiator' name='audio'/>\
             <content xmlns='{NS_JINGLE}' name='x'><description xmlns='{NS_RTP}' media='audio'/></content>\
             <content xmlns='{NS_JINGLE}' name='a b'/><content xmlns='{NS_JINGLE}'/>"
        );
        for i in 0..100 {
            xml.push_str(&format!("<content xmlns='{NS_JINGLE}' name='m{i}'/>"));
        }
        xml.push_str("</muji>");
        let m = Muji::from_element(&parse(&xml));
        assert_eq!(m.media.len(), MAX_CONTENTS);
        assert_eq!(m.media[0], "audio");
        assert_eq!(&m.media[1..], ["m0", "m1", "m2"]);
    }

    #[test]
    fn a_session_names_its_room() {
        let room = BareJid::new("family@rooms.home.test").expect("a JID");
        let mut j = parse(&format!(
            "<jingle xmlns='{NS_JINGLE}' action='session-initiate' sid='s1'/>"
        ));
        assert_eq!(session_room(&j), None);
        tag_session(&mut j, &room);
        let wire: Element = String::from(&j).parse().expect("ours");
        assert_eq!(session_room(&wire), Some(room));
        let bad = parse(&format!(
            "<jingle xmlns='{NS_JINGLE}'><muji xmlns='{NS_MUJI}' room='@@'/></jingle>"
        ));
        assert_eq!(session_room(&bad), None);
    }
}
