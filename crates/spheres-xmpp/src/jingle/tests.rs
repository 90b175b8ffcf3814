//! SDP as Chromium and Firefox write it, through Jingle and back; what a hostile peer or page
//! could send.

use super::*;

/// An offer as Chromium writes one for a call with audio and video (the layout and the
/// attributes of its SDP; keys, addresses and ids made up).
const CHROMIUM_OFFER: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS stream1\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=candidate:1467250027 1 udp 2122260223 192.168.1.20 46243 typ host generation 0 network-id 1\r
a=candidate:435653019 1 tcp 1845501695 203.0.113.7 9 typ srflx raddr 192.168.1.20 rport 0 tcptype active generation 0 network-id 1\r
a=ice-ufrag:Oy7P\r
a=ice-pwd:3F8dI6Cw6rbnc8A8yo2Ls1Ze\r
a=ice-options:trickle\r
a=fingerprint:sha-256 5C:6E:6B:0E:5F:9D:41:EF:7E:4B:1F:55:6A:2E:9C:AD:3F:0D:12:EE:87:7A:5B:C3:6D:42:10:9E:51:A0:23:8B\r
a=setup:actpass\r
a=mid:0\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=sendrecv\r
a=msid:stream1 track-audio\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:63 red/48000/2\r
a=fmtp:63 111/111\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:13 CN/8000\r
a=rtpmap:110 telephone-event/48000\r
a=rtpmap:126 telephone-event/8000\r
a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6\r
a=ssrc:3570614608 msid:stream1 track-audio\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97 45 46\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=ice-ufrag:Oy7P\r
a=ice-pwd:3F8dI6Cw6rbnc8A8yo2Ls1Ze\r
a=ice-options:trickle\r
a=fingerprint:sha-256 5C:6E:6B:0E:5F:9D:41:EF:7E:4B:1F:55:6A:2E:9C:AD:3F:0D:12:EE:87:7A:5B:C3:6D:42:10:9E:51:A0:23:8B\r
a=setup:actpass\r
a=mid:1\r
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:13 urn:3gpp:video-orientation\r
a=sendrecv\r
a=msid:stream1 track-video\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 goog-remb\r
a=rtcp-fb:96 transport-cc\r
a=rtcp-fb:96 ccm fir\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtpmap:97 rtx/90000\r
a=fmtp:97 apt=96\r
a=rtpmap:45 AV1/90000\r
a=rtcp-fb:45 nack\r
a=fmtp:45 level-idx=5;profile=0;tier=0\r
a=rtpmap:46 rtx/90000\r
a=fmtp:46 apt=45\r
a=ssrc-group:FID 2231627014 632943048\r
a=ssrc:2231627014 cname:4TOk42mSjXCkVIa6\r
a=ssrc:2231627014 msid:stream1 track-video\r
a=ssrc:632943048 cname:4TOk42mSjXCkVIa6\r
a=ssrc:632943048 msid:stream1 track-video\r
";

/// An answer as Firefox writes one: the fingerprint at the session's level, the DTLS role in
/// each section, `a=rtcp-fb:* ...`, a section it does not send.
const FIREFOX_ANSWER: &str = "v=0\r
o=mozilla...THIS_IS_SDPARTA-99.0 7281396183839624473 0 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
a=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r
a=group:BUNDLE 0 1\r
a=ice-options:trickle\r
a=msid-semantic:WMS *\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r
c=IN IP4 0.0.0.0\r
a=sendrecv\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=fmtp:111 maxplaybackrate=48000;stereo=1;useinbandfec=1\r
a=ice-pwd:b3a5fd3f6ec32b2b1e6a1ef1c2a6d1f0\r
a=ice-ufrag:6a1e4b2f\r
a=mid:0\r
a=rtcp-mux\r
a=rtpmap:111 opus/48000/2\r
a=rtpmap:0 PCMU/8000\r
a=setup:active\r
a=ssrc:1414141414 cname:{5e0d0a6b-0c1c-4f1e-9d8a-2b7c3d4e5f60}\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
c=IN IP4 0.0.0.0\r
a=recvonly\r
a=fmtp:96 max-fs=12288;max-fr=60\r
a=ice-pwd:b3a5fd3f6ec32b2b1e6a1ef1c2a6d1f0\r
a=ice-ufrag:6a1e4b2f\r
a=mid:1\r
a=rtcp-fb:* nack\r
a=rtcp-fb:96 nack pli\r
a=rtcp-mux\r
a=rtpmap:96 VP8/90000\r
a=setup:active\r
";

