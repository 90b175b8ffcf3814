#![no_main]
//! Any text as a browser's SDP or a peer's Jingle: never panics, and whatever is read goes
//! through the other form and comes back the same (SDP → Jingle XML → SDP).
use libfuzzer_sys::fuzz_target;
use spheres_xmpp::jingle::{Candidate, Role, Session};

fn through_both(s: &Session, by: Role) {
    let again = Session::parse_sdp(&s.to_sdp()).expect("our SDP reads back");
    assert_eq!(&again, s);
    let (contents, group) = s.to_jingle(by);
    let mut jingle = minidom::Element::builder("jingle", spheres_xmpp::jingle::NS_JINGLE).build();
    for c in contents {
        jingle.append_child(c);
    }
    if let Some(g) = group {
        jingle.append_child(g);
    }
    let wire: minidom::Element = String::from(&jingle).parse().expect("our Jingle is XML");
    assert_eq!(&Session::from_jingle(&wire, by).expect("our Jingle reads back"), s);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let by = if data.first().is_some_and(|b| b & 1 == 1) { Role::Responder } else { Role::Initiator };
    if text.starts_with('<') {
        if let Ok(e) = text.parse::<minidom::Element>()
            && let Ok(s) = Session::from_jingle(&e, by)
        {
            through_both(&s, by);
        }
        return;
    }
    if let Ok(c) = Candidate::parse_sdp(&text, 1) {
        assert_eq!(Candidate::from_jingle(&c.to_jingle("x")).expect("ours"), c);
    }
    if let Ok(s) = Session::parse_sdp(&text) {
        through_both(&s, by);
    }
});
