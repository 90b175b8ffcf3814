//! Our XMPP payloads from anyone (a sphere's posts and comments among them): any XML stanza,
//! never a panic (malformed ones are ignored),
//! read as the node reads it (`Inbound`); invitation URIs and spheres invitation links
//! likewise (a link that parses round-trips); Atom entries of the feed (XEP-0277): one read
//! and written again reads the same every time after.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_xmpp::account::InviteUri;
use spheres_xmpp::feed::Entry;
use spheres_xmpp::link::InviteLink;
use spheres_xmpp::muc::Occupant;
use spheres_xmpp::protocol::{Endpoints, SpherePayload};
use spheres_xmpp::{BareJid, Event, Inbound};
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;

fuzz_target!(|data: &[u8]| {
    // The plaintext of an encrypted sphere's message: read as a message, as the node does.
    if let Some(m) = spheres_xmpp::sealed::open_inner(data) {
        let _ = SpherePayload::from_message(&m);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = InviteUri::parse(text);
    if let Ok(link) = InviteLink::parse(text) {
        assert_eq!(InviteLink::parse(&link.to_string()).as_ref(), Ok(&link));
    }
    let Ok(el) = text.parse::<xmpp_parsers::minidom::Element>() else { return };
    if let Ok(e) = Entry::from_element(&el) {
        let once = Entry::from_element(&e.to_element()).expect("our own entry reads");
        assert_eq!(Entry::from_element(&once.to_element()).as_ref(), Ok(&once));
    }
    let Ok(me) = BareJid::new("alice@home.test") else { return };
    if let Ok(m) = Message::try_from(el.clone()) {
        let _ = SpherePayload::from_message(&m);
        let _ = Inbound::from_event(Event::Message(m), &me);
    }
    if let Ok(p) = Presence::try_from(el) {
        let _ = Endpoints::from_presence(&p);
        let _ = Occupant::from_presence(&p);
        let _ = Inbound::from_event(Event::Presence(p), &me);
    }
});
