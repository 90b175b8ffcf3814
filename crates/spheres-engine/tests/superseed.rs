//! Super-seeding (BEP 16): the first seed of a new file says it has nothing, offers each
//! peer a few pieces of its own and serves only those, offers more as the peer reports
//! having them, and once every piece went out says it has everything. A client we did not
//! write (libtorrent) downloads from it.

mod common;

use std::collections::BTreeSet;

use common::*;
use spheres_testkit::libtorrent::LtPeer;
use spheres_wire::{BLOCK, Block, Message};

fn block(piece: u32) -> Block {
    Block {
        piece,
        begin: 0,
        length: BLOCK,
    }
}

#[tokio::test]
async fn a_super_seed_offers_pieces_one_peer_at_a_time() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let hash = s.meta.info_hash.0;
    assert!(e.set_super_seeding(&hash, true).unwrap());
    let pieces = s.meta.piece_hashes.len() as u32;

    let (mut peer, _) = Raw::connect(e.listen_addr(), hash, "leech").await;
    peer.send(Message::HaveNone).await;
    peer.send(Message::Interested).await;
    // Nothing, then a few pieces of its own.
    let first = peer
        .until(|m| {
            matches!(
                m,
                Message::HaveNone | Message::HaveAll | Message::Bitfield(_)
            )
        })
        .await;
    assert_eq!(first, Message::HaveNone, "a super seed says it has nothing");
    let (mut offered, mut unchoked) = (BTreeSet::new(), false);
    while offered.len() < 4 || !unchoked {
        match peer.next().await.expect("the seed closed the connection") {
            Message::Have { piece } => {
                offered.insert(piece);
            }
            Message::Unchoke => unchoked = true,
            _ => {}
        }
    }
    // A piece it was not offered is refused; an offered one is served.
    let other = (0..pieces).find(|p| !offered.contains(p)).unwrap();
    peer.send(Message::Request(block(other))).await;
    assert_eq!(
        peer.until(|m| matches!(m, Message::Reject(_) | Message::Piece { .. }))
            .await,
        Message::Reject(block(other))
    );
    let mine = *offered.first().unwrap();
    peer.send(Message::Request(block(mine))).await;
    assert!(matches!(
        peer.until(|m| matches!(m, Message::Reject(_) | Message::Piece { .. })).await,
        Message::Piece { piece, .. } if piece == mine
    ));

    // It reports the pieces it was offered, one by one: it is offered new ones, one for
    // each, until only two are left that it never heard of; then the seed tells it of
    // everything it lacks at once (never the last piece alone: libtorrent would drop us).
    let mut told: BTreeSet<u32> = offered.clone();
    let mut reported = BTreeSet::new();
    let mut pending: Vec<u32> = offered.iter().copied().collect();
    let mut one_by_one = 0;
    while told.len() < pieces as usize {
        // (With a peer connected, asking to turn it on only says whether it is still on.)
        if !e.set_super_seeding(&hash, true).unwrap() {
            // Over: the seed tells it everything it lacks, without waiting for it.
            if let Message::Have { piece } = peer.until(|m| matches!(m, Message::Have { .. })).await
            {
                told.insert(piece);
            }
            continue;
        }
        let p = pending.pop().expect("offered pieces to report");
        reported.insert(p);
        peer.send(Message::Have { piece: p }).await;
        let Message::Have { piece } = peer.until(|m| matches!(m, Message::Have { .. })).await
        else {
            unreachable!()
        };
        assert!(
            !reported.contains(&piece),
            "offered a piece it has: {piece}"
        );
        if told.insert(piece) {
            one_by_one += 1;
            pending.push(piece);
        }
    }
    // 4 offered first, then one for each reported, but never the last two one by one (the
    // first of the last burst may be read here as an answer).
    assert!(
        one_by_one < pieces as usize - 4,
        "the last pieces went one by one: {one_by_one} of {pieces}"
    );
    assert!(!e.set_super_seeding(&hash, false).unwrap());
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_our_super_seed() {
    let s = share(&[]);
    let e = seeder(&s).await;
    assert!(e.set_super_seeding(&s.meta.info_hash.0, true).unwrap());
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech(&s.torrent, &out, &[e.listen_addr()]);
    tokio::task::block_in_place(|| lt.wait_for("complete", BOUND * 6));
    same_tree(&s.data, &out.join("album"));
    e.shutdown().await;
}

#[tokio::test]
async fn only_a_new_complete_torrent_is_super_seeded() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let hash = s.meta.info_hash.0;
    // A peer saw our pieces already: too late.
    let mut events = e.subscribe();
    let (_peer, _) = Raw::connect(e.listen_addr(), hash, "early").await;
    tokio::time::timeout(BOUND, async {
        while !matches!(
            events.recv().await,
            Ok(spheres_engine::EngineEvent::PeerConnected { .. })
        ) {}
    })
    .await
    .unwrap();
    assert!(!e.set_super_seeding(&hash, true).unwrap());
    // A download: not a seed.
    let leech = engine().await;
    let out = tempfile::tempdir().unwrap();
    leech
        .add(
            s.meta.clone(),
            out.path().to_owned(),
            std::sync::Arc::new(spheres_engine::Open),
        )
        .await
        .unwrap();
    assert!(!leech.set_super_seeding(&hash, true).unwrap());
    e.shutdown().await;
    leech.shutdown().await;
}
