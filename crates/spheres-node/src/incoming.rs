//! Where a member's share lands: never straight at its name in the sphere's folder.
//!
//! A download goes to `<sphere folder>/.spheres/incoming/<info hash>/` (hidden, so the folder
//! watcher leaves it alone) and the engine seeds it from there for good. Once it is complete
//! and verified, it appears in the sphere's folder under its name, or `name (2)` when that
//! name is taken (as file managers do), as hard links to the verified files: no second copy
//! on disk, nothing for the engine to check again, nothing cut for someone watching it.
//!
//! What this must never do: write through a name it did not create. Every name in the
//! sphere's folder is made with calls that fail when it exists (`link`, `mkdir`, a rename
//! that does not replace), so a file already there, the person's own or another share's, is
//! never touched; and nothing is at its final name before every piece was verified, so a
//! crash or `kill -9` leaves no file there that claims to be complete and is not.

use std::io;
use std::path::{Path, PathBuf};

use spheres_metainfo::Metainfo;

/// The hidden folder, inside a sphere's folder, that holds what is still arriving.
pub fn incoming_dir(sphere_folder: &Path, info_hash: &str) -> PathBuf {
    sphere_folder
        .join(".spheres")
        .join("incoming")
        .join(info_hash)
}

/// `name`, or `name (n)` before its extension for a file ("holiday (2).mp4"), after it for a
/// folder ("Photos (2)").
fn numbered(name: &str, n: u32, folder: bool) -> String {
    if n < 2 {
        return name.to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !folder && !stem.is_empty() => format!("{stem} ({n}).{ext}"),
        _ => format!("{name} ({n})"),
    }
}

/// Makes a verified download visible in the sphere's folder; returns where it is.
/// `incoming` is its [`incoming_dir`], `meta` its torrent (names already validated).
pub fn place(incoming: &Path, sphere_folder: &Path, meta: &Metainfo) -> io::Result<PathBuf> {
    for n in 1..=999 {
        let target = sphere_folder.join(numbered(&meta.name, n, meta.multi_file));
        let made = if meta.multi_file {
            place_folder(&incoming.join(&meta.name), &target, meta)
        } else {
            place_file(&incoming.join(&meta.name), &target)
        };
        match made {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} and 998 numbered names are all taken", meta.name),
    ))
}

