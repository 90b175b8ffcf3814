//! Peers found through trackers: ours over HTTP and over UDP (with a key in the path, as the
//! node's private trackers have it), and libtorrent finding our seed through the tracker our
//! seed announced to.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use spheres_engine::{EngineEvent, Open};
use spheres_testkit::libtorrent::LtPeer;
use spheres_tracker::KeyScope;

/// The share's torrent announcing to `trackers` only (one tier each).
fn with_trackers(s: &Share, trackers: &[String]) -> Arc<spheres_metainfo::Metainfo> {
    let bytes = std::fs::read(&s.torrent).unwrap();
    let bytes = spheres_metainfo::with_trackers(&bytes, trackers).unwrap();
    Arc::new(spheres_metainfo::Metainfo::from_bytes(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_meet_through_http_and_udp_trackers() {
    let tr = tracker(true).await;
    tr.tracker.grant_key("seedkey", KeyScope::AllTorrents);
    tr.tracker.grant_key("leechkey", KeyScope::AllTorrents);
    let http = tr.http_announce_url(Some("seedkey")).unwrap();
    let s = share(&[http]);
    let _seed = announced_seeder(&s).await;
    let hash = s.meta.info_hash.0;
    // The leech knows only a UDP tracker, with its own key.
    let udp = tr.udp_announce_url(Some("leechkey")).unwrap();
    let e = engine().await;
    e.add(
        with_trackers(&s, &[udp]),
        s.dir.path().join("udp"),
        Arc::new(Open),
    )
    .await
    .unwrap();
    completes(&e, &s).await;
    same_tree(&s.data, &s.dir.path().join("udp/album"));

    // A key the tracker does not know: refused, and the refusal is reported.
    // Given its tracker after it was added (as the node does when a key arrives).
    let stranger = engine().await;
    let mut events = stranger.subscribe();
    stranger
        .add(
            with_trackers(&s, &[]),
            s.dir.path().join("no"),
            Arc::new(Open),
        )
        .await
        .unwrap();
    stranger
        .set_trackers(
            &hash,
            vec![vec![tr.http_announce_url(Some("wrong")).unwrap()]],
        )
        .unwrap();
    let refused = tokio::time::timeout(BOUND * 3, async {
        loop {
            if let Ok(EngineEvent::TrackerError { error, .. }) = events.recv().await {
                return error;
            }
        }
    })
    .await
    .expect("the tracker's refusal");
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(stranger.status(&hash).unwrap().have, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_our_seed_through_the_tracker() {
    let tr = tracker(false).await;
    let s = share(&[tr.http_announce_url(None).unwrap()]);
    let _seed = announced_seeder(&s).await;
    assert_eq!(tr.tracker.peer_count(&s.meta.info_hash), 1);
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech(&s.torrent, &out, &[]);
    tokio::task::block_in_place(|| lt.wait_for("complete", Duration::from_secs(90)));
    same_tree(&s.data, &out.join("album"));
}
