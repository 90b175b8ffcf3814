//! The calls' state machine, both ends driven by hand: what goes out is read back as the
//! other side reads it (through XML text).

use super::*;
use spheres_xmpp::Element;

const OFFER: &str = include_str!("../../../spheres-xmpp/src/call/audio-offer.sdp");

const CANDIDATE: &str = "candidate:1 1 udp 2122260223 192.168.1.5 50000 typ host generation 0";

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

const ALICE: &str = "alice@home.test/node1";
const BOB: &str = "bob@home.test/phone";

/// A message we send, as its addressee reads it: (to, ring).
fn ring_of(o: &Out) -> Option<(String, Ring)> {
    let Out::Message(m) = o else { return None };
    let text = String::from(&Element::from(m.clone()));
    let m = Message::try_from(text.parse::<Element>().unwrap()).unwrap();
    let ring = Ring::from_message(&m)?;
    Some((m.to.unwrap().to_string(), ring))
}

/// A request we send, as `to`'s device reads it, coming from `from`.
fn request_of(o: &Out, from: &str) -> Option<(String, JingleRequest)> {
    let Out::Request(_, iq) = o else { return None };
    let text = String::from(&Element::from(iq.clone().with_id("q1".into())));
    let text = text.replacen("<iq ", &format!("<iq from='{from}' "), 1);
    let e: Element = text.parse().unwrap();
    let to = e.attr("to").unwrap().to_owned();
    Some((to, JingleRequest::from_iq(&Iq::try_from(e).unwrap())?))
}

fn answer_of(o: &Out) -> Option<&Iq> {
    match o {
        Out::Answer(iq) => Some(iq),
        _ => None,
    }
}

fn is_error(out: &[Out]) -> bool {
    matches!(out.iter().find_map(answer_of), Some(Iq::Error { .. }))
}

