//! Peer exchange (BEP 11), for public torrents only: our seed tells each peer of the others
//! and dials the peers it is told of; a private torrent's peers hear of nobody and are not
//! listened to; a peer that floods us with messages is not heard more than once in 30 s.
//! Against libtorrent both ways (an implementation we did not write).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use spheres_engine::{Engine, EngineEvent, ExtHandshake, Open};
use spheres_metainfo::{CreateOptions, create_torrent};
use spheres_testkit::libtorrent::LtPeer;
use spheres_wire::{Message, MetadataMessage, PexMessage, UT_METADATA, UT_PEX};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// The id our raw peers want `ut_pex` under, and `ut_metadata`.
const THEIR_PEX: u8 = 7;
const THEIR_METADATA: u8 = 3;

/// The share, as a private torrent (the same files).
fn private(s: &Share) -> Share {
    let (bytes, meta) = create_torrent(
        &s.data,
        &CreateOptions {
            piece_length: Some(32 * 1024),
            private: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let torrent = dir.path().join("private.torrent");
    std::fs::write(&torrent, bytes).unwrap();
    Share {
        data: s.data.clone(),
        torrent,
        meta: Arc::new(meta),
        dir,
    }
}

/// A raw peer that speaks `ut_pex` and says it listens on `listen`; returns it with the
/// extended handshake the engine sent it.
async fn pex_peer(e: &Engine, s: &Share, listen: u16) -> (Raw, ExtHandshake) {
    let name = format!("pex{listen}");
    let (mut raw, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, &name).await;
    let ours = ExtHandshake {
        extensions: [
            (UT_PEX.to_owned(), THEIR_PEX),
            (UT_METADATA.to_owned(), THEIR_METADATA),
        ]
        .into(),
        listen_port: Some(listen),
        ..Default::default()
    };
    raw.send(Message::Extended {
        id: 0,
        payload: ours.encode(),
    })
    .await;
    let theirs = raw
        .until(|m| matches!(m, Message::Extended { id: 0, .. }))
        .await;
    let Message::Extended { payload, .. } = theirs else {
        unreachable!()
    };
    (raw, ExtHandshake::parse(&payload).unwrap())
}

/// Sends a PEX message of `added` under the id the engine gave, then a metadata request,
/// and waits for its answer: the engine reads in order, so the PEX message was read.
async fn tell(raw: &mut Raw, theirs: &ExtHandshake, added: &[SocketAddr]) {
    let pex_id = theirs.id_of(UT_PEX).unwrap_or(2);
    let m = PexMessage {
        added: added.iter().map(|a| (*a, 0)).collect(),
        dropped: vec![],
    };
    raw.send(Message::Extended {
        id: pex_id,
        payload: m.encode(),
    })
    .await;
    raw.send(Message::Extended {
        id: theirs.id_of(UT_METADATA).unwrap(),
        payload: MetadataMessage::Request { piece: 0 }.encode(),
    })
    .await;
    raw.until(|m| {
        matches!(
            m,
            Message::Extended {
                id: THEIR_METADATA,
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn our_seed_tells_each_peer_of_the_others_and_dials_those_it_hears_of() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let a_port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (mut a, theirs) = pex_peer(&e, &s, a_port.local_addr().unwrap().port()).await;
    assert!(
        theirs.id_of(UT_PEX).is_some(),
        "a public torrent speaks ut_pex"
    );
    let b_port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (mut b, _) = pex_peer(&e, &s, b_port.local_addr().unwrap().port()).await;

    // B hears of A (where A said it listens), within the engine's first ticks.
    let m = b
        .until(|m| matches!(m, Message::Extended { id: THEIR_PEX, .. }))
        .await;
    let Message::Extended { payload, .. } = m else {
        unreachable!()
    };
    let told = PexMessage::parse(&payload).unwrap();
    let added: Vec<SocketAddr> = told.added.iter().map(|(a, _)| *a).collect();
    assert_eq!(added, vec![a_port.local_addr().unwrap()]);

    // A tells of a peer (and of addresses never to dial): the engine dials it.
    let c = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c_addr = c.local_addr().unwrap();
    tell(
        &mut a,
        &theirs,
        &[c_addr, "127.0.0.1:0".parse().unwrap(), e.listen_addr()],
    )
    .await;
    let (mut dialled, _) = tokio::time::timeout(BOUND, c.accept())
        .await
        .expect("the engine dials a peer it heard of")
        .unwrap();
    let mut handshake = [0u8; 68];
    tokio::time::timeout(BOUND, dialled.read_exact(&mut handshake))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&handshake[28..48], &s.meta.info_hash.0, "for this torrent");
    let known = e.known_peers(&s.meta.info_hash.0).unwrap();
    assert!(known.contains(&c_addr));
    assert!(!known.iter().any(|k| k.port() == 0 || *k == e.listen_addr()));

    // A second message within 30 s is not heard.
    let d: SocketAddr = "127.0.0.1:9".parse().unwrap();
    tell(&mut a, &theirs, &[d]).await;
    assert!(!e.known_peers(&s.meta.info_hash.0).unwrap().contains(&d));
    e.shutdown().await;
}

#[tokio::test]
async fn a_private_torrent_neither_gossips_nor_listens_to_gossip() {
    let public = share(&[]);
    let s = private(&public);
    let e = seeder(&s).await;
    let (mut a, theirs) = pex_peer(&e, &s, 1).await;
    assert_eq!(
        theirs.id_of(UT_PEX),
        None,
        "no ut_pex for a private torrent"
    );
    // Told anyway (under the id a public torrent would use): not heard.
    let d: SocketAddr = "127.0.0.1:9".parse().unwrap();
    tell(&mut a, &theirs, &[d]).await;
    assert!(e.known_peers(&s.meta.info_hash.0).unwrap().is_empty());
    e.shutdown().await;
}

/// Waits for a connection between `a` and any peer but `hub`, on `a`'s events.
async fn meets_someone_but(
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    hub: SocketAddr,
    within: Duration,
) -> SocketAddr {
    tokio::time::timeout(within, async {
        loop {
            if let Ok(EngineEvent::PeerConnected { addr, .. }) = events.recv().await
                && addr != hub
            {
                return addr;
            }
        }
    })
    .await
    .expect("the two peers met through PEX")
}

/// libtorrent seeds; our two nodes know only it; it tells them of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_tells_our_nodes_of_each_other() {
    let s = share(&[]);
    let (_lt, port) =
        tokio::task::block_in_place(|| LtPeer::seed(&s.torrent, s.data.parent().unwrap()));
    let hub = SocketAddr::from(([127, 0, 0, 1], port));
    let (a, b) = (engine().await, engine().await);
    // Slow enough that neither is done (and dropped by libtorrent, a seed that keeps no
    // seeds) before libtorrent tells them of each other.
    for e in [&a, &b] {
        e.set_limits(std::num::NonZeroU64::new(40 * 1024), None);
    }
    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();
    let outs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (e, out) in [(&a, &outs[0]), (&b, &outs[1])] {
        e.add(s.meta.clone(), out.path().to_owned(), Arc::new(Open))
            .await
            .unwrap();
        e.add_peers(&s.meta.info_hash.0, &[hub]).unwrap();
    }
    // libtorrent sends its first PEX message about a second after it has a second peer.
    let within = BOUND * 3;
    tokio::select! {
        _ = meets_someone_but(&mut a_events, hub, within) => {}
        _ = meets_someone_but(&mut b_events, hub, within) => {}
    }
    let a_knows_b = a
        .known_peers(&s.meta.info_hash.0)
        .unwrap()
        .contains(&b.listen_addr());
    let b_knows_a = b
        .known_peers(&s.meta.info_hash.0)
        .unwrap()
        .contains(&a.listen_addr());
    assert!(
        a_knows_b || b_knows_a,
        "one heard of the other from libtorrent"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Our seed; two libtorrent leeches know only it; they meet through what it tells them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_seed_tells_libtorrent_peers_of_each_other() {
    let s = share(&[]);
    let e = seeder(&s).await;
    // Slow enough that neither leech is done (and gone) before they meet.
    e.set_limits(None, std::num::NonZeroU64::new(40 * 1024));
    let outs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let seed = e.listen_addr();
    let leech =
        |out: &std::path::Path| LtPeer::leech_with(&s.torrent, out, &[seed], &["--log-peers"]);
    let mut one = leech(outs[0].path());
    let _two = leech(outs[1].path());
    // Two peers for the first leech: our seed, and the other leech, which it can only have
    // heard of from our seed (no tracker, no DHT, no LSD).
    let v = tokio::task::block_in_place(|| {
        one.wait_until(BOUND * 3, |v| {
            v["event"] == "progress" && v["peers"].as_u64().unwrap_or(0) >= 2
        })
    });
    assert!(v["progress"].as_f64().unwrap_or(1.0) < 1.0, "{v}");
    e.shutdown().await;
}
