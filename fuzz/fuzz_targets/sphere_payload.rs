//! Our XMPP payloads from anyone: any XML stanza, never a panic (malformed ones are ignored);
//! invitation URIs and spheres invitation links likewise (a link that parses round-trips).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_xmpp::account::InviteUri;
use spheres_xmpp::link::InviteLink;
use spheres_xmpp::muc::Occupant;
use spheres_xmpp::protocol::{Endpoints, SpherePayload};
use spheres_xmpp::xmpp_parsers::message::Message;
use spheres_xmpp::xmpp_parsers::presence::Presence;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = InviteUri::parse(text);
    if let Ok(link) = InviteLink::parse(text) {
        assert_eq!(InviteLink::parse(&link.to_string()).as_ref(), Ok(&link));
    }
    let Ok(el) = text.parse::<spheres_xmpp::xmpp_parsers::minidom::Element>() else { return };
    if let Ok(m) = Message::try_from(el.clone()) {
        let _ = SpherePayload::from_message(&m);
    }
    if let Ok(p) = Presence::try_from(el) {
        let _ = Endpoints::from_presence(&p);
        let _ = Occupant::from_presence(&p);
    }
});