/// Alice calls Bob, both nodes driven by hand, from the first ring to the hang-up.
#[test]
fn a_call_from_ring_to_hang_up() {
    let (mut a, mut b) = (Calls::default(), Calls::default());
    let (alice, bob) = (full(ALICE), full(BOB));
    // Alice rings every device of Bob's.
    let out = a
        .start("s1".into(), bare("bob@home.test"), true, "tab-a", 100)
        .unwrap();
    let (to, ring) = ring_of(&out[0]).unwrap();
    assert_eq!(
        (to.as_str(), &ring.kind),
        ("bob@home.test", &RingKind::Propose { video: true })
    );
    assert_eq!(a.get("s1").unwrap().state, CallState::Calling);

    // Bob's phone rings, and says so.
    let (out, changed) = b.on_ring(alice.clone(), ring, &bob, true, 101);
    assert!(changed);
    let (to, ringing) = ring_of(&out[0]).unwrap();
    assert_eq!(
        (to.as_str(), ringing.kind.clone()),
        (ALICE, RingKind::Ringing)
    );
    let call = b.get("s1").unwrap();
    assert_eq!(
        (call.state, call.outgoing, call.video),
        (CallState::Ringing, false, true)
    );
    assert!(!a.on_ring(bob.clone(), ringing, &alice, false, 101).1);

    // Bob answers: his other devices hear it, Alice's device is told to go on.
    let out = b
        .answer("s1", "tab-b", &bare("bob@home.test"), 105)
        .unwrap();
    let sent: Vec<_> = out.iter().filter_map(ring_of).collect();
    assert_eq!(sent[0].0, "bob@home.test");
    assert_eq!(sent[0].1.kind, RingKind::Accept);
    assert_eq!(sent[1].0, ALICE);
    assert_eq!(sent[1].1.kind, RingKind::Proceed);
    let (_, changed) = a.on_ring(bob.clone(), sent[1].1.clone(), &alice, false, 105);
    assert!(changed);
    assert_eq!(a.get("s1").unwrap().state, CallState::Connecting);

    // Alice's page gathers a candidate before its offer is out: it waits for the offer.
    assert!(
        a.candidate("s1", "tab-a", "0", CANDIDATE)
            .unwrap()
            .is_empty()
    );
    // Only the page that placed the call speaks for it.
    assert!(matches!(
        a.describe("s1", "tab-x", "offer", OFFER, &alice),
        Err(NodeError::Forbidden(_))
    ));
    let out = a.describe("s1", "tab-a", "offer", OFFER, &alice).unwrap();
    assert_eq!(out.len(), 2, "the offer, then the candidate that waited");
    let (to, initiate) = request_of(&out[0], ALICE).unwrap();
    assert_eq!(
        (to.as_str(), initiate.action),
        (BOB, Action::SessionInitiate)
    );
    let (_, trickled) = request_of(&out[1], ALICE).unwrap();
    assert_eq!(trickled.action, Action::TransportInfo);

    // Bob's node gives his page the offer and the candidate, as SDP.
    let (out, changed) = b.on_jingle(&initiate, false, 106);
    assert!(changed && matches!(answer_of(&out[0]), Some(Iq::Result { .. })));
    let (out, _) = b.on_jingle(&trickled, false, 106);
    assert!(matches!(answer_of(&out[0]), Some(Iq::Result { .. })));
    let call = b.get("s1").unwrap();
    let remote = call.remote.unwrap();
    assert_eq!(remote.kind, "offer");
    assert_eq!(
        Session::parse_sdp(&remote.sdp).unwrap(),
        Session::parse_sdp(OFFER).unwrap()
    );
    assert_eq!(
        call.candidates,
        vec![RemoteCandidate {
            mid: "0".into(),
            candidate: CANDIDATE.into()
        }]
    );

    // Bob's answer goes back; Alice's page gets it.
    let out = b.describe("s1", "tab-b", "answer", OFFER, &bob).unwrap();
    let (_, accept) = request_of(&out[0], BOB).unwrap();
    assert_eq!(accept.action, Action::SessionAccept);
    assert_eq!(b.get("s1").unwrap().state, CallState::Active);
    let (_, changed) = a.on_jingle(&accept, false, 107);
    assert!(changed);
    let call = a.get("s1").unwrap();
    assert_eq!(
        (call.state, call.remote.unwrap().kind.as_str()),
        (CallState::Active, "answer")
    );

    // Alice hangs up: Bob's call ends as hung up by her.
    let out = a.hang_up("s1", &bare("alice@home.test"), 200).unwrap();
    let (_, terminate) = request_of(&out[0], ALICE).unwrap();
    assert_eq!(
        (terminate.action, terminate.reason()),
        (Action::SessionTerminate, Reason::Success)
    );
    let (to, finish) = ring_of(&out[1]).unwrap();
    assert_eq!((to.as_str(), finish.kind), (BOB, RingKind::Finish));
    assert_eq!(a.get("s1").unwrap().end, Some(CallEnd::HungUp));
    b.on_jingle(&terminate, false, 200);
    let call = b.get("s1").unwrap();
    assert_eq!(
        (call.state, call.end, call.ended),
        (CallState::Ended, Some(CallEnd::TheyHungUp), Some(200))
    );
    // Hanging up twice is nothing.
    assert!(
        a.hang_up("s1", &bare("alice@home.test"), 201)
            .unwrap()
            .is_empty()
    );
}

/// A stranger's call rings nothing and gets no answer at all (an answer would tell them we
/// are online); a stranger's Jingle gets the answer an unknown session gets.
#[test]
fn strangers_do_not_ring() {
    let mut b = Calls::default();
    let bob = full(BOB);
    let (out, changed) = b.on_ring(
        full("mallory@evil.test/x"),
        Ring::new("s1", RingKind::Propose { video: false }),
        &bob,
        false,
        1,
    );
    assert!(out.is_empty() && !changed && b.list().is_empty());
    let initiate = signal::session_initiate(
        &bob,
        "s2",
        &full("mallory@evil.test/x"),
        &Session::parse_sdp(OFFER).unwrap(),
    );
    let req = {
        let o = Out::Request("s2".into(), initiate);
        request_of(&o, "mallory@evil.test/x").unwrap().1
    };
    let (out, changed) = b.on_jingle(&req, false, 1);
    assert!(!changed && is_error(&out) && b.list().is_empty());
    let Some(Iq::Error { error, .. }) = out.iter().find_map(answer_of) else {
        panic!()
    };
    assert!(
        error
            .other
            .as_ref()
            .unwrap()
            .is("unknown-session", spheres_xmpp::call::NS_JINGLE_ERRORS)
    );
}

