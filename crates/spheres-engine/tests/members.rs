//! A sphere's torrents go to its members' nodes only: they prove membership with the
//! sphere's secret; a node without it, with the wrong one, a plain client, or a proof
//! replayed from another connection gets nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use spheres_engine::{EngineError, EngineEvent, Members, Proving};
use spheres_wire::{ExtHandshake, Message};

const SECRET: [u8; 32] = [42; 32];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_trade_and_strangers_get_nothing() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let seed = seeder_for(&s, Arc::new(Members::new(SECRET))).await;

    // A member's node: everything.
    let member = engine().await;
    member
        .add(
            s.meta.clone(),
            s.dir.path().join("member"),
            Arc::new(Members::new(SECRET)),
        )
        .await
        .unwrap();
    member.connect(hash, seed.listen_addr()).unwrap();
    completes(&member, &s).await;
    same_tree(&s.data, &s.dir.path().join("member/album"));

    // A node with another sphere's secret: refused at once, nothing had.
    let other = engine().await;
    let mut events = other.subscribe();
    other
        .add(
            s.meta.clone(),
            s.dir.path().join("other"),
            Arc::new(Members::new([7; 32])),
        )
        .await
        .unwrap();
    other.connect(hash, seed.listen_addr()).unwrap();
    let why = tokio::time::timeout(BOUND, async {
        loop {
            if let Ok(EngineEvent::PeerGone { addr, reason, .. }) = events.recv().await
                && addr == seed.listen_addr()
            {
                return reason;
            }
        }
    })
    .await
    .expect("the seed closed the door");
    let st = other.status(&hash).unwrap();
    assert_eq!((st.have, st.downloaded), (0, 0), "{why}: {st:?}");
    // Nor the metadata (the seed waits for a proof that does not come).
    let meta = other
        .fetch_metadata(hash, &[], &[seed.listen_addr()], Duration::from_secs(2))
        .await;
    assert!(matches!(meta, Err(EngineError::NoMetadata)), "{meta:?}");
}

fn ext(nonce: Option<[u8; 16]>, proof: Option<[u8; 32]>) -> Message {
    Message::Extended {
        id: 0,
        payload: ExtHandshake {
            extensions: [("ut_metadata".to_owned(), 3)].into(),
            nonce,
            member_proof: proof,
            ..Default::default()
        }
        .encode(),
    }
}

/// Hand-made proofs: the right one admits; one bound to another nonce (replayed from another
/// connection), or none from a plain client, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_proof_or_none_opens_nothing() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let seed = seeder_for(&s, Arc::new(Members::new(SECRET))).await;
    let members = Members::new(SECRET);
    let seed_id = seed.peer_id();
    let ours = [5u8; 16];

    for (case, admitted) in [("right", true), ("replayed", false), ("plain", false)] {
        let (mut raw, _) = Raw::connect(seed.listen_addr(), hash, case).await;
        let Message::Extended { payload, .. } = raw
            .until(|m| matches!(m, Message::Extended { id: 0, .. }))
            .await
        else {
            unreachable!()
        };
        let seed_nonce = ExtHandshake::parse(&payload)
            .unwrap()
            .nonce
            .expect("a nonce");
        let mut id = *b"-XX0001-000000000000";
        id[8..8 + case.len()].copy_from_slice(case.as_bytes());
        let proving = |to_nonce| Proving {
            info_hash: hash,
            from: id,
            from_nonce: ours,
            to: seed_id,
            to_nonce,
        };
        let m = match case {
            "right" => ext(Some(ours), members.proof_for(&proving(seed_nonce))),
            "replayed" => ext(Some(ours), members.proof_for(&proving([0; 16]))),
            _ => ext(None, None),
        };
        raw.send(m).await;
        if admitted {
            raw.until(|m| matches!(m, Message::HaveAll)).await;
        } else {
            let got = raw.until_closed().await;
            assert!(
                !got.iter().any(|m| matches!(
                    m,
                    Message::HaveAll | Message::Bitfield(_) | Message::Piece { .. }
                )),
                "{case}: {got:?}"
            );
        }
    }
}

/// A member fetching a magnet's metadata proves membership as a download does, and gets it;
/// once the owner gives the sphere a new secret (a member was removed), the old one opens
/// nothing, and the new one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_fetch_metadata_and_a_new_secret_shuts_the_old_out() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let gate = Arc::new(Members::new(SECRET));
    let seed = seeder_for(&s, gate.clone()).await;
    let fetcher = engine().await;
    let peers = [seed.listen_addr()];
    let fetch = |secret: [u8; 32]| {
        fetcher.fetch_metadata_as(
            hash,
            &[],
            &peers,
            Duration::from_secs(10),
            Arc::new(Members::new(secret)),
        )
    };
    let bytes = fetch(SECRET).await.expect("a member gets the metadata");
    let meta = spheres_metainfo::Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(meta.info_hash.0, hash);
    assert!(matches!(fetch([7; 32]).await, Err(EngineError::NoMetadata)));

    const NEW: [u8; 32] = [43; 32];
    gate.set(Some(NEW));
    assert!(
        matches!(fetch(SECRET).await, Err(EngineError::NoMetadata)),
        "the old secret still opens the swarm"
    );
    assert!(fetch(NEW).await.is_ok(), "the new secret does not");
    // Without a secret, nobody.
    gate.set(None);
    assert!(matches!(fetch(NEW).await, Err(EngineError::NoMetadata)));
}

/// Waits (bounded) for a peer to connect, or (`gone`) to leave.
async fn peer_event(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>, gone: bool) {
    tokio::time::timeout(BOUND, async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::PeerConnected { .. }) if !gone => return,
                Ok(EngineEvent::PeerGone { .. }) if gone => return,
                _ => {}
            }
        }
    })
    .await
    .expect("the peer event came");
}

/// The secret changes (the owner removed a member): connections admitted with the old one
/// are closed, and only the new one opens the swarm again.
#[tokio::test]
async fn a_new_secret_closes_connections_made_with_the_old() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let gate = Arc::new(Members::new(SECRET));
    let seed = seeder_for(&s, gate.clone()).await;
    let member = engine().await;
    let mut events = member.subscribe();
    let out = tempfile::tempdir().unwrap();
    let ours = Arc::new(Members::new(SECRET));
    // Slow: still downloading when the secret changes.
    member.set_limits(std::num::NonZeroU64::new(50 * 1024), None);
    member
        .add(s.meta.clone(), out.path().to_owned(), ours.clone())
        .await
        .unwrap();
    // The seed's side of the connection is what the new secret closes: waited for there (the
    // member hears of the connection before the seed has admitted it).
    let mut seed_events = seed.subscribe();
    member.add_peers(&hash, &[seed.listen_addr()]).unwrap();
    peer_event(&mut events, false).await;
    peer_event(&mut seed_events, false).await;

    const NEW: [u8; 32] = [44; 32];
    gate.set(Some(NEW));
    assert_eq!(seed.drop_peers(&hash).unwrap(), 1);
    peer_event(&mut events, true).await;
    // The member gets the new secret: it is admitted again and finishes.
    ours.set(Some(NEW));
    member.set_limits(None, None);
    peer_event(&mut events, false).await;
    completes(&member, &s).await;
    seed.shutdown().await;
    member.shutdown().await;
}
