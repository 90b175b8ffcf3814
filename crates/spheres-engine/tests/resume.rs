//! Progress across restarts: believed when the files are as recorded, checked piece by piece
//! when they are not (a crash after more was written, or someone changed a file), and never
//! a piece claimed that the disk does not hold.

mod common;

use std::sync::Arc;

use common::*;
use spheres_engine::{Engine, EngineConfig, Open};

async fn engine_at(state: &std::path::Path) -> Engine {
    Engine::start(EngineConfig {
        state_dir: Some(state.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_survives_a_restart_and_is_checked_when_files_changed() {
    let s = share(&[]);
    let hash = s.meta.info_hash.0;
    let seed = seeder(&s).await;
    let state = s.dir.path().join("state");
    let out = s.dir.path().join("out");

    let first = engine_at(&state).await;
    let st = first
        .add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    assert!(!st.resumed && st.have == 0);
    first.connect(hash, seed.listen_addr()).unwrap();
    completes(&first, &s).await;
    first.shutdown().await;

    // A clean restart: the record is believed, nothing is hashed.
    let second = engine_at(&state).await;
    let st = second
        .add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    assert!(st.resumed && st.complete, "{st:?}");
    second.shutdown().await;

    // A file changed after the record (as after a crash that left more written than
    // recorded, or a person editing it): every piece is checked, the bad ones fetched again.
    let video = out.join("album/a/holiday.mp4");
    let mut bytes = std::fs::read(&video).unwrap();
    bytes[300_000..300_100].fill(0);
    std::fs::write(&video, &bytes).unwrap();
    let third = engine_at(&state).await;
    let st = third
        .add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    assert!(!st.resumed, "the file is not as recorded");
    assert_eq!(st.have, st.pieces - 1, "one piece is wrong: {st:?}");
    third.connect(hash, seed.listen_addr()).unwrap();
    completes(&third, &s).await;
    same_tree(&s.data, &out.join("album"));
    third.shutdown().await;

    // A record for other files (a torrent of the same name elsewhere) is not believed.
    let elsewhere = s.dir.path().join("elsewhere");
    let fourth = engine_at(&state).await;
    let st = fourth
        .add(s.meta.clone(), elsewhere, Arc::new(Open))
        .await
        .unwrap();
    assert!(!st.resumed && st.have == 0, "{st:?}");
}