/// Once a call rings, only the device that rang acts on it: another device of the same
/// person, or anyone else, gets unknown-session; candidates from the peer are bounded.
#[test]
fn only_the_ringing_device_acts_on_a_call() {
    let mut b = Calls::default();
    let bob = full(BOB);
    let alice = full(ALICE);
    b.on_ring(
        alice.clone(),
        Ring::new("s1", RingKind::Propose { video: false }),
        &bob,
        true,
        1,
    );
    b.answer("s1", "t", &bare("bob@home.test"), 2).unwrap();
    let session = Session::parse_sdp(OFFER).unwrap();
    for from in ["alice@home.test/other", "mallory@evil.test/x"] {
        let o = Out::Request(
            "s1".into(),
            signal::session_initiate(&bob, "s1", &full(from), &session),
        );
        let (_, req) = request_of(&o, from).unwrap();
        let (out, changed) = b.on_jingle(&req, true, 3);
        assert!(!changed && is_error(&out), "{from}");
        assert!(b.get("s1").unwrap().remote.is_none());
    }
    // Our own echo (the server copies what we send to our address back) is nothing.
    assert!(
        !b.on_ring(
            bob.clone(),
            Ring::new("s1", RingKind::Retract),
            &bob,
            true,
            3
        )
        .1
    );

    // The peer may trickle, up to the bound.
    let o = Out::Request(
        "s1".into(),
        signal::session_initiate(&bob, "s1", &alice, &session),
    );
    let (_, req) = request_of(&o, ALICE).unwrap();
    assert!(b.on_jingle(&req, true, 3).1);
    let cand = Candidate::parse_sdp(CANDIDATE, 0).unwrap();
    for i in 0..(MAX_CANDIDATES + 10) {
        let o = Out::Request(
            "s1".into(),
            signal::transport_info(&bob, "s1", "0", (None, None), &cand, i),
        );
        let (_, req) = request_of(&o, ALICE).unwrap();
        b.on_jingle(&req, true, 4);
    }
    assert_eq!(b.get("s1").unwrap().candidates.len(), MAX_CANDIDATES);
}