/// Through XML text, as a stanza travels.
fn over_the_wire(contents: Vec<Element>, group: Option<Element>) -> Element {
    let mut jingle = Element::builder("jingle", NS_JINGLE)
        .attr(a!("action"), "session-initiate")
        .attr(a!("sid"), "s1")
        .build();
    for c in contents {
        jingle.append_child(c);
    }
    if let Some(g) = group {
        jingle.append_child(g);
    }
    let text = String::from(&jingle);
    text.parse().expect("our Jingle is XML")
}

#[test]
fn chromiums_offer_goes_through_jingle_and_comes_back_whole() {
    let offer = Session::parse_sdp(CHROMIUM_OFFER).unwrap();
    assert_eq!(offer.bundle, ["0", "1"]);
    let [audio, video] = &offer.media[..] else {
        panic!("{offer:?}")
    };
    assert_eq!((audio.kind.as_str(), audio.mid.as_str()), ("audio", "0"));
    assert_eq!(audio.payloads.len(), 8);
    let opus = &audio.payloads[0];
    assert_eq!(
        (opus.id, opus.name.as_str(), opus.clockrate, opus.channels),
        (111, "opus", 48000, 2)
    );
    assert_eq!(
        opus.params,
        [
            ("minptime".into(), "10".into()),
            ("useinbandfec".into(), "1".into())
        ]
    );
    assert_eq!(opus.feedback, [("transport-cc".into(), String::new())]);
    assert_eq!(audio.candidates.len(), 2);
    assert_eq!(
        audio.candidates[1].related,
        Some(("192.168.1.20".parse().unwrap(), 0))
    );
    assert_eq!(audio.candidates[1].tcptype.as_deref(), Some("active"));
    assert_eq!(
        video.source_groups,
        [("FID".into(), vec![2231627014, 632943048])]
    );
    assert_eq!(video.payloads[0].feedback.len(), 5);
    assert!(
        video.payloads[0]
            .feedback
            .contains(&("ccm".into(), "fir".into()))
    );
    assert_eq!(video.setup.as_deref(), Some("actpass"));

    let (contents, group) = offer.to_jingle(Role::Initiator);
    let jingle = over_the_wire(contents, group);
    let back = Session::from_jingle(&jingle, Role::Initiator).unwrap();
    assert_eq!(back, offer);
    // And as SDP again, for the browser at the other end.
    assert_eq!(Session::parse_sdp(&back.to_sdp()).unwrap(), offer);
}

#[test]
fn firefoxs_answer_takes_its_session_level_values_into_each_section() {
    let answer = Session::parse_sdp(FIREFOX_ANSWER).unwrap();
    for m in &answer.media {
        assert_eq!(m.fingerprint.as_ref().unwrap().0, "sha-256");
        assert_eq!(m.setup.as_deref(), Some("active"));
        assert_eq!(m.ufrag.as_deref(), Some("6a1e4b2f"));
    }
    // `*` gives the feedback to every payload type of the section.
    let vp8 = &answer.media[1].payloads[0];
    assert_eq!(
        vp8.feedback,
        [
            ("nack".into(), String::new()),
            ("nack".into(), "pli".into())
        ]
    );
    assert_eq!(answer.media[1].direction, Direction::RecvOnly);
    // An answer: the responder's; receiving only, so the initiator alone sends video.
    let (contents, group) = answer.to_jingle(Role::Responder);
    assert_eq!(contents[1].attr("senders"), Some("initiator"));
    let jingle = over_the_wire(contents, group);
    assert_eq!(
        Session::from_jingle(&jingle, Role::Responder).unwrap(),
        answer
    );
}

