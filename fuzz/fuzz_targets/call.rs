#![no_main]
//! Any XML as a call's ringing element, a room call presence or a Jingle request (what anyone
//! can send to our account): never panics; a ringing element or a call presence we read, we
//! write back the same; a request we read gives its session, candidates, reason and room or
//! an error, and our answers serialize.
use libfuzzer_sys::fuzz_target;
use spheres_xmpp::call::muji::{self, Muji};
use spheres_xmpp::call::{JingleRequest, Ring};
use spheres_xmpp::{Element, Iq, Jid, Message};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(e) = text.parse::<Element>() else {
        return;
    };
    if let Some(ring) = Ring::from_element(&e) {
        let m = ring.to_message(Jid::new("bob@home.test").expect("a JID"), "m1");
        let wire: Element = String::from(&Element::from(m)).parse().expect("ours is XML");
        let back = Message::try_from(wire).expect("ours is a message");
        let back = Ring::from_message(&back).expect("ours reads back");
        assert_eq!((back.id, back.kind), (ring.id, ring.kind));
    }
    // A room presence's call payload (XEP-0272): what we read, we write back the same.
    let m = Muji::from_element(&e);
    let wire: Element = String::from(&m.to_element()).parse().expect("ours is XML");
    assert_eq!(Muji::from_element(&wire), m);
    let _ = muji::session_room(&e);
    let iq = Iq::Set {
        from: Some(Jid::new("alice@home.test/phone").expect("a JID")),
        to: None,
        id: "i1".into(),
        payload: e,
    };
    if let Some(req) = JingleRequest::from_iq(&iq) {
        let _ = req.session();
        let _ = req.candidates();
        let _ = req.reason();
        let _ = req.room();
        for answer in [req.ack(), req.unknown_session(), req.out_of_order(), req.bad_request("x"), req.tie_break()] {
            let _ = String::from(&Element::from(answer));
        }
    }
});