/// Rings that end before an answer: called off (missed here), answered on another device
/// of ours, declined, no answer in a minute, busy.
#[test]
fn calls_that_end_before_an_answer() {
    let bob = full(BOB);
    let alice = full(ALICE);
    let propose = |id: &str| Ring::new(id, RingKind::Propose { video: false });

    let mut b = Calls::default();
    b.on_ring(alice.clone(), propose("s1"), &bob, true, 1);
    // A retraction from someone else is nothing.
    assert!(
        !b.on_ring(
            full("alice@home.test/other"),
            Ring::new("s1", RingKind::Retract),
            &bob,
            true,
            2
        )
        .1
    );
    assert!(
        b.on_ring(
            alice.clone(),
            Ring::new("s1", RingKind::Retract),
            &bob,
            true,
            2
        )
        .1
    );
    assert_eq!(b.get("s1").unwrap().end, Some(CallEnd::Missed));

    b.on_ring(alice.clone(), propose("s2"), &bob, true, 3);
    assert!(
        b.on_ring(
            full("bob@home.test/laptop"),
            Ring::new("s2", RingKind::Accept),
            &bob,
            true,
            4
        )
        .1
    );
    assert_eq!(b.get("s2").unwrap().end, Some(CallEnd::Elsewhere));
    assert!(matches!(
        b.answer("s2", "t", &bare("bob@home.test"), 5),
        Err(NodeError::Conflict(_))
    ));

    b.on_ring(alice.clone(), propose("s3"), &bob, true, 10);
    let out = b.hang_up("s3", &bare("bob@home.test"), 11).unwrap();
    let sent: Vec<_> = out.iter().filter_map(ring_of).collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(_, r)| r.kind == RingKind::Reject));
    assert_eq!(sent[1].0, ALICE);
    assert_eq!(b.get("s3").unwrap().end, Some(CallEnd::DeclinedHere));

    // A minute of ringing: missed here; there, the caller calls it off by itself.
    b.on_ring(alice.clone(), propose("s4"), &bob, true, 20);
    assert!(!b.tick(20 + RING_SECS - 1).1);
    assert!(b.tick(20 + RING_SECS).1);
    assert_eq!(b.get("s4").unwrap().end, Some(CallEnd::Missed));
    let mut a = Calls::default();
    a.start("s5".into(), bare("bob@home.test"), false, "t", 30)
        .unwrap();
    let (out, changed) = a.tick(30 + RING_SECS);
    assert!(changed);
    let (to, r) = ring_of(&out[0]).unwrap();
    assert_eq!((to.as_str(), r.kind), ("bob@home.test", RingKind::Retract));
    assert_eq!(a.get("s5").unwrap().end, Some(CallEnd::NoAnswer));

    // Declined, or busy, there.
    a.start("s6".into(), bare("bob@home.test"), false, "t", 40)
        .unwrap();
    let mut busy = Ring::new("s6", RingKind::Reject);
    busy.reason = Some(Reason::Busy);
    // Only Bob may decline Bob's call.
    assert!(
        !a.on_ring(full("carol@home.test/x"), busy.clone(), &alice, false, 41)
            .1
    );
    assert!(a.on_ring(bob.clone(), busy, &alice, false, 41).1);
    assert_eq!(a.get("s6").unwrap().end, Some(CallEnd::Busy));

    // A call while in a call: the page is told to hang up first; a ring is answered busy.
    a.start("s7".into(), bare("bob@home.test"), false, "t", 50)
        .unwrap();
    assert!(matches!(
        a.start("s8".into(), bare("carol@home.test"), false, "t", 50),
        Err(NodeError::Conflict(_))
    ));
    let (out, changed) = a.on_ring(full("carol@home.test/x"), propose("s9"), &alice, true, 51);
    assert!(!changed);
    let (_, r) = ring_of(&out[0]).unwrap();
    assert_eq!((r.kind, r.reason), (RingKind::Reject, Some(Reason::Busy)));
}

/// A client that calls with a session-initiate alone (no proposal) rings too, with its offer
/// ready; declining it terminates the session.
#[test]
fn a_session_without_a_proposal_rings() {
    let mut b = Calls::default();
    let bob = full(BOB);
    let o = Out::Request(
        "d1".into(),
        signal::session_initiate(
            &bob,
            "d1",
            &full(ALICE),
            &Session::parse_sdp(OFFER).unwrap(),
        ),
    );
    let (_, req) = request_of(&o, ALICE).unwrap();
    let (out, changed) = b.on_jingle(&req, true, 1);
    assert!(changed && matches!(answer_of(&out[0]), Some(Iq::Result { .. })));
    let (_, info) = request_of(&out[1], BOB).unwrap();
    assert_eq!(info.action, Action::SessionInfo);
    let call = b.get("d1").unwrap();
    assert_eq!(
        (call.state, call.remote.map(|r| r.kind)),
        (CallState::Ringing, Some("offer".to_owned()))
    );
    // Answering sends nothing yet (the page's answer is the session-accept).
    assert!(
        b.answer("d1", "t", &bare("bob@home.test"), 2)
            .unwrap()
            .is_empty()
    );
    let out = b.describe("d1", "t", "answer", OFFER, &bob).unwrap();
    assert_eq!(
        request_of(&out[0], BOB).unwrap().1.action,
        Action::SessionAccept
    );

    let o = Out::Request(
        "d2".into(),
        signal::session_initiate(
            &bob,
            "d2",
            &full("carol@home.test/c"),
            &Session::parse_sdp(OFFER).unwrap(),
        ),
    );
    let (_, req) = request_of(&o, "carol@home.test/c").unwrap();
    let (out, _) = b.on_jingle(&req, true, 3);
    // Busy: in Alice's call.
    let (_, end) = request_of(&out[1], BOB).unwrap();
    assert_eq!(end.reason(), Reason::Busy);
}

