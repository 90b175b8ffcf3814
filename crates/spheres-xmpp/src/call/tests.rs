use super::*;

/// A browser's audio offer, as Chromium writes one (CRLF line ends); the node's tests use it too.
const AUDIO_OFFER: &str = include_str!("audio-offer.sdp");

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

/// Through XML text, as a stanza travels, arriving from `from`.
fn received_message(m: Message, from: &str) -> Message {
    let text = String::from(&Element::from(m));
    let mut m = Message::try_from(text.parse::<Element>().unwrap()).unwrap();
    m.from = Some(jid(from));
    m
}

fn received_iq(iq: Iq, from: &str) -> Iq {
    let text = String::from(&Element::from(iq.with_id("i1".into())));
    let mut e: Element = text.parse().unwrap();
    e.set_attr(rxml::Namespace::NONE, a!("from"), from);
    Iq::try_from(e).unwrap()
}

/// A proposal as Conversations writes it (XEP-0353 §3.1) rings, audio and video.
#[test]
fn a_proposal_from_another_client_rings() {
    let xml = "<message xmlns='jabber:client' from='bob@home.test/phone' to='alice@home.test' \
        type='chat' id='m1'><propose xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f'>\
        <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>\
        <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></propose>\
        <request xmlns='urn:xmpp:receipts'/><store xmlns='urn:xmpp:hints'/></message>";
    let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
    assert_eq!(
        Ring::from_message(&m),
        Some(Ring::new(
            "ca3cf894-5325-482f",
            RingKind::Propose { video: true }
        ))
    );
    let audio = xml.replace(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/>",
        "",
    );
    let m = Message::try_from(audio.parse::<Element>().unwrap()).unwrap();
    assert_eq!(
        Ring::from_message(&m).map(|r| r.kind),
        Some(RingKind::Propose { video: false })
    );
}

/// What is not a call's ring is nothing: a file transfer's proposal, an id that is no
/// token, a room's message, an unknown element.
#[test]
fn what_is_not_a_call_does_not_ring() {
    let propose = |inner: &str, id: &str, kind: &str| {
        format!(
            "<message xmlns='jabber:client' from='bob@home.test/phone' type='{kind}'>\
             <propose xmlns='urn:xmpp:jingle-message:0' id='{id}'>{inner}</propose></message>"
        )
    };
    let audio = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>";
    let files = "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>";
    let long = "x".repeat(MAX_SID + 1);
    for xml in [
        propose(files, "s1", "chat"),
        propose(audio, "", "chat"),
        propose(audio, "a b", "chat"),
        propose(audio, &long, "chat"),
        propose(audio, "s1", "groupchat"),
        propose(audio, "s1", "error"),
        "<message xmlns='jabber:client'><hangup xmlns='urn:xmpp:jingle-message:0' id='s1'/></message>"
            .into(),
    ] {
        let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(Ring::from_message(&m), None, "{xml}");
    }
}

/// Every ringing message we write reads back the same, kept in archives (a `store` hint);
/// a decline says why.
#[test]
fn ringing_messages_go_both_ways() {
    for kind in [
        RingKind::Propose { video: true },
        RingKind::Propose { video: false },
        RingKind::Ringing,
        RingKind::Proceed,
        RingKind::Accept,
        RingKind::Reject,
        RingKind::Retract,
        RingKind::Finish,
    ] {
        let ring = Ring::new("s-1", kind.clone());
        let m = received_message(
            ring.to_message(jid("bob@home.test"), "m1"),
            "alice@home.test/a",
        );
        assert_eq!(m.type_, MessageType::Chat);
        assert!(m.payloads.iter().any(|p| p.is("store", NS_HINTS)));
        let back = Ring::from_message(&m).unwrap();
        assert_eq!((back.id.as_str(), back.kind), ("s-1", kind.clone()));
        if kind == RingKind::Reject {
            assert_eq!(back.reason, Some(Reason::Decline));
        }
    }
    let mut busy = Ring::new("s-2", RingKind::Reject);
    busy.reason = Some(Reason::Busy);
    let m = received_message(
        busy.to_message(jid("bob@home.test/p"), "m2"),
        "alice@home.test/a",
    );
    assert_eq!(Ring::from_message(&m).unwrap().reason, Some(Reason::Busy));
}

