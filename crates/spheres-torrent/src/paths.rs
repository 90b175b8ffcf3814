//! Where a torrent's files live on disk, and the checks that keep a download inside its folder
//! and keep seeding from changing a person's files.

use std::path::{Path, PathBuf};

use spheres_metainfo::Metainfo;

use crate::EngineError;

/// The folder the engine treats as the root of the torrent's relative file names: the torrent's
/// own folder for a multi-file torrent, the folder holding the file for a single-file one.
pub(crate) fn download_root(dir: &Path, meta: &Metainfo) -> PathBuf {
    if meta.multi_file {
        dir.join(&meta.name)
    } else {
        dir.to_owned()
    }
}

/// Where a torrent added with `output` lives (its root, see [`download_root`]), checked (no
/// symbolic link on the way, a seed's sizes as the torrent says) and created.
pub(crate) fn place(output: &crate::Output, meta: &Metainfo) -> Result<PathBuf, EngineError> {
    let (root, base) = match output {
        crate::Output::Download(dir) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            (download_root(dir, meta), dir.to_owned())
        }
        crate::Output::SeedInPlace(data) => {
            let root = seed_root(data, meta)?;
            (root.clone(), root)
        }
    };
    check_no_symlinks(&base, &root, meta)?;
    std::fs::create_dir_all(&root).map_err(|e| EngineError::Data {
        path: root.clone(),
        reason: e.to_string(),
    })?;
    Ok(root)
}

/// Finds the root for seeding `data` in place. `data` may be the torrent's file or folder
/// itself (any name for a folder, the torrent's name for a file), or a folder that contains it.
pub(crate) fn seed_root(data: &Path, meta: &Metainfo) -> Result<PathBuf, EngineError> {
    let md = std::fs::metadata(data).map_err(|e| EngineError::Data {
        path: data.to_owned(),
        reason: e.to_string(),
    })?;
    let root = match (meta.multi_file, md.is_dir()) {
        (true, true) if data.join(&meta.name).is_dir() && !looks_like_root(data, meta) => {
            data.join(&meta.name)
        }
        (true, true) => data.to_owned(),
        (false, false) if data.file_name().is_some_and(|n| n == meta.name.as_str()) => data
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned),
        (false, false) => {
            return Err(EngineError::Data {
                path: data.to_owned(),
                reason: format!(
                    "the torrent's file is named {:?}; rename the file or pass the folder that holds it",
                    meta.name
                ),
            });
        }
        (false, true) => data.to_owned(),
        (true, false) => {
            return Err(EngineError::Data {
                path: data.to_owned(),
                reason: "this torrent holds a folder; pass the folder, not a file".into(),
            });
        }
    };
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    check_sizes(&root, meta)?;
    Ok(root)
}

/// True when `dir` already holds the torrent's first file directly.
fn looks_like_root(dir: &Path, meta: &Metainfo) -> bool {
    meta.visible_files().next().is_some_and(|(_, f)| {
        f.path
            .iter()
            .fold(dir.to_owned(), |p, c| p.join(c))
            .is_file()
    })
}

/// Every file of the torrent exists under `root` with exactly the torrent's size.
fn check_sizes(root: &Path, meta: &Metainfo) -> Result<(), EngineError> {
    for (_, f) in meta.visible_files() {
        let path = f.path.iter().fold(root.to_owned(), |p, c| p.join(c));
        let len = std::fs::metadata(&path)
            .map_err(|e| EngineError::Data {
                path: path.clone(),
                reason: format!("{e}; the data to seed must be complete"),
            })?
            .len();
        if len != f.length {
            return Err(EngineError::Data {
                path,
                reason: format!(
                    "it is {len} bytes but the torrent says {}; refusing to seed so as not to change it",
                    f.length
                ),
            });
        }
    }
    Ok(())
}

/// No component that already exists between `base` and a file of the torrent may be a
/// symbolic link: files are opened by path, which would follow it out of the folder.
pub(crate) fn check_no_symlinks(
    base: &Path,
    root: &Path,
    meta: &Metainfo,
) -> Result<(), EngineError> {
    let refuse = |p: &Path| {
        EngineError::Data {
        path: p.to_owned(),
        reason: "a symbolic link inside the download folder could send the download elsewhere; remove it".into(),
    }
    };
    let check = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(md) if md.file_type().is_symlink() => Err(refuse(p)),
        _ => Ok(()),
    };
    // From the user's chosen folder down to the torrent's root...
    if let Ok(rest) = root.strip_prefix(base) {
        let mut p = base.to_owned();
        for c in rest.components() {
            p.push(c);
            check(&p)?;
        }
    }
    // ...and every folder and file inside it.
    for f in &meta.files {
        let mut p = root.to_owned();
        for c in &f.path {
            p.push(c);
            check(&p)?;
        }
    }
    Ok(())
}