/// What the page sends is checked: a description that is no SDP, a candidate that is none,
/// a tab id that is not one.
#[test]
fn the_pages_input_is_checked() {
    let mut a = Calls::default();
    let alice = full(ALICE);
    assert!(matches!(
        a.start("s1".into(), bare("bob@home.test"), false, "<script>", 1),
        Err(NodeError::BadInput(_))
    ));
    a.start("s1".into(), bare("bob@home.test"), false, "t", 1)
        .unwrap();
    a.on_ring(
        full(BOB),
        Ring::new("s1", RingKind::Proceed),
        &alice,
        false,
        2,
    );
    assert!(matches!(
        a.describe("s1", "t", "offer", "v=0\r\nm=application 9 x\r\n", &alice),
        Err(NodeError::BadInput(_))
    ));
    assert!(matches!(
        a.describe("s1", "t", "answer", OFFER, &alice),
        Err(NodeError::Conflict(_))
    ));
    assert!(matches!(
        a.candidate("s1", "t", "0", "candidate:x"),
        Err(NodeError::BadInput(_))
    ));
    assert!(matches!(
        a.describe("nope", "t", "offer", OFFER, &alice),
        Err(NodeError::NotFound(_))
    ));
}

/// A hostile contact cannot fill every slot: one call rings from one person however it
/// started, and ringing calls leave room for ours; a call whose other device goes offline
/// ends; candidates past the bound change nothing.
#[test]
fn one_person_cannot_fill_the_calls() {
    let mut b = Calls::default();
    let bob = full(BOB);
    let session = Session::parse_sdp(OFFER).unwrap();
    let mut rang = 0;
    for i in 0..MAX_LIVE + 2 {
        let sid = format!("d{i}");
        let o = Out::Request(
            sid.clone(),
            signal::session_initiate(&bob, &sid, &full(ALICE), &session),
        );
        let (_, req) = request_of(&o, ALICE).unwrap();
        if b.on_jingle(&req, true, 1).1 {
            rang += 1;
        }
    }
    assert_eq!(rang, 1, "one call rings from alice");
    // Others' calls still ring, up to the bound for ringing calls, and we can still call.
    for i in 0..MAX_LIVE {
        b.on_ring(
            full(&format!("p{i}@home.test/x")),
            Ring::new(format!("p{i}"), RingKind::Propose { video: false }),
            &bob,
            true,
            2,
        );
    }
    assert_eq!(
        b.list()
            .iter()
            .filter(|c| c.state == CallState::Ringing)
            .count(),
        MAX_RINGING
    );
    b.start("mine".into(), bare("carol@home.test"), false, "t", 3)
        .unwrap();
    // Alice's device goes offline: her call is a missed one.
    assert!(b.peer_gone(&full(ALICE), 4));
    assert_eq!(b.get("d0").unwrap().end, Some(CallEnd::Missed));
    assert!(!b.peer_gone(&full(ALICE), 5));
}

const ROOM: &str = "family@rooms.home.test";
const CAROL: &str = "carol@home.test/node3";

/// Whether an error answer is the one for a session nobody knows (what a stranger gets).
fn unknown(out: &[Out]) -> bool {
    matches!(out.iter().find_map(answer_of), Some(Iq::Error { error, .. })
        if error.other.as_ref().is_some_and(|e| e.name() == "unknown-session"))
}

