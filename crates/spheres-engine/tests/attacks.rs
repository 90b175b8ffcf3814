//! What a stranger or a hostile peer can do to our engine over the wire, attacked with raw
//! messages (our own codec, driven by hand): it must get nothing the torrent's admission did
//! not allow, write nothing into our files, and not keep its connection by breaking the rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sha1::{Digest, Sha1};
use spheres_engine::{Admission, EngineEvent, Open, PeerInfo, Verdict};
use spheres_wire::{BLOCK, Block, ExtHandshake, Handshake, Message, MetadataMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ext(client: &str) -> Message {
    Message::Extended {
        id: 0,
        payload: ExtHandshake {
            extensions: [("ut_metadata".to_owned(), 3)].into(),
            client: Some(client.to_owned()),
            ..Default::default()
        }
        .encode(),
    }
}

/// Sends our extended handshake as `client`; returns the engine's.
async fn extended(peer: &mut Raw, client: &str) -> ExtHandshake {
    peer.send(ext(client)).await;
    match peer
        .until(|m| matches!(m, Message::Extended { id: 0, .. }))
        .await
    {
        Message::Extended { payload, .. } => ExtHandshake::parse(&payload).unwrap(),
        other => unreachable!("{other:?}"),
    }
}

/// Asks for metadata piece `piece` (under the engine's id `id`) and reads the answer.
async fn metadata_piece(peer: &mut Raw, id: u8, piece: u32) -> MetadataMessage {
    peer.send(Message::Extended {
        id,
        payload: MetadataMessage::Request { piece }.encode(),
    })
    .await;
    match peer
        .until(|m| matches!(m, Message::Extended { id: 3, .. }))
        .await
    {
        Message::Extended { payload, .. } => MetadataMessage::parse(&payload).unwrap(),
        other => unreachable!("{other:?}"),
    }
}

/// Sends a handshake for `info_hash` and expects the connection closed without one back.
async fn no_handshake(addr: std::net::SocketAddr, info_hash: [u8; 20]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&Handshake::new(info_hash, [8; 20]).encode())
        .await
        .unwrap();
    let mut buf = [0u8; 68];
    let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
        .await
        .expect("the engine neither answered nor closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "no handshake back");
}

fn gives_data(m: &Message) -> bool {
    matches!(
        m,
        Message::Bitfield(_) | Message::HaveAll | Message::Have { .. } | Message::Piece { .. }
    ) || matches!(m, Message::Extended { id: 3, .. })
}

/// Admits only peers whose extended handshake carries the (stand-in) proof of membership.
struct Members;

impl Admission for Members {
    fn admit(&self, peer: &PeerInfo<'_>) -> Verdict {
        match peer.extension {
            None => Verdict::AfterExtension,
            Some(e) if e.client.as_deref() == Some("member") => Verdict::Admit,
            Some(_) => Verdict::Refuse,
        }
    }
}

struct Nobody;

impl Admission for Nobody {
    fn admit(&self, _: &PeerInfo<'_>) -> Verdict {
        Verdict::Refuse
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_who_knows_the_info_hash_gets_nothing() {
    let s = share(&[]);
    let e = seeder_for(&s, Arc::new(Members)).await;
    let hash = s.meta.info_hash.0;

    // A stranger: our extended handshake (without the metadata's size), then the door.
    let (mut stranger, theirs) = Raw::connect(e.listen_addr(), hash, "stranger").await;
    assert!(theirs.extended());
    let first = stranger.next().await.expect("our extended handshake");
    let Message::Extended { id: 0, payload } = first else {
        panic!("the first message gave something away: {first:?}");
    };
    assert_eq!(ExtHandshake::parse(&payload).unwrap().metadata_size, None);
    stranger.send(Message::HaveNone).await;
    stranger.send(Message::Interested).await;
    stranger
        .send(Message::Extended {
            id: 1,
            payload: MetadataMessage::Request { piece: 0 }.encode(),
        })
        .await;
    stranger
        .send(Message::Request(Block {
            piece: 0,
            begin: 0,
            length: BLOCK,
        }))
        .await;
    stranger.send(ext("stranger")).await;
    let rest = stranger.until_closed().await;
    assert!(!rest.iter().any(gives_data), "the stranger got {rest:?}");

    // A member, on the same torrent: everything.
    let (mut member, _) = Raw::connect(e.listen_addr(), hash, "member").await;
    member.send(ext("member")).await;
    member.until(|m| matches!(m, Message::HaveAll)).await;

    // A torrent that admits nobody: not even our handshake (it would say we hold it).
    let e2 = seeder_for(&s, Arc::new(Nobody)).await;
    no_handshake(e2.listen_addr(), hash).await;

    // A torrent we do not have: the same.
    no_handshake(e2.listen_addr(), [7; 20]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_peers_get_the_metadata_and_it_hashes_to_the_info_hash() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let (mut peer, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, "meta").await;
    let theirs = extended(&mut peer, "meta").await;
    let size = theirs.metadata_size.expect("the size, once admitted");
    let our_id = theirs.id_of("ut_metadata").unwrap();
    let mut info = Vec::new();
    for piece in 0..spheres_wire::metadata_pieces(size) {
        let MetadataMessage::Data {
            data, total_size, ..
        } = metadata_piece(&mut peer, our_id, piece).await
        else {
            panic!("not data");
        };
        assert_eq!(total_size, size);
        info.extend(data);
    }
    let hash: [u8; 20] = Sha1::digest(&info).into();
    assert_eq!(hash, s.meta.info_hash.0);
    // A piece past the end is rejected, not answered with anything else.
    assert_eq!(
        metadata_piece(&mut peer, our_id, 99).await,
        MetadataMessage::Reject { piece: 99 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_nobody_asked_for_are_never_written() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let file = s.data.join("a/holiday.mp4");
    let before = std::fs::read(&file).unwrap();
    let (mut peer, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, "pusher").await;
    peer.until(|m| matches!(m, Message::HaveAll)).await;
    for piece in 0..4 {
        peer.send(Message::Piece {
            piece,
            begin: 0,
            data: vec![0xAA; BLOCK as usize],
        })
        .await;
    }
    // A round trip: the engine read the blocks before it answers this.
    peer.send(Message::Interested).await;
    peer.until(|m| matches!(m, Message::Unchoke)).await;
    assert_eq!(
        e.status(&s.meta.info_hash.0).unwrap().wasted,
        4 * u64::from(BLOCK)
    );
    assert!(
        std::fs::read(&file).unwrap() == before,
        "the seed's file is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_seed_gets_nothing_written_and_its_pieces_fail() {
    let s = share(&[]);
    let e = engine().await;
    let out = s.dir.path().join("victim");
    e.add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    let mut events = e.subscribe();
    let (mut liar, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, "liar").await;
    liar.send(Message::HaveAll).await;
    liar.send(Message::Unchoke).await;
    // Answers every request with junk of the right length.
    let failed = async {
        while let Some(m) = liar.next().await {
            if let Message::Request(b) = m {
                liar.send(Message::Piece {
                    piece: b.piece,
                    begin: b.begin,
                    data: vec![0x55; b.length as usize],
                })
                .await;
            }
        }
        // Closed by the engine: the event says why.
        std::future::pending::<()>().await
    };
    let event = async {
        loop {
            if let Ok(EngineEvent::HashFailed { .. }) = events.recv().await {
                return;
            }
        }
    };
    tokio::select! {
        () = event => {}
        () = failed => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => panic!("no piece failed its hash"),
    }
    assert!(e.status(&s.meta.info_hash.0).unwrap().hash_failures >= 1);
    assert!(!out.exists(), "nothing unverified reached the disk");
    // It sent that piece alone: banned, disconnected, and not let back in.
    liar.until_closed().await;
    no_handshake(e.listen_addr(), s.meta.info_hash.0).await;
    assert_eq!(e.status(&s.meta.info_hash.0).unwrap().peers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_breaking_the_protocol_are_disconnected() {
    let s = share(&[]);
    let e = seeder(&s).await;
    let hash = s.meta.info_hash.0;
    let pieces = s.meta.piece_count() as u32;
    let bad: Vec<Vec<Message>> = vec![
        vec![Message::Bitfield(vec![0xff; 1])],
        vec![Message::Have { piece: pieces }],
        vec![Message::Request(Block {
            piece: 0,
            begin: 0,
            length: BLOCK * 2,
        })],
        vec![Message::Request(Block {
            piece: pieces - 1,
            begin: 0,
            length: BLOCK,
        })],
        vec![Message::Request(Block {
            piece: pieces,
            begin: 0,
            length: 1,
        })],
        vec![Message::Extended {
            id: 0,
            payload: b"not bencode".to_vec(),
        }],
        vec![Message::HaveNone, Message::HaveAll],
    ];
    for msgs in bad {
        let (mut peer, _) = Raw::connect(e.listen_addr(), hash, "rude").await;
        for m in &msgs {
            peer.send(m.clone()).await;
        }
        let got = peer.until_closed().await;
        assert!(
            !got.iter().any(|m| matches!(m, Message::Piece { .. })),
            "{msgs:?} got {got:?}"
        );
    }
    // A request while choked is rejected, not served (the Fast extension).
    let (mut peer, _) = Raw::connect(e.listen_addr(), hash, "early").await;
    let b = Block {
        piece: 0,
        begin: 0,
        length: BLOCK,
    };
    peer.send(Message::Request(b)).await;
    assert_eq!(
        peer.until(|m| matches!(m, Message::Reject(_) | Message::Piece { .. }))
            .await,
        Message::Reject(b)
    );
}

/// A flood of idle connections (no handshake, no info hash needed) from one address takes at
/// most 16 places (of the engine's 128): the rest are closed at once; a peer from elsewhere
/// still gets in meanwhile, and a download completes once the flood goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_is_bounded() {
    let s = share(&[]);
    let seed = seeder(&s).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(seed.listen_addr()).await.unwrap());
    }
    // Those past the cap are closed without a byte; the others wait for a handshake. All
    // are read at once, for a second.
    let reads = idle.into_iter().map(|mut c| {
        tokio::spawn(async move {
            let mut b = [0u8; 1];
            let closed = matches!(
                tokio::time::timeout(Duration::from_secs(1), c.read(&mut b)).await,
                Ok(Ok(0))
            );
            (closed, c)
        })
    });
    let mut still_open = Vec::new();
    let mut closed = 0;
    for r in reads.collect::<Vec<_>>() {
        let (was_closed, c) = r.await.unwrap();
        if was_closed {
            closed += 1;
        } else {
            still_open.push(c);
        }
    }
    // All from one address: it gets 16 places, not the engine's 128.
    assert!(
        closed >= 300 - 16,
        "only {closed} of 300 idle connections from one address were closed"
    );
    assert!(still_open.len() <= 16);
    // Meanwhile a peer from another address is answered (127.0.0.2 is loopback too).
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(seed.listen_addr()).await.unwrap();
    other
        .write_all(&Handshake::new(s.meta.info_hash.0, *b"-XX0001-otheraddress").encode())
        .await
        .unwrap();
    let mut answer = [0u8; 68];
    tokio::time::timeout(BOUND, other.read_exact(&mut answer))
        .await
        .expect("a peer from another address is answered")
        .unwrap();
    assert_eq!(&answer[28..48], &s.meta.info_hash.0[..]);
    // Once they go, a member downloads.
    drop(still_open);
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("during"), Arc::new(Open))
        .await
        .unwrap();
    e.connect(s.meta.info_hash.0, seed.listen_addr()).unwrap();
    completes(&e, &s).await;
}

/// A peer that asks and asks and never reads what we send: past a bounded backlog the
/// engine stops reading it (so its requests stay in the kernel's buffers, not in our
/// memory), and others are still served. Both what we answer from memory (metadata) and
/// what we read from disk (blocks) are asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_cannot_grow_our_memory() {
    let s = share(&[]);
    let e = seeder(&s).await;
    for blocks in [false, true] {
        // A peer id of its own each time (the last one may not be gone yet).
        let (hog, fair) = if blocks {
            ("hog2", "fair2")
        } else {
            ("hog1", "fair1")
        };
        let (mut peer, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, hog).await;
        let our_id = extended(&mut peer, hog).await.id_of("ut_metadata").unwrap();
        peer.send(Message::Interested).await;
        // 64 MiB of requests: answered in full they would be gigabytes.
        let one = if blocks {
            Message::Request(Block {
                piece: 0,
                begin: 0,
                length: BLOCK,
            })
        } else {
            Message::Extended {
                id: our_id,
                payload: MetadataMessage::Request { piece: 0 }.encode(),
            }
        };
        let mut chunk = Vec::new();
        while chunk.len() < 1 << 20 {
            one.encode(&mut chunk);
        }
        let flood = async {
            for _ in 0..64 {
                peer.stream.write_all(&chunk).await?;
            }
            std::io::Result::Ok(())
        };
        let written = tokio::time::timeout(BOUND, flood).await;
        assert!(
            written.is_err(),
            "the engine read 64 MiB of requests from a peer that reads nothing (blocks: {blocks})"
        );
        // Someone else is served meanwhile.
        let (mut other, _) = Raw::connect(e.listen_addr(), s.meta.info_hash.0, fair).await;
        extended(&mut other, fair).await;
        assert!(matches!(
            metadata_piece(&mut other, our_id, 0).await,
            MetadataMessage::Data { .. }
        ));
    }
    e.shutdown().await;
}