/// A session-initiate we write is a Jingle request that gives back the same description,
/// and its candidates trickle through transport-info.
#[test]
fn a_session_goes_out_and_comes_back() {
    let session = Session::parse_sdp(AUDIO_OFFER).unwrap();
    let iq = session_initiate(
        &full("bob@home.test/phone"),
        "s1",
        &full("alice@home.test/n1"),
        &session,
    );
    let req = JingleRequest::from_iq(&received_iq(iq, "alice@home.test/n1")).unwrap();
    assert_eq!(req.action, Action::SessionInitiate);
    assert_eq!(req.sid, "s1");
    assert_eq!(req.jingle.attr("initiator"), Some("alice@home.test/n1"));
    assert_eq!(req.session().unwrap(), session);

    let answer = session_accept(
        &full("alice@home.test/n1"),
        "s1",
        &full("bob@home.test/phone"),
        &session,
    );
    let req = JingleRequest::from_iq(&received_iq(answer, "bob@home.test/phone")).unwrap();
    assert_eq!(req.action, Action::SessionAccept);
    assert_eq!(req.session().unwrap(), session);

    let cand = Candidate::parse_sdp(
        "candidate:842163049 1 udp 1677729535 198.51.100.7 61665 typ srflx raddr 192.168.1.5 rport 61665 generation 0",
        0,
    )
    .unwrap();
    let t = transport_info(
        &full("bob@home.test/phone"),
        "s1",
        "0",
        (Some("u1Xa"), Some("pw")),
        &cand,
        1,
    );
    let req = JingleRequest::from_iq(&received_iq(t, "alice@home.test/n1")).unwrap();
    assert_eq!(req.action, Action::TransportInfo);
    assert_eq!(req.candidates().unwrap(), vec![("0".to_owned(), cand)]);

    let end = session_terminate(&full("bob@home.test/phone"), "s1", Reason::Decline);
    let req = JingleRequest::from_iq(&received_iq(end, "alice@home.test/n1")).unwrap();
    assert_eq!(
        (req.action, req.reason()),
        (Action::SessionTerminate, Reason::Decline)
    );
}

/// Only an iq set from a device, with a session id, is a Jingle request; unknown actions
/// are requests we answer as unsupported.
#[test]
fn jingle_requests_are_read_strictly() {
    let iq = |from: &str, jingle: &str| {
        let xml =
            format!("<iq xmlns='jabber:client' type='set' id='i9' from='{from}'>{jingle}</iq>");
        Iq::try_from(xml.parse::<Element>().unwrap()).unwrap()
    };
    let ok = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'/>";
    assert!(JingleRequest::from_iq(&iq("bob@home.test/p", ok)).is_some());
    assert!(
        JingleRequest::from_iq(&iq("bob@home.test", ok)).is_none(),
        "from a bare address"
    );
    for bad in [
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate'/>",
        "<jingle xmlns='urn:xmpp:jingle:1' sid='s1'/>",
        "<jingle xmlns='urn:xmpp:jingle:0' action='session-terminate' sid='s1'/>",
        "<query xmlns='jabber:iq:version'/>",
    ] {
        assert!(
            JingleRequest::from_iq(&iq("bob@home.test/p", bad)).is_none(),
            "{bad}"
        );
    }
    let other = JingleRequest::from_iq(&iq(
        "bob@home.test/p",
        "<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='s1'/>",
    ))
    .unwrap();
    assert_eq!(other.action, Action::Other);
    // The answers name the request, and say what XEP-0166 says they say.
    let Iq::Error { id, to, error, .. } = other.unknown_session() else {
        panic!("not an error");
    };
    assert_eq!((id.as_str(), to), ("i9", Some(jid("bob@home.test/p"))));
    assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound);
    assert!(error.other.unwrap().is("unknown-session", NS_JINGLE_ERRORS));
    assert!(matches!(other.ack(), Iq::Result { payload: None, .. }));
}