/// Three members in a sphere's call, two nodes driven by hand: of two participants the one
/// who comes opens the leg; the leg's offer goes out tagged with the room, and
/// the other node takes it without ringing; a member who leaves takes the leg with them.
#[test]
fn a_sphere_call_opens_one_leg_per_pair_and_closes_it_when_they_leave() {
    let (alice, bob, carol) = (full(ALICE), full(BOB), full(CAROL));
    let room = bare(ROOM);
    let (mut a, mut b) = (Calls::default(), Calls::default());
    // Bob is in the call first; Alice joins: the newcomer opens the leg.
    assert!(
        b.join_group(room.clone(), "Family", true, "tab-b", &bob, &[], 10)
            .unwrap()
            .0
    );
    let (joined, out) = a
        .join_group(
            room.clone(),
            "Family",
            true,
            "tab-a",
            &alice,
            std::slice::from_ref(&bob),
            11,
        )
        .unwrap();
    assert!(joined && out.is_empty());
    let legs = a.list();
    assert_eq!(legs.len(), 1);
    assert!(legs[0].outgoing && legs[0].state == CallState::Connecting);
    assert_eq!(legs[0].sphere.as_deref(), Some("Family"));
    // Bob's node hears Alice came: he waits for her leg.
    assert!(!b.group_member(&room, &alice, true, &bob, 11).1);
    let id = legs[0].id.clone();
    let out = a.describe(&id, "tab-a", "offer", OFFER, &alice).unwrap();
    let (_, req) = request_of(&out[0], ALICE).unwrap();
    assert_eq!(req.room(), Some(room.clone()));
    // A member's leg, while Bob is in that call: taken at once, no ringing.
    let (out, changed) = b.group_leg(&req, true, &bob, 12);
    assert!(changed && !is_error(&out));
    let leg = b.get(&id).unwrap();
    assert!(!leg.outgoing && leg.state == CallState::Connecting && leg.remote.is_some());
    // The same device again before the leg is up (Alice's went stale): hers replaces it.
    let again = JingleRequest {
        sid: "again".into(),
        ..req.clone()
    };
    let (out, changed) = b.group_leg(&again, true, &bob, 12);
    assert!(changed && !is_error(&out) && out.iter().any(|o| matches!(o, Out::Request(..))));
    assert_eq!(b.get(&id).unwrap().state, CallState::Ended);
    // Once it is up, a second one is refused (tie-break) and the leg stands.
    b.describe("again", "tab-b", "answer", OFFER, &bob).unwrap();
    assert_eq!(b.get("again").unwrap().state, CallState::Active);
    let third = JingleRequest {
        sid: "third".into(),
        ..req.clone()
    };
    let (out, changed) = b.group_leg(&third, true, &bob, 12);
    assert!(!changed && is_error(&out) && b.get("third").is_none());
    // Carol comes: the newcomer opens her legs; Alice and Bob wait for them.
    assert!(!a.group_member(&room, &carol, true, &alice, 13).1);
    assert!(!b.group_member(&room, &carol, true, &bob, 13).1);
    let live = |c: &Calls| {
        c.list()
            .iter()
            .filter(|c| c.state != CallState::Ended)
            .count()
    };
    assert_eq!(live(&a), 1);
    // She does not (a client of hers failed): after a while, Alice opens it herself.
    assert!(!a.reconcile(&[bob.clone(), carol.clone()], &alice, 14).1);
    assert!(
        a.reconcile(
            &[bob.clone(), carol.clone()],
            &alice,
            13 + group::WAIT_FOR_THEIRS
        )
        .1
    );
    assert_eq!(live(&a), 2);
    // Bob leaves the call: his leg on Alice's side ends; Carol's stays.
    let (out, changed) = a.group_member(&room, &bob, false, &alice, 30);
    assert!(changed && out.len() == 1, "his leg ends, and he is told");
    assert_eq!(a.get(&id).unwrap().end, Some(CallEnd::TheyHungUp));
    assert_eq!(live(&a), 1);
    // Alice leaves: her remaining leg is terminated, her presence says nothing of a call.
    let out = a.leave_group(31);
    assert_eq!(out.len(), 1);
    assert!(a.muji_for(&room).is_none() && a.group().is_none());
    assert!(a.list().iter().all(|c| c.state == CallState::Ended));
}

/// Alice joins the sphere's call where bob is (audio): her node, and its leg to bob's.
fn alice_calls_bob_in_the_sphere() -> (Calls, String) {
    let mut a = Calls::default();
    let (joined, _) = a
        .join_group(
            bare(ROOM),
            "Family",
            false,
            "tab-a",
            &full(ALICE),
            &[full(BOB)],
            1,
        )
        .unwrap();
    assert!(joined);
    let id = a.list()[0].id.clone();
    (a, id)
}

