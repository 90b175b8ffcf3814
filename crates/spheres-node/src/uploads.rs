//! Uploads from the browser: files streamed into a hidden staging folder of the sphere, checked
//! against the free space, then moved in for the watcher to share; thumbnails for the gallery.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use spheres_metainfo::InfoHash;
use spheres_store::Sphere;

use crate::Node;
use crate::error::{NodeError, refuse};

/// Bytes free for unprivileged writes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path)
        .with_context(|| format!("cannot tell the free space at {}", path.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// What an upload must leave free on the disk, so that the node's database, logs and the
/// resume state of downloads still have room.
pub const UPLOAD_HEADROOM: u64 = 64 * 1024 * 1024;

impl Node {
    /// The staging folder of an upload batch: hidden in the sphere's folder (the watcher leaves
    /// it alone) until the browser says the batch is complete.
    pub(crate) async fn staging(&self, name: &str, batch: &str) -> Result<(Sphere, PathBuf)> {
        let sphere = self.sphere_named(name).await?;
        if !(8..=64).contains(&batch.len()) || !batch.bytes().all(|b| b.is_ascii_alphanumeric()) {
            refuse!(BadInput, "{batch:?} is not an upload id");
        }
        let dir = PathBuf::from(&sphere.folder).join(format!(".upload-{batch}"));
        Ok((sphere, dir))
    }

    /// Where one uploaded file goes: `rel` is its path inside the upload (a file, or a file in
    /// a dropped folder). Every component is checked: nothing can land outside the staging
    /// folder. Returns (partial file, final file).
    pub async fn upload_path(
        &self,
        name: &str,
        batch: &str,
        rel: &str,
    ) -> Result<(PathBuf, PathBuf), NodeError> {
        let (_, dir) = self.staging(name, batch).await?;
        let mut target = dir.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() > 32 {
            refuse!(BadInput, "{rel:?} is nested too deeply");
        }
        for part in &parts {
            let bad = part.is_empty()
                || part.len() > 255
                || *part == "."
                || *part == ".."
                || part.starts_with('.')
                || part.contains(['\\', '\0'])
                || part.chars().any(char::is_control);
            if bad {
                refuse!(BadInput, "{rel:?} cannot be a file name here");
            }
            target.push(part);
        }
        let parent = target
            .parent()
            .ok_or_else(|| NodeError::BadInput(format!("{rel:?} cannot be a file name here")))?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        if target.exists() {
            refuse!(Conflict, "{rel:?} was already uploaded");
        }
        let partial = parent.join(format!(
            ".{}.part",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        Ok((partial, target))
    }

    /// The browser finished an upload batch: its files and folders move into the sphere's
    /// folder, where the watcher shares each one once it is quiet.
    pub async fn upload_done(&self, name: &str, batch: &str) -> Result<Vec<String>, NodeError> {
        let (sphere, dir) = self.staging(name, batch).await?;
        let mut moved = Vec::new();
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("no upload {batch} in {name}"))?;
        for entry in entries.flatten() {
            let file = entry.file_name();
            let text = file.to_string_lossy().into_owned();
            if text.starts_with('.') {
                continue;
            }
            let target = PathBuf::from(&sphere.folder).join(&file);
            if target.exists() {
                refuse!(
                    Conflict,
                    "{text:?} is already in {name}; rename it and send it again"
                );
            }
            std::fs::rename(entry.path(), &target)
                .with_context(|| format!("cannot move {text} into {name}"))?;
            moved.push(text);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(moved)
    }

    /// Drops an upload that will not be finished (cut, refused, or cancelled in the page).
    pub async fn upload_cancel(&self, name: &str, batch: &str) -> Result<(), NodeError> {
        let (_, dir) = self.staging(name, batch).await?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
                .with_context(|| format!("cannot remove {}", dir.display()))
                .map_err(NodeError::from),
            _ => Ok(()),
        }
    }

    /// Bytes free for unprivileged writes on the disk of a sphere's folder.
    pub async fn free_space(&self, name: &str) -> Result<u64, NodeError> {
        let sphere = self.sphere_named(name).await?;
        Ok(free_bytes(Path::new(&sphere.folder))?)
    }

    /// What the engine says of share `info_hash` of sphere `name` (404 when the sphere has no
    /// such share; `None` when the engine does not have it).
    pub(crate) async fn share_status(
        &self,
        name: &str,
        info_hash: &str,
    ) -> Result<Option<spheres_torrent::TorrentStatus>, NodeError> {
        let sphere = self.sphere_named(name).await?;
        if self.store.share(sphere.id, info_hash).await?.is_none() {
            refuse!(NotFound, "{name:?} has no share {info_hash}");
        }
        let hash: InfoHash = info_hash
            .parse()
            .map_err(|_| NodeError::BadInput("bad share id".into()))?;
        Ok(self.engine.status(&hash))
    }

    /// A share's thumbnail (JPEG), once the share is complete here; `None` if it has nothing
    /// to show (not a photo or video, or no ffmpeg for videos).
    pub async fn thumbnail(
        &self,
        name: &str,
        info_hash: &str,
    ) -> Result<Option<PathBuf>, NodeError> {
        let Some(st) = self
            .share_status(name, info_hash)
            .await?
            .filter(|s| s.is_complete())
        else {
            return Ok(None);
        };
        let files: Vec<PathBuf> = st
            .files
            .iter()
            .map(|f| st.root.join(f.path.split('/').collect::<PathBuf>()))
            .collect();
        let cache = self.settings.data_dir.join("thumbs");
        Ok(crate::thumbs::make(cache, info_hash.to_owned(), files).await)
    }
}