#[test]
fn what_we_write_a_browsers_parser_reads() {
    // Mozilla's webrtc-sdp (Firefox's parser), strict: a warning fails too.
    for text in [CHROMIUM_OFFER, FIREFOX_ANSWER] {
        let ours = Session::parse_sdp(text).unwrap().to_sdp();
        let theirs =
            webrtc_sdp::parse_sdp(&ours, true).unwrap_or_else(|e| panic!("{e:?} in\n{ours}"));
        assert_eq!(theirs.media.len(), 2);
        for m in &theirs.media {
            assert!(
                m.get_attribute(webrtc_sdp::attribute_type::SdpAttributeType::Fingerprint)
                    .is_some()
            );
            assert!(
                m.get_attribute(webrtc_sdp::attribute_type::SdpAttributeType::IceUfrag)
                    .is_some()
            );
        }
    }
}

#[test]
fn senders_are_roles_and_directions_are_the_authors() {
    use Direction::*;
    for (d, by, senders) in [
        (SendRecv, Role::Initiator, "both"),
        (Inactive, Role::Responder, "none"),
        (SendOnly, Role::Initiator, "initiator"),
        (SendOnly, Role::Responder, "responder"),
        (RecvOnly, Role::Initiator, "responder"),
        (RecvOnly, Role::Responder, "initiator"),
    ] {
        assert_eq!(d.senders(by), senders, "{d:?} by {by:?}");
        assert_eq!(Direction::from_senders(senders, by).unwrap(), d);
    }
    assert!(Direction::from_senders("everyone", Role::Initiator).is_err());
}

#[test]
fn a_trickled_candidate_goes_both_ways() {
    let line = "candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 192.168.1.20 rport 61665 generation 0 ufrag Oy7P network-id 1 network-cost 10";
    let c = Candidate::parse_sdp(line, 1).unwrap();
    let e = c.to_jingle("c1");
    assert_eq!(e.attr("rel-addr"), Some("192.168.1.20"));
    let back = Candidate::from_jingle(&e).unwrap();
    assert_eq!(back, c);
    assert_eq!(Candidate::parse_sdp(&back.to_sdp(), 1).unwrap(), c);
    // IPv6, and what webrtc-sdp makes of ours.
    let v6 = Candidate::parse_sdp(
        "a=candidate:1 1 UDP 2122262783 2001:db8::5 50000 typ host",
        1,
    )
    .unwrap();
    assert_eq!(v6.protocol, "udp");
    webrtc_sdp::parse_sdp_line(&format!("a={}", v6.to_sdp()), 0).unwrap();
}

