//! Web seeds (BEP 19): nginx (a server we did not write) has the files; our engine fetches
//! the torrent from it with no peer at all, for a folder and for a single file; a web seed
//! with wrong bytes never gets them on disk and is dropped, and peers finish the download.

mod common;

use std::sync::Arc;

use common::*;
use spheres_engine::{Engine, EngineEvent, Open};
use spheres_metainfo::{CreateOptions, Metainfo, create_torrent};
use spheres_testkit::nginx::Nginx;

/// The share's torrent again, with `web_seeds`.
fn with_web_seeds(s: &Share, web_seeds: Vec<String>) -> Arc<Metainfo> {
    let (_, meta) = create_torrent(
        &s.data,
        &CreateOptions {
            piece_length: Some(32 * 1024),
            web_seeds,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    Arc::new(meta)
}

/// An engine downloading `meta` (with no peer), and its events from before it started.
async fn leech(
    meta: &Arc<Metainfo>,
) -> (
    Engine,
    tempfile::TempDir,
    tokio::sync::broadcast::Receiver<EngineEvent>,
) {
    let e = engine().await;
    let events = e.subscribe();
    let out = tempfile::tempdir().unwrap();
    e.add(meta.clone(), out.path().to_owned(), Arc::new(Open))
        .await
        .unwrap();
    (e, out, events)
}

async fn done(e: &Engine, meta: &Metainfo) {
    let ok = tokio::time::timeout(BOUND * 6, e.wait_complete(&meta.info_hash.0)).await;
    assert!(
        matches!(ok, Ok(Ok(()))),
        "not complete: {:?}",
        e.status(&meta.info_hash.0)
    );
}

#[tokio::test]
async fn a_folder_comes_from_an_nginx_web_seed_alone() {
    let s = share(&[]);
    let work = tempfile::tempdir().unwrap();
    // nginx serves the folder the torrent's folder is in: URL/album/a/holiday.mp4...
    let web = Nginx::serve(s.data.parent().unwrap(), work.path());
    let meta = with_web_seeds(&s, vec![format!("http://{}/", web.addr)]);
    let (e, out, _) = leech(&meta).await;
    done(&e, &meta).await;
    same_tree(&s.data, &out.path().join("album"));
    let st = e.status(&meta.info_hash.0).unwrap();
    assert_eq!(st.peers, 0, "no peer: every byte came over HTTP");
    let log = Nginx::requests(work.path());
    assert!(
        log.iter()
            .any(|l| l.contains("/album/a/holiday.mp4") && l.contains(" 206 ")),
        "{log:?}"
    );
    e.shutdown().await;
}

#[tokio::test]
async fn a_single_file_comes_from_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.webm");
    spheres_testkit::write_random(&file, 300_001, 7);
    // The server has it under another name, and the URL names the file itself (BEP 19
    // allows a folder or the file).
    std::fs::create_dir(dir.path().join("srv")).unwrap();
    std::fs::copy(&file, dir.path().join("srv/stored-as.bin")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let web = Nginx::serve(&dir.path().join("srv"), work.path());
    let (_, meta) = create_torrent(
        &file,
        &CreateOptions {
            piece_length: Some(32 * 1024),
            web_seeds: vec![format!("http://{}/stored-as.bin", web.addr)],
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let meta = Arc::new(meta);
    let (e, out, _) = leech(&meta).await;
    done(&e, &meta).await;
    assert_eq!(
        std::fs::read(out.path().join("clip.webm")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    e.shutdown().await;
}

#[tokio::test]
async fn a_web_seed_with_wrong_bytes_is_dropped_and_peers_finish() {
    let s = share(&[]);
    // A copy of the folder with every byte of one file flipped.
    let bad = tempfile::tempdir().unwrap();
    let copy = bad.path().join("album");
    for entry in ["a/holiday.mp4", "b.jpg", "c.txt", "d/empty.txt"] {
        let to = copy.join(entry);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(s.data.join(entry)).unwrap();
        if entry == "a/holiday.mp4" {
            bytes.iter_mut().for_each(|b| *b = !*b);
        }
        std::fs::write(to, bytes).unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let web = Nginx::serve(bad.path(), work.path());
    let meta = with_web_seeds(&s, vec![format!("http://{}/", web.addr)]);
    let (e, out, mut events) = leech(&meta).await;
    let dropped = tokio::time::timeout(BOUND * 3, async {
        loop {
            if let Ok(EngineEvent::WebSeedError { error, .. }) = events.recv().await
                && error.contains("hashed wrong")
            {
                return error;
            }
        }
    })
    .await
    .expect("the web seed is dropped");
    assert!(dropped.contains("no longer used"));
    // A real seed now: the download completes, with the right bytes.
    let seed = seeder(&s).await;
    e.add_peers(&meta.info_hash.0, &[seed.listen_addr()])
        .unwrap();
    done(&e, &meta).await;
    same_tree(&s.data, &out.path().join("album"));
    let st = e.status(&meta.info_hash.0).unwrap();
    assert!(st.hash_failures >= 3, "{st:?}");
    e.shutdown().await;
    seed.shutdown().await;
}