/// Who gets nothing from a sphere's call: a device not in the room, anyone when we are not in
/// that room's call, and a room-tagged session never rings as a one-to-one call would.
#[test]
fn a_sphere_call_takes_legs_only_from_members_while_in_it() {
    let (alice, bob) = (full(ALICE), full(BOB));
    let room = bare(ROOM);
    let (mut a, id) = alice_calls_bob_in_the_sphere();
    let mut b = Calls::default();
    let out = a.describe(&id, "tab-a", "offer", OFFER, &alice).unwrap();
    let (_, req) = request_of(&out[0], ALICE).unwrap();
    // Bob is in no call: the leg is unknown to him, even from a member, even a contact.
    let (out, changed) = b.group_leg(&req, true, &bob, 2);
    assert!(!changed && unknown(&out));
    let (out, changed) = b.on_jingle(&req, true, 2);
    assert!(!changed && unknown(&out) && b.list().is_empty());
    // In the call, but the sender is not in the room (a stranger who knows its name).
    b.join_group(room.clone(), "Family", false, "tab-b", &bob, &[], 3)
        .unwrap();
    let (out, changed) = b.group_leg(&req, false, &bob, 3);
    assert!(!changed && unknown(&out) && b.list().is_empty());
    // A call in another room is not this one.
    b.leave_group(4);
    b.join_group(
        bare("other@rooms.home.test"),
        "Other",
        false,
        "tab-b",
        &bob,
        &[],
        4,
    )
    .unwrap();
    let (out, changed) = b.group_leg(&req, true, &bob, 4);
    assert!(!changed && unknown(&out) && b.list().is_empty());
    // And we can be in one call at a time: no other sphere's, no one-to-one call, and a
    // contact who rings hears we are busy.
    assert!(
        b.join_group(room, "Family", false, "tab-b", &bob, &[], 5)
            .is_err()
    );
    assert!(
        b.start("s9".into(), bare("carol@home.test"), false, "tab-b", 5)
            .is_err()
    );
    let (out, changed) = b.on_ring(
        full(CAROL),
        Ring::new("r1", RingKind::Propose { video: false }),
        &bob,
        true,
        5,
    );
    assert!(!changed);
    assert!(matches!(ring_of(&out[0]), Some((_, r)) if r.kind == RingKind::Reject));
}

/// Who is in a room's call is who says so: a member in the room who says nothing of the call
/// (or left it) is not, however much it knows of the call; one getting ready is, for the
/// legs it opens.
#[test]
fn only_those_who_say_they_are_in_the_call_are_in_it() {
    use spheres_xmpp::call::muji::Muji;
    use spheres_xmpp::muc::{Affiliation, Occupant, Role};
    let occ = |who: &str, muji: Option<Muji>, present: bool| Occupant {
        room: bare(ROOM),
        nick: who.to_owned(),
        jid: Some(full(&format!("{who}@home.test/n"))),
        affiliation: Affiliation::Member,
        role: Role::Participant,
        present,
        is_self: false,
        codes: vec![],
        endpoints: None,
        muji,
    };
    let preparing = Muji {
        preparing: true,
        media: vec![],
    };
    let room = vec![
        occ("in", Some(Muji::joined(true)), true),
        occ("lurker", None, true),
        occ("empty", Some(Muji::default()), true),
        occ("getting-ready", Some(preparing), true),
        occ("gone", Some(Muji::joined(false)), false),
    ];
    assert_eq!(
        group::in_call(room.clone(), false),
        [full("in@home.test/n")]
    );
    let mut with_ready = group::in_call(room, true);
    with_ready.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        with_ready,
        [full("getting-ready@home.test/n"), full("in@home.test/n")]
    );
}

