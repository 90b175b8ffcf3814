//! Magnet links: the torrent fetched from peers by its info hash alone (BEP 9), from
//! libtorrent and from our own seed, found through a tracker, and never believed from a peer
//! that lies.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use spheres_engine::{EngineError, Open};
use spheres_metainfo::Metainfo;
use spheres_testkit::libtorrent::LtPeer;
use spheres_wire::{Decoder, ExtHandshake, Handshake, Message, MetadataMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_is_fetched_from_libtorrent_and_from_our_seed() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let (_lt, port) =
        tokio::task::block_in_place(|| LtPeer::seed(&s.torrent, s.data.parent().unwrap()));
    let e = engine().await;
    let from_lt = e
        .fetch_metadata(
            hash,
            &[],
            &[SocketAddr::from(([127, 0, 0, 1], port))],
            BOUND * 3,
        )
        .await
        .unwrap();
    let meta = Metainfo::from_bytes(&from_lt).unwrap();
    assert_eq!(meta.info_hash, s.meta.info_hash);
    assert_eq!(meta.info_bytes, s.meta.info_bytes);

    let seed = seeder(&s).await;
    let from_us = e
        .fetch_metadata(
            hash,
            &["http://127.0.0.1:9/announce".into()],
            &[seed.listen_addr()],
            BOUND * 3,
        )
        .await
        .unwrap();
    let meta = Metainfo::from_bytes(&from_us).unwrap();
    assert_eq!(meta.info_hash, s.meta.info_hash);
    assert_eq!(
        meta.trackers,
        vec![vec!["http://127.0.0.1:9/announce".to_owned()]]
    );
    // And the torrent so made downloads.
    e.add(Arc::new(meta), s.dir.path().join("magnet"), Arc::new(Open))
        .await
        .unwrap();
    e.connect(hash, seed.listen_addr()).unwrap();
    completes(&e, &s).await;
    same_tree(&s.data, &s.dir.path().join("magnet/album"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_finds_its_peers_through_the_tracker() {
    let tr = tracker(false).await;
    let url = tr.http_announce_url(None).unwrap();
    let s = share(std::slice::from_ref(&url));
    let _seed = announced_seeder(&s).await;
    let e = engine().await;
    let bytes = e
        .fetch_metadata(s.meta.info_hash.0, &[url], &[], BOUND * 3)
        .await
        .unwrap();
    assert_eq!(
        Metainfo::from_bytes(&bytes).unwrap().info_bytes,
        s.meta.info_bytes
    );
}

/// A peer that says it has the metadata and sends pieces of the right sizes but the wrong
/// bytes.
async fn liar(info_hash: [u8; 20], size: u32) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut theirs = [0u8; 68];
                conn.read_exact(&mut theirs).await.ok()?;
                conn.write_all(&Handshake::new(info_hash, [9; 20]).encode())
                    .await
                    .ok()?;
                let mut out = Vec::new();
                Message::Extended {
                    id: 0,
                    payload: ExtHandshake {
                        extensions: [("ut_metadata".to_owned(), 3)].into(),
                        metadata_size: Some(size),
                        ..Default::default()
                    }
                    .encode(),
                }
                .encode(&mut out);
                conn.write_all(&out).await.ok()?;
                let mut d = Decoder::new(1 << 20);
                let mut buf = vec![0u8; 4096];
                loop {
                    while let Ok(Some(m)) = d.next_message() {
                        if let Message::Extended { id: 3, payload } = m
                            && let Ok(MetadataMessage::Request { piece }) =
                                MetadataMessage::parse(&payload)
                        {
                            let len = (size - piece * 16384).min(16384) as usize;
                            let mut out = Vec::new();
                            Message::Extended {
                                id: 1,
                                payload: MetadataMessage::Data {
                                    piece,
                                    total_size: size,
                                    data: vec![b'x'; len],
                                }
                                .encode(),
                            }
                            .encode(&mut out);
                            conn.write_all(&out).await.ok()?;
                        }
                    }
                    let n = conn.read(&mut buf).await.ok()?;
                    if n == 0 {
                        return Some(());
                    }
                    d.push(&buf[..n]);
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_a_liar_is_never_believed() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let size = s.meta.info_bytes.len() as u32;
    let lying = liar(hash, size).await;
    let e = engine().await;
    // The liar alone: nothing.
    let r = e.fetch_metadata(hash, &[], &[lying], BOUND).await;
    assert!(matches!(r, Err(EngineError::NoMetadata)), "{r:?}");
    // The liar and an honest seed: the honest one's.
    let seed = seeder(&s).await;
    let bytes = e
        .fetch_metadata(hash, &[], &[lying, seed.listen_addr()], BOUND * 3)
        .await
        .unwrap();
    assert_eq!(
        Metainfo::from_bytes(&bytes).unwrap().info_bytes,
        s.meta.info_bytes
    );
    // Nobody at all: a clear error within the deadline.
    let nobody = e
        .fetch_metadata(hash, &[], &[], Duration::from_millis(100))
        .await;
    assert!(matches!(nobody, Err(EngineError::NoMetadata)));
}
