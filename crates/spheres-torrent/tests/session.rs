//! The engine's session across restarts, pause/resume and removal, with a real tracker.

use std::time::Duration;

use spheres_metainfo::{CreateOptions, InfoHash, create_torrent};
use spheres_testkit::{wait_for, write_random};
use spheres_torrent::{AddOptions, Engine, EngineConfig, Source, TorrentState};

fn state(e: &Engine, h: &InfoHash) -> Option<TorrentState> {
    e.status(h).map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_session_resumes_without_starting_over() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = spheres_tracker::start(
        spheres_tracker::TrackerConfig {
            interval: Duration::from_secs(2),
            min_interval: Duration::from_secs(1),
            ..Default::default()
        },
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    let data_path = dir.path().join("seed/holiday.mp4");
    let data = write_random(&data_path, 48 << 20, 1);
    let opts = CreateOptions {
        trackers: vec![vec![tracker.http_announce_url(None).unwrap()]],
        ..Default::default()
    };
    let (torrent, _) = create_torrent(&data_path, &opts, &mut |_| {}).unwrap();

    let seeder = Engine::start(EngineConfig::new(dir.path().join("unused")))
        .await
        .unwrap();
    let hash = seeder
        .add(
            Source::Torrent(torrent.clone()),
            AddOptions::seed(&data_path),
        )
        .await
        .unwrap();
    wait_for("seeder", || {
        state(&seeder, &hash) == Some(TorrentState::Seeding)
    })
    .await;

    let downloads = dir.path().join("downloads");
    let state_dir = dir.path().join("state");
    let config = |limit: Option<u32>| {
        let mut c = EngineConfig::new(&downloads);
        c.state_dir = Some(state_dir.clone());
        c.download_limit_bps = limit.and_then(std::num::NonZeroU32::new);
        c
    };

    // First run: slow enough to stop it part-way.
    let first = Engine::start(config(Some(8 << 20))).await.unwrap();
    first
        .add(
            Source::Torrent(torrent.clone()),
            AddOptions::download(&downloads),
        )
        .await
        .unwrap();
    wait_for("a third of the download", || {
        first
            .status(&hash)
            .is_some_and(|s| s.have_bytes > s.total_bytes / 3)
    })
    .await;
    let before = first.status(&hash).unwrap();
    assert!(before.have_bytes < before.total_bytes);
    first.shutdown().await;
    drop(first);

    // Second run: the torrent comes back by itself, keeps what it had, and completes.
    let second = Engine::start(config(None)).await.unwrap();
    let restored = second.list();
    assert_eq!(restored.len(), 1, "the torrent was not restored");
    wait_for("the restored torrent's check", || {
        state(&second, &hash).is_some_and(|s| s != TorrentState::Checking)
    })
    .await;
    let after = second.status(&hash).unwrap();
    assert!(
        after.have_bytes >= before.have_bytes / 2,
        "restart lost the download: had {} before, {} after",
        before.have_bytes,
        after.have_bytes
    );
    wait_for("completion after restart", || {
        state(&second, &hash) == Some(TorrentState::Seeding)
    })
    .await;
    assert!(std::fs::read(downloads.join("holiday.mp4")).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("a/notes.txt");
    write_random(&data_path, 100_000, 1);
    let (torrent, meta) =
        create_torrent(&data_path, &CreateOptions::default(), &mut |_| {}).unwrap();
    let e = Engine::start(EngineConfig::new(dir.path().join("dl")))
        .await
        .unwrap();
    let h = e
        .add(
            Source::Torrent(torrent.clone()),
            AddOptions::seed(&data_path),
        )
        .await
        .unwrap();
    wait_for("seeding", || state(&e, &h) == Some(TorrentState::Seeding)).await;
    let st = e.status(&h).unwrap();
    assert_eq!(st.files.len(), 1);
    assert_eq!(st.files[0].have_bytes, 100_000);
    assert_eq!(st.name, meta.name);
    e.pause(&h).await.unwrap();
    assert_eq!(state(&e, &h), Some(TorrentState::Paused));
    e.resume(&h).await.unwrap();
    wait_for("seeding again", || {
        state(&e, &h) == Some(TorrentState::Seeding)
    })
    .await;
    e.remove(&h, false).await.unwrap();
    assert!(e.status(&h).is_none());
    assert!(e.list().is_empty());
    // Removing never deletes data seeded in place unless asked.
    assert!(data_path.exists());
}

/// A sphere's torrent admits that sphere's members only, whoever adds it again: adding the
/// same torrent for another sphere (a member there announced its info hash) changes nothing.
/// Kept from the last run, it admits nobody until the node says who, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrents_admission_is_given_once() {
    use spheres_torrent::{Admit, Members};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("seed/letter.pdf");
    write_random(&data_path, 300_000, 4);
    let opts = CreateOptions {
        private: true,
        ..Default::default()
    };
    let (torrent, meta) = create_torrent(&data_path, &opts, &mut |_| {}).unwrap();
    let hash = meta.info_hash;
    let (x, y) = ([1u8; 32], [2u8; 32]);
    let sphere = |secret| Admit::Only(Arc::new(Members::new(secret)));
    let mut config = EngineConfig::new(dir.path().join("downloads"));
    config.state_dir = Some(dir.path().join("state"));

    // Who gets the metadata from the session: a node proving `secret`.
    let probe = spheres_engine::Engine::start(Default::default())
        .await
        .unwrap();
    let probe = &probe;
    let gets = |e: &Engine, secret: [u8; 32]| {
        let at = [e.listen_addr()];
        async move {
            probe
                .fetch_metadata_as(
                    hash.0,
                    &[],
                    &at,
                    Duration::from_secs(5),
                    Arc::new(Members::new(secret)),
                )
                .await
                .is_ok()
        }
    };

    let e = Engine::start(config.clone()).await.unwrap();
    let mut seed = AddOptions::seed(dir.path().join("seed"));
    seed.admit = sphere(x);
    e.add(Source::Torrent(torrent.clone()), seed.clone())
        .await
        .unwrap();
    seed.admit = sphere(y);
    e.add(Source::Torrent(torrent.clone()), seed).await.unwrap();
    assert!(!e.set_admit(&hash, sphere(y)));
    assert!(gets(&e, x).await, "sphere X's member is refused");
    assert!(!gets(&e, y).await, "sphere Y took sphere X's torrent");
    e.shutdown().await;

    let e = Engine::start(config).await.unwrap();
    assert!(state(&e, &hash).is_some(), "the torrent was kept");
    assert!(
        !gets(&e, x).await,
        "a kept torrent admitted someone before it was told who"
    );
    assert!(e.set_admit(&hash, sphere(x)));
    assert!(!e.set_admit(&hash, sphere(y)));
    assert!(gets(&e, x).await);
    assert!(!gets(&e, y).await);
    e.shutdown().await;
}
