//! Progress kept across restarts: which pieces a torrent had, believed only if its files are
//! exactly as they were when it was saved (same sizes, same modification times).
//!
//! Saved atomically (a new file written, synced, renamed over the old) and only after the
//! data it speaks of is synced to disk, so the saved list never claims a piece the disk does
//! not hold. Any write after a save changes a file's modification time, so after a crash
//! (progress saved lazily, behind the data) the files differ from the record and every
//! piece is checked instead: nothing unverified is believed, nothing verified is fetched
//! again.
//!
//! The record is bencode: `d4:filesl...e4:havei...e6:pieces...7:versioni1ee`, each file as
//! a list of its length and its modification time in nanoseconds since the epoch (-1: the
//! file does not exist).

use std::io::Write;
use std::path::{Path, PathBuf};

use spheres_metainfo::bencode::{self, OwnedValue, Value};
use spheres_swarm::Bitfield;

const VERSION: i64 = 1;

/// A file's size and modification time (ns since the epoch), or `None` if it is not there.
fn stamp(path: &Path) -> Option<(u64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((m.len(), i64::try_from(mtime.as_nanos()).unwrap_or(i64::MAX)))
}

/// Where a torrent's files are: its record lists them in this order.
pub(crate) fn file_paths(meta: &spheres_metainfo::Metainfo, torrent_root: &Path) -> Vec<PathBuf> {
    meta.files
        .iter()
        .map(|f| {
            f.path
                .iter()
                .fold(torrent_root.to_owned(), |p, c| p.join(c))
        })
        .collect()
}

/// Writes the record of `have` for files `paths` at `record` (atomically). The data must
/// already be synced.
pub(crate) fn save(record: &Path, have: &Bitfield, paths: &[PathBuf]) -> std::io::Result<()> {
    let files = paths
        .iter()
        .map(|p| {
            let (len, mtime) = stamp(p).map_or((0, -1), |(l, m)| (l as i64, m));
            OwnedValue::List(vec![OwnedValue::Int(len), OwnedValue::Int(mtime)])
        })
        .collect();
    let bytes = OwnedValue::dict([
        ("version", OwnedValue::Int(VERSION)),
        ("pieces", OwnedValue::Int(have.len().into())),
        ("have", OwnedValue::Bytes(have.as_wire().to_vec())),
        ("files", OwnedValue::List(files)),
    ])
    .encode();
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = record.with_extension("resume.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, record)?;
    // The rename itself, on disk.
    if let Some(dir) = record.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The pieces the record at `record` says we have, if it is for `pieces` pieces and every
/// file in `paths` is as it records; `None` means: check everything.
pub(crate) fn load(record: &Path, pieces: u32, paths: &[PathBuf]) -> Option<Bitfield> {
    let bytes = std::fs::read(record).ok()?;
    let value = bencode::decode(&bytes).ok()?;
    let d = value.as_dict()?;
    if d.get(b"version").and_then(Value::as_int) != Some(VERSION)
        || d.get(b"pieces").and_then(Value::as_int) != Some(pieces.into())
    {
        return None;
    }
    let have = Bitfield::from_wire(d.get(b"have")?.as_bytes()?, pieces).ok()?;
    let files = d.get(b"files")?.as_list()?;
    if files.len() != paths.len() {
        return None;
    }
    for (f, path) in files.iter().zip(paths) {
        let f = f.as_list()?;
        let (len, mtime) = (f.first()?.as_int()?, f.get(1)?.as_int()?);
        let now = stamp(path).map_or((0, -1), |(l, m)| (l as i64, m));
        if (len, mtime) != now {
            return None;
        }
    }
    Some(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_believed_only_while_the_files_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("missing");
        std::fs::write(&a, b"hello").unwrap();
        let paths = vec![a.clone(), b.clone()];
        let mut have = Bitfield::new(10);
        have.set(3);
        let record = dir.path().join("state/x.resume");
        save(&record, &have, &paths).unwrap();
        assert_eq!(load(&record, 10, &paths), Some(have.clone()));
        assert_eq!(load(&record, 11, &paths), None, "another piece count");
        assert_eq!(load(&record, 10, &paths[..1]), None, "other files");
        // A write changes the modification time (or the size): everything is checked.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .unwrap()
            .write_all(b"!")
            .unwrap();
        assert_eq!(load(&record, 10, &paths), None);
        save(&record, &have, &paths).unwrap();
        assert_eq!(load(&record, 10, &paths), Some(have.clone()));
        // A file that appears where none was.
        std::fs::write(&b, b"").unwrap();
        assert_eq!(load(&record, 10, &paths), None);
        // Garbage is no record.
        std::fs::write(&record, b"d7:versioni1e").unwrap();
        assert_eq!(load(&record, 10, &paths), None);
        assert!(!dir.path().join("state/x.resume.tmp").exists());
    }
}