#[test]
fn hostile_descriptions_are_refused_with_a_reason() {
    let cases: Vec<(String, &str)> = vec![
        ("x".repeat(MAX_SDP + 1), "too long"),
        (
            "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n".into(),
            "only audio and video",
        ),
        ("m=audio 9 RTP 300\r\n".into(), "not a number"),
        (
            "m=audio 9 RTP 111\r\na=rtpmap:112 opus/48000\r\na=mid:0\r\n".into(),
            "not in the m= line",
        ),
        (
            "m=audio 9 RTP 111\r\na=fingerprint:sha-256 zz:zz\r\n".into(),
            "hex bytes",
        ),
        ("m=audio 9 RTP 111\r\na=setup:holdconn\r\n".into(), "setup"),
        ("m=audio 9 RTP 111\r\na=ice-ufrag:a b\r\n".into(), "ufrag"),
        (
            "m=audio 9 RTP 111\r\na=candidate:1 1 udp 1 300.0.0.1 9 typ host\r\n".into(),
            "address",
        ),
        (
            "m=audio 9 RTP 111\r\na=candidate:1 1 sctp 1 10.0.0.1 9 typ host\r\n".into(),
            "protocol",
        ),
        (
            "m=audio 9 RTP 111\r\na=rtpmap:111 opus/48000\r\n".into(),
            "without a mid",
        ),
        ("garbage\r\n".into(), "type=value"),
        // From an attack review: a spreading feedback line; a rejected section; a mid twice;
        // a candidate line of any length.
        (
            format!(
                "m=audio 9 RTP {}\r\na=mid:a\r\n{}{}",
                (0..128)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                (0..128)
                    .map(|i| format!("a=rtpmap:{i} x/1\r\n"))
                    .collect::<String>(),
                format!("a=rtcp-fb:* {} {}\r\n", "t".repeat(1000), "s".repeat(1000)).repeat(20)
            ),
            "too long",
        ),
        ("m=video 0 RTP 96\r\n".into(), "port 0"),
        (
            "m=audio 9 RTP 0\r\na=mid:a\r\nm=audio 9 RTP 0\r\na=mid:a\r\n".into(),
            "twice",
        ),
        (
            format!("m=audio 9 RTP 0\r\na=candidate:{}\r\n", "1 ".repeat(5000)),
            "too long",
        ),
        // Found by the fuzz target: U+FFFF, which XML cannot carry (its writer panicked).
        (
            "m=audio 9 RTP 111\r\na=fmtp:111 k=\u{ffff}\r\n".into(),
            "parameter",
        ),
        (
            "m=audio 9 RTP 111\r\na=ssrc:1 cname:\u{fffe}\r\n".into(),
            "source attribute",
        ),
        (
            "m=audio 9 RTP 0\r\na=mid:a\r\n".repeat(MAX_MEDIA + 1),
            "media sections",
        ),
        (
            format!(
                "m=audio 9 RTP 0\r\na=mid:a\r\n{}",
                "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(MAX_ITEMS + 1)
            ),
            "candidates",
        ),
        (
            format!(
                "m=audio 9 RTP 0\r\na=mid:a\r\na=fmtp:0 {}\r\n",
                "k=v;".repeat(MAX_PARAMS + 1)
            ),
            "format parameters",
        ),
    ];
    for (sdp, why) in cases {
        let e = Session::parse_sdp(&sdp).expect_err(why);
        assert!(e.to_string().contains(why), "{why:?}: {e}");
    }
    // Jingle from a peer: a file transfer is not a call; no transport; a bad candidate.
    for (xml, why) in [
        // From an attack review: a line break by character reference would be a line of SDP.
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'><parameter name='cname' value='x&#13;&#10;m=application 9 X 0'/></source></description><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle>",
            "source parameter",
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/></content></jingle>",
            "RTP description",
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></content></jingle>",
            "ICE-UDP",
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a' senders='all'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle>",
            "senders",
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'><candidate component='1' foundation='1' generation='0' id='x' ip='10.0.0.1' port='99999' priority='1' protocol='udp' type='host'/></transport></content></jingle>",
            "port",
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a b'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle>",
            "name",
        ),
    ] {
        let e: Element = xml.parse().unwrap();
        let err = Session::from_jingle(&e, Role::Initiator).expect_err(why);
        assert!(err.to_string().contains(why), "{why:?}: {err}");
    }
}

/// The SDP of a known session, every byte changed in turn and cut at every length: an error or
/// a session, never a panic, and what we then write, as SDP and as Jingle, is read back the
/// same (the property `fuzz/fuzz_targets/jingle.rs` checks on any input).
#[test]
fn mangled_descriptions_never_panic() {
    let base = CHROMIUM_OFFER.as_bytes();
    let step = base.len() / 400 + 1;
    for i in (0..base.len()).step_by(step) {
        for b in [b' ', b':', b'\n', b'=', b'9', 0xff] {
            let mut m = base.to_vec();
            m[i] = b;
            let text = String::from_utf8_lossy(&m);
            if let Ok(s) = Session::parse_sdp(&text) {
                assert_eq!(Session::parse_sdp(&s.to_sdp()).unwrap(), s);
                let (contents, group) = s.to_jingle(Role::Responder);
                let back = Session::from_jingle(&over_the_wire(contents, group), Role::Responder);
                assert_eq!(back.unwrap(), s);
            }
        }
        let _ = Session::parse_sdp(&String::from_utf8_lossy(&base[..i]));
    }
}
