//! The sphere folders, watched: a file or folder copied into a sphere's folder becomes a
//! share once it has stopped changing; a `.torrent` dropped there is passed on as it is, and a
//! `.magnet` file (a magnet link in a text file) once its metadata is fetched.
//!
//! By polling (docs/decisions/0006-watching-sphere-folders-by-polling.md): every
//! [`SCAN_EVERY`], each top-level entry's total size and latest modification time are read;
//! an entry is shared when two scans [`QUIET`] apart see the same numbers. Entries the node
//! itself put there (downloads) or already shares, hidden files and partial downloads of
//! other programs are left alone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Node, NodeError};

pub const SCAN_EVERY: Duration = Duration::from_secs(1);
/// How long an entry must stay unchanged before it is shared.
pub const QUIET: Duration = Duration::from_secs(2);
/// How long before sharing an entry that failed is tried again.
pub const RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Snapshot {
    bytes: u64,
    files: u64,
    newest: Option<SystemTime>,
}

/// Sums an entry (a file, or a folder walked without following links).
fn snapshot(path: &Path) -> Option<Snapshot> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_file() {
        return Some(Snapshot {
            bytes: meta.len(),
            files: 1,
            newest: meta.modified().ok(),
        });
    }
    if !meta.is_dir() {
        return None;
    }
    let mut snap = Snapshot {
        bytes: 0,
        files: 0,
        newest: meta.modified().ok(),
    };
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let Ok(m) = entry.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.is_file() {
                snap.bytes += m.len();
                snap.files += 1;
            }
            if let Ok(t) = m.modified() {
                snap.newest = snap.newest.max(Some(t));
            }
        }
    }
    Some(snap)
}

/// An upload from the web page that nobody finished (a tab closed midway) is removed a day
/// after it last changed.
fn forget_abandoned_upload(path: &Path) {
    let stale = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_UPLOAD);
    if stale {
        tracing::info!(path = %path.display(), "removing an upload nobody finished");
        let _ = std::fs::remove_dir_all(path);
    }
}

/// How long an unfinished upload is kept.
const ABANDONED_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// Names other programs use while still writing, and hidden files.
fn ignored(name: &str) -> bool {
    let lower = name.to_lowercase();
    name.starts_with('.')
        || name.starts_with('~')
        || [".part", ".crdownload", ".tmp", ".partial", ".download", "~"]
            .iter()
            .any(|s| lower.ends_with(s))
}

struct Seen {
    snap: Snapshot,
    since: Instant,
}

impl Node {
    /// Runs forever: scans the sphere folders and shares what was dropped in.
    pub(super) async fn watch_folders(self: Arc<Self>) {
        let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
        // Entries that failed to share, and when: retried after RETRY (the cause may pass, e.g.
        // the owner's tracker key not arrived yet), or at once if they change.
        let mut failed: HashMap<(PathBuf, Snapshot), Instant> = HashMap::new();
        let mut tick = tokio::time::interval(SCAN_EVERY);
        loop {
            tick.tick().await;
            let Ok(spheres) = self.store.spheres().await else {
                continue;
            };
            let mut present = HashSet::new();
            // A keyless seeder cannot share: nothing is taken from its folder.
            for sphere in spheres.into_iter().filter(|s| !s.holding) {
                let Ok(shares) = self.store.shares(sphere.id).await else {
                    continue;
                };
                let known: HashSet<String> = shares
                    .iter()
                    .flat_map(|s| [Some(s.name.clone()), s.path.clone()])
                    .flatten()
                    .collect();
                let folder = PathBuf::from(&sphere.folder);
                let Ok(entries) = std::fs::read_dir(&folder) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".upload-") {
                        forget_abandoned_upload(&path);
                        continue;
                    }
                    if ignored(&name)
                        || known.contains(&name)
                        || known.contains(&path.to_string_lossy().into_owned())
                        || self.dropped_already(&path).await
                    {
                        continue;
                    }
                    let Some(snap) = tokio::task::spawn_blocking({
                        let p = path.clone();
                        move || snapshot(&p)
                    })
                    .await
                    .ok()
                    .flatten() else {
                        continue;
                    };
                    present.insert(path.clone());
                    let failed_recently = failed
                        .get(&(path.clone(), snap))
                        .is_some_and(|at| at.elapsed() < RETRY);
                    if snap.files == 0 || failed_recently {
                        continue;
                    }
                    let quiet = match seen.get(&path) {
                        Some(s) if s.snap == snap => s.since.elapsed() >= QUIET,
                        _ => {
                            seen.insert(
                                path.clone(),
                                Seen {
                                    snap,
                                    since: Instant::now(),
                                },
                            );
                            false
                        }
                    };
                    if !quiet {
                        continue;
                    }
                    seen.remove(&path);
                    let lower = name.to_lowercase();
                    let result = if lower.ends_with(".torrent") && snap.files == 1 {
                        self.share_dropped_torrent(&sphere.name, &path)
                            .await
                            .map_err(NodeError::from)
                    } else if lower.ends_with(".magnet") && snap.files == 1 {
                        self.share_dropped_magnet(&sphere.name, &path)
                            .await
                            .map_err(NodeError::from)
                    } else {
                        tracing::info!(sphere = %sphere.name, path = %path.display(), "sharing what was dropped into the sphere's folder");
                        self.share(&sphere.name, &path).await.map(|_| ())
                    };
                    if let Err(e) = result {
                        tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot share what was dropped in");
                        failed.insert((path.clone(), snap), Instant::now());
                    }
                }
            }
            seen.retain(|p, _| present.contains(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_changes_its_snapshot_when_a_file_grows_or_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Photos");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.jpg"), b"1234").unwrap();
        let first = snapshot(&root).unwrap();
        assert_eq!((first.bytes, first.files), (4, 1));
        std::fs::write(root.join("sub/b.jpg"), b"12").unwrap();
        let second = snapshot(&root).unwrap();
        assert_eq!((second.bytes, second.files), (6, 2));
        assert_ne!(first, second);
        assert!(snapshot(&dir.path().join("missing")).is_none());
    }

    #[test]
    fn partial_and_hidden_files_are_left_alone() {
        for name in [
            ".DS_Store",
            "film.mkv.part",
            "x.crdownload",
            "~lock",
            "doc.odt~",
        ] {
            assert!(ignored(name), "{name}");
        }
        for name in ["film.mkv", "Photos", "été.jpg"] {
            assert!(!ignored(name), "{name}");
        }
    }
}