/// Candidates beyond the bound are refused, not kept.
#[test]
fn a_flood_of_candidates_is_refused() {
    let cand = "<candidate xmlns='urn:xmpp:jingle:transports:ice-udp:1' component='1' \
        foundation='1' generation='0' id='c' ip='192.0.2.1' network='0' port='5000' \
        priority='1' protocol='udp' type='host'/>";
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='i' from='bob@home.test/p'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'>\
         <content creator='initiator' name='0'>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>{}</transport>\
         </content></jingle></iq>",
        cand.repeat(crate::jingle::MAX_ITEMS + 1)
    );
    let req =
        JingleRequest::from_iq(&Iq::try_from(xml.parse::<Element>().unwrap()).unwrap()).unwrap();
    assert_eq!(req.candidates(), Err(JingleError::TooMany("candidates")));
}

/// A conversation's archive tells how each call went: answered and for how long, declined,
/// missed; only the callee answers or declines a call, and a proposal twice is one call.
#[test]
fn the_archive_tells_how_calls_went() {
    let mut records = Vec::new();
    let ring = |id: &str, kind| Ring::new(id, kind);
    // Bob called, we answered at 100, he hung up at 190.
    assert_eq!(
        fold_ring(
            &mut records,
            &ring("a", RingKind::Propose { video: true }),
            false,
            Some(90)
        ),
        Some(0)
    );
    fold_ring(&mut records, &ring("a", RingKind::Proceed), true, Some(100));
    fold_ring(&mut records, &ring("a", RingKind::Finish), false, Some(190));
    // We called, bob declined; bob cannot "answer" for us, we cannot decline for him.
    fold_ring(
        &mut records,
        &ring("b", RingKind::Propose { video: false }),
        true,
        Some(200),
    );
    fold_ring(&mut records, &ring("b", RingKind::Proceed), true, Some(201));
    fold_ring(&mut records, &ring("b", RingKind::Reject), false, Some(202));
    // Bob called and called it off: missed.
    fold_ring(
        &mut records,
        &ring("c", RingKind::Propose { video: false }),
        false,
        Some(300),
    );
    fold_ring(
        &mut records,
        &ring("c", RingKind::Retract),
        false,
        Some(310),
    );
    // The same proposal again is not another call; what follows a call we never saw is nothing.
    assert_eq!(
        fold_ring(
            &mut records,
            &ring("c", RingKind::Propose { video: false }),
            false,
            None
        ),
        None
    );
    assert_eq!(
        fold_ring(&mut records, &ring("zz", RingKind::Finish), false, None),
        None
    );
    let seen: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.mine,
                r.video,
                r.answered,
                r.declined,
                r.seconds,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a", false, true, true, false, Some(90)),
            ("b", true, false, false, true, None),
            ("c", false, false, false, false, None),
        ]
    );
}

/// XEP-0215 as Prosody's mod_turn_external answers: STUN and TURN over UDP and TCP with
/// time-limited credentials; what could not be in a URL is left out.
#[test]
fn relay_servers_read_as_a_browser_takes_them() {
    let xml = "<services xmlns='urn:xmpp:extdisco:2'>\
        <service type='stun' transport='udp' host='192.0.2.1' port='3478'/>\
        <service type='turn' transport='tcp' host='::1' port='3479' username='1700000000' password='c2VjcmV0' expires='2026-12-02T12:00:00Z' restricted='1'/>\
        <service type='turn' transport='udp' host='turn.home.test' username='u' password='p'/>\
        <service type='turn' transport='sctp' host='a.test' port='1'/>\
        <service type='turn' host='a b' port='1'/>\
        <service type='ftp' host='a.test' port='21'/>\
        <service type='stun' host='a.test' port='99999'/>\
        <service type='stun' host='a.test' port='0'/>\
        <service type='turn' transport='udp' host='b.test' port='3478'/>\
        </services>";
    let servers = read_ice_servers(&xml.parse::<Element>().unwrap());
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "stun:192.0.2.1:3478",
            "turn:[::1]:3479?transport=tcp",
            "turn:turn.home.test:3478?transport=udp"
        ]
    );
    assert_eq!(servers[1].username.as_deref(), Some("1700000000"));
    assert_eq!(servers[1].credential.as_deref(), Some("c2VjcmV0"));
    assert_eq!(servers[0].username, None);
}