/// A new name for one verified file: a hard link, or where the file system has none, a copy
/// under a hidden name renamed into place without replacing anything.
fn place_file(src: &Path, target: &Path) -> io::Result<()> {
    match std::fs::hard_link(src, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => {
            tracing::info!(error = %e, "no hard links here; copying the download into place");
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = target.with_file_name(format!(".{name}.spheres-part"));
            // A new file (never one that is there, nor through a link), removed on failure.
            let copied = (|| -> io::Result<()> {
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                io::copy(&mut std::fs::File::open(src)?, &mut out)?;
                out.sync_all()
            })();
            if let Err(e) = copied {
                if e.kind() != io::ErrorKind::AlreadyExists {
                    let _ = std::fs::remove_file(&tmp);
                }
                return Err(io::Error::other(e.to_string()));
            }
            let renamed = rustix::fs::renameat_with(
                rustix::fs::CWD,
                &tmp,
                rustix::fs::CWD,
                target,
                rustix::fs::RenameFlags::NOREPLACE,
            );
            if let Err(e) = renamed {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            Ok(())
        }
    }
}

/// A new folder holding the torrent's files (and only those). Made by us from nothing, so
/// when something fails midway it is removed whole.
fn place_folder(src: &Path, target: &Path, meta: &Metainfo) -> io::Result<()> {
    std::fs::create_dir(target)?;
    let filled = (|| -> io::Result<()> {
        for (_, f) in meta.visible_files() {
            let rel: PathBuf = f.path.iter().collect();
            let to = target.join(&rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            place_file(&src.join(&rel), &to)?;
        }
        Ok(())
    })();
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(target);
        // Another name would not help: this is not a name that was taken.
        if e.kind() == io::ErrorKind::AlreadyExists {
            return Err(io::Error::other(e.to_string()));
        }
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent_of(path: &Path) -> Metainfo {
        let opts = spheres_metainfo::CreateOptions::default();
        spheres_metainfo::create_torrent(path, &opts, &mut |_| {})
            .unwrap()
            .1
    }

    #[test]
    fn names_get_numbers_as_file_managers_give_them() {
        assert_eq!(numbered("holiday.mp4", 1, false), "holiday.mp4");
        assert_eq!(numbered("holiday.mp4", 2, false), "holiday (2).mp4");
        assert_eq!(numbered("archive.tar.gz", 3, false), "archive.tar (3).gz");
        assert_eq!(numbered(".hidden", 2, false), ".hidden (2)");
        assert_eq!(numbered("Photos 2024.05", 2, true), "Photos 2024.05 (2)");
    }

    /// Attack: a member shares files named like the receiver's own (`notes.txt`, a folder
    /// `Photos` with a `.bashrc` of theirs beside). The receiver's files keep their bytes;
    /// the share arrives beside them under new names.
    #[test]
    fn a_download_never_replaces_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("Family");
        std::fs::create_dir_all(folder.join("Photos")).unwrap();
        std::fs::write(folder.join("notes.txt"), b"mine").unwrap();
        std::fs::write(folder.join("notes (2).txt"), b"mine too").unwrap();
        std::fs::write(folder.join("Photos/a.jpg"), b"my photo").unwrap();

        // A single file named like two of ours.
        let src = dir.path().join("theirs/notes.txt");
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(&src, b"theirs").unwrap();
        let meta = torrent_of(&src);
        let incoming = incoming_dir(&folder, &meta.info_hash.to_hex());
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::copy(&src, incoming.join("notes.txt")).unwrap();
        let placed = place(&incoming, &folder, &meta).unwrap();
        assert_eq!(placed, folder.join("notes (3).txt"));
        assert_eq!(std::fs::read(&placed).unwrap(), b"theirs");
        assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"mine");
        assert_eq!(
            std::fs::read(folder.join("notes (2).txt")).unwrap(),
            b"mine too"
        );

        // A folder named like ours.
        let theirs = dir.path().join("theirs/Photos");
        std::fs::create_dir_all(theirs.join("sub")).unwrap();
        std::fs::write(theirs.join("a.jpg"), b"their photo").unwrap();
        std::fs::write(theirs.join("sub/b.jpg"), b"another").unwrap();
        let meta = torrent_of(&theirs);
        let incoming = incoming_dir(&folder, &meta.info_hash.to_hex());
        std::fs::create_dir_all(incoming.join("Photos/sub")).unwrap();
        std::fs::copy(theirs.join("a.jpg"), incoming.join("Photos/a.jpg")).unwrap();
        std::fs::copy(theirs.join("sub/b.jpg"), incoming.join("Photos/sub/b.jpg")).unwrap();
        let placed = place(&incoming, &folder, &meta).unwrap();
        assert_eq!(placed, folder.join("Photos (2)"));
        assert_eq!(std::fs::read(placed.join("sub/b.jpg")).unwrap(), b"another");
        assert_eq!(
            std::fs::read(folder.join("Photos/a.jpg")).unwrap(),
            b"my photo"
        );
        assert!(!folder.join("Photos/sub").exists());
    }

    /// A folder whose files are not all there (the engine's state lied, or the disk did)
    /// leaves nothing behind under the final name.
    #[test]
    fn a_folder_that_cannot_be_placed_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("Family");
        std::fs::create_dir_all(&folder).unwrap();
        let theirs = dir.path().join("theirs/Trip");
        std::fs::create_dir_all(&theirs).unwrap();
        std::fs::write(theirs.join("a.jpg"), b"1").unwrap();
        std::fs::write(theirs.join("b.jpg"), b"2").unwrap();
        let meta = torrent_of(&theirs);
        let incoming = incoming_dir(&folder, &meta.info_hash.to_hex());
        std::fs::create_dir_all(incoming.join("Trip")).unwrap();
        std::fs::copy(theirs.join("a.jpg"), incoming.join("Trip/a.jpg")).unwrap();
        assert!(place(&incoming, &folder, &meta).is_err());
        assert!(!folder.join("Trip").exists());
    }
}