/// Legs put right: one that failed opens again (when it is ours to open), one with a device
/// that left the call ends and it is told; a lost stream to the server ends every leg but
/// keeps us in the call.
#[test]
fn a_sphere_calls_legs_are_put_right() {
    let (alice, bob, carol) = (full(ALICE), full(BOB), full(CAROL));
    let (mut a, first) = alice_calls_bob_in_the_sphere();
    assert!(a.failed(&first, "no answer".into(), 2));
    // Bob and carol are in the call with no leg with alice: she waits a while for theirs,
    // then opens them.
    let (out, changed) = a.reconcile(&[bob.clone(), carol.clone()], &alice, 3);
    assert!(!changed && out.is_empty());
    let (out, changed) = a.reconcile(
        &[bob.clone(), carol.clone()],
        &alice,
        3 + group::WAIT_FOR_THEIRS,
    );
    assert!(changed && out.is_empty());
    let live = |c: &Calls| {
        c.list()
            .into_iter()
            .filter(|c| c.state != CallState::Ended)
            .count()
    };
    assert_eq!(live(&a), 2);
    // Nothing more to do while nothing changes.
    assert!(!a.reconcile(&[bob.clone(), carol.clone()], &alice, 4).1);
    // Carol is no longer in the call: her leg ends, she is told.
    let (out, changed) = a.reconcile(std::slice::from_ref(&bob), &alice, 5);
    assert!(changed && out.len() == 1 && live(&a) == 1);
    // The stream to the server is lost: the legs end, the call stays ours.
    assert!(a.group_new_session(6));
    assert_eq!(live(&a), 0);
    assert!(a.muji_for(&bare(ROOM)).is_some());
}

/// A mesh holds six; a seventh is told the call is full; a page that stops saying it is
/// there leaves the call; another page of ours takes a call over.
#[test]
fn a_sphere_call_is_bounded_and_left_when_its_page_goes_away() {
    let room = bare(ROOM);
    let me = full("a@home.test/n");
    let others: Vec<FullJid> = (0..group::MAX_MESH)
        .map(|i| full(&format!("m{i}@home.test/n")))
        .collect();
    let mut c = Calls::default();
    assert!(
        c.join_group(room.clone(), "F", false, "tab", &me, &others, 1)
            .is_err()
    );
    let five = &others[..group::MAX_MESH - 1];
    c.join_group(room.clone(), "F", false, "tab", &me, five, 1)
        .unwrap();
    assert_eq!(c.list().len(), group::MAX_MESH - 1);
    // One more comes anyway: no leg to them.
    assert!(
        !c.group_member(&room, &full("z@home.test/n"), true, &me, 2)
            .1
    );
    // The same page again: still there.
    assert!(
        !c.join_group(room.clone(), "F", false, "tab", &me, five, 30)
            .unwrap()
            .0
    );
    assert!(c.group_tick(30 + group::ALIVE_SECS - 1).is_none());
    // Another page takes over: the old legs end, new ones open.
    let (joined, out) = c
        .join_group(room.clone(), "F", false, "tab2", &me, five, 31)
        .unwrap();
    assert!(joined && out.len() == group::MAX_MESH - 1);
    let (left, out) = c.group_tick(31 + group::ALIVE_SECS).unwrap();
    assert_eq!(left, room);
    assert_eq!(out.len(), group::MAX_MESH - 1);
    assert!(c.group().is_none());
}

/// Both sides open a leg at once (two who join together): the leg of the side whose address
/// sorts first stands, on both nodes.
#[test]
fn two_legs_at_once_leave_one() {
    let (alice, bob) = (full(ALICE), full(BOB));
    let (mut a, from_alice) = alice_calls_bob_in_the_sphere();
    let mut b = Calls::default();
    b.join_group(
        bare(ROOM),
        "Family",
        false,
        "tab-b",
        &bob,
        std::slice::from_ref(&alice),
        1,
    )
    .unwrap();
    let from_bob = b.list()[0].id.clone();
    let to_b = a
        .describe(&from_alice, "tab-a", "offer", OFFER, &alice)
        .unwrap();
    let to_a = b
        .describe(&from_bob, "tab-b", "offer", OFFER, &bob)
        .unwrap();
    let (_, alices) = request_of(&to_b[0], ALICE).unwrap();
    let (_, bobs) = request_of(&to_a[0], BOB).unwrap();
    // Alice sorts first: hers replaces bob's on his node; his is refused on hers.
    let (out, changed) = b.group_leg(&alices, true, &bob, 2);
    assert!(changed && !is_error(&out));
    assert_eq!(b.get(&from_bob).unwrap().state, CallState::Ended);
    let (out, changed) = a.group_leg(&bobs, true, &alice, 2);
    assert!(!changed && is_error(&out) && a.get(&from_bob).is_none());
    assert_eq!(a.get(&from_alice).unwrap().state, CallState::Connecting);
}
