#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spheres_engine::{Admission, Engine, EngineConfig, Open};
use spheres_metainfo::{CreateOptions, Metainfo, create_torrent};

/// A folder of three files (one spanning pieces, one smaller than a piece, one with a short
/// last piece) and its torrent, made by our maker with 32 KiB pieces (several blocks each).
pub struct Share {
    pub dir: tempfile::TempDir,
    /// The shared folder itself (`dir/seed/album`).
    pub data: PathBuf,
    pub torrent: PathBuf,
    pub meta: Arc<Metainfo>,
}

pub fn share(trackers: &[String]) -> Share {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed/album");
    spheres_testkit::write_random(&data.join("a/holiday.mp4"), 700_001, 1);
    spheres_testkit::write_random(&data.join("b.jpg"), 5_000, 2);
    spheres_testkit::write_random(&data.join("c.txt"), 90_000, 3);
    let (bytes, meta) = create_torrent(
        &data,
        &CreateOptions {
            piece_length: Some(32 * 1024),
            trackers: if trackers.is_empty() {
                vec![]
            } else {
                vec![trackers.to_vec()]
            },
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let torrent = dir.path().join("album.torrent");
    std::fs::write(&torrent, bytes).unwrap();
    Share {
        data,
        torrent,
        meta: Arc::new(meta),
        dir,
    }
}

pub async fn engine() -> Engine {
    Engine::start(EngineConfig::default()).await.unwrap()
}

/// An engine seeding the share.
pub async fn seeder(s: &Share) -> Engine {
    seeder_for(s, Arc::new(Open)).await
}

/// An engine seeding the share to the peers `admission` lets in.
pub async fn seeder_for(s: &Share, admission: Arc<dyn Admission>) -> Engine {
    let e = engine().await;
    let st = e
        .add(
            s.meta.clone(),
            s.data.parent().unwrap().to_owned(),
            admission,
        )
        .await
        .unwrap();
    assert!(st.complete, "the seed's data checks");
    e
}

/// Waits for `e` to complete the torrent, at most a minute (a bound, not a synchronisation).
pub async fn completes(e: &Engine, s: &Share) {
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        e.wait_complete(&s.meta.info_hash.0),
    )
    .await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "not complete in a minute: {:?}",
        e.status(&s.meta.info_hash.0)
    );
}

/// Every file of `a` is in `b` with the same bytes, and nothing more.
pub fn same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let mut v = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    v.push(p.strip_prefix(root).unwrap().to_owned());
                }
            }
        }
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "the same files");
    for f in la {
        assert!(
            std::fs::read(a.join(&f)).unwrap() == std::fs::read(b.join(&f)).unwrap(),
            "{} differs",
            f.display()
        );
    }
}
