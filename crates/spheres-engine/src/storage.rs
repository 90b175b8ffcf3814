//! A torrent's bytes on disk: its files in place under a root folder, read and written at
//! positions (no seeking, no shared cursor), only ever called from blocking threads.
//!
//! A sealed share's storage (an encrypted sphere's, see `spheres_metainfo::seal`) holds the
//! plaintext on disk and speaks ciphertext: what peers read is encrypted at its offset,
//! what they send is verified encrypted and decrypted before it is written; streams to the
//! player read the plaintext ([`Storage::read_plain`]).
//!
//! **Invariant:** nothing is written that has not been verified. A piece is hashed in memory
//! when its last block arrives and written only if it matches; so a peer can never put bytes
//! of its choosing in our files, and a crash leaves only verified pieces or holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sha1::{Digest, Sha1};
use sha2::Sha256;
use spheres_metainfo::seal::Seal;
use spheres_metainfo::{Metainfo, v2};

struct StoredFile {
    path: PathBuf,
    /// Where the file starts in the torrent's byte stream.
    offset: u64,
    length: u64,
    /// BEP 47 padding: never on disk, reads as zeros.
    padding: bool,
    /// Opened on first use; for writing once anything is written.
    handle: Mutex<Option<(File, bool)>>,
}

pub struct Storage {
    files: Vec<StoredFile>,
    piece_length: u64,
    total_length: u64,
    hashes: Hashes,
    seal: Option<Seal>,
}

/// What a piece is checked against.
enum Hashes {
    /// v1 and hybrid torrents: each piece's SHA-1.
    V1(Vec<[u8; 20]>),
    /// v2-only torrents: each piece's node in its file's merkle tree.
    V2(Vec<Option<V2Piece>>),
}

/// A piece of a v2-only torrent: it holds bytes of one file only (then padding).
#[derive(Clone, Copy)]
struct V2Piece {
    hash: [u8; 32],
    /// The file's bytes in the piece; the leaves cover these and no more.
    data: u64,
    /// The file fits in one piece: its root covers as many leaves as the next power of two
    /// of its own, not a whole piece's.
    whole_file: bool,
}

impl Hashes {
    fn of(meta: &Metainfo) -> Hashes {
        let Some(v2) = meta.v2.as_ref().filter(|_| meta.is_v2_only()) else {
            return Hashes::V1(meta.piece_hashes.clone());
        };
        let pl = meta.piece_length;
        let mut pieces = vec![None; meta.piece_count()];
        // The files that are not padding are the v2 files, in order.
        for (k, f) in meta.files.iter().filter(|f| !f.padding).enumerate() {
            let first = f.offset / pl;
            for j in 0..f.length.div_ceil(pl) {
                let (Some(slot), Some(hash)) = (
                    usize::try_from(first + j)
                        .ok()
                        .and_then(|i| pieces.get_mut(i)),
                    v2.piece_hash(k, j),
                ) else {
                    continue;
                };
                *slot = Some(V2Piece {
                    hash,
                    data: pl.min(f.length - j * pl),
                    whole_file: f.length <= pl,
                });
            }
        }
        Hashes::V2(pieces)
    }

    fn len(&self) -> usize {
        match self {
            Hashes::V1(h) => h.len(),
            Hashes::V2(p) => p.len(),
        }
    }

    /// Whether `blocks` (in order) hash to piece `piece`.
    fn matches(&self, piece: u32, blocks: &[Vec<u8>], piece_length: u64) -> bool {
        match self {
            Hashes::V1(hashes) => {
                let mut h = Sha1::new();
                for b in blocks {
                    h.update(b);
                }
                let hash: [u8; 20] = h.finalize().into();
                hashes.get(piece as usize) == Some(&hash)
            }
            Hashes::V2(pieces) => {
                let Some(Some(p)) = pieces.get(piece as usize) else {
                    return false;
                };
                let leaves = v2_leaves(blocks, p.data);
                let hash = if p.whole_file {
                    v2::root_of_leaves(&leaves)
                } else {
                    v2::piece_hash(&leaves, piece_length)
                };
                hash == p.hash
            }
        }
    }
}

/// The SHA-256 of each 16 KiB of the first `data` bytes of `blocks` (blocks of any length).
fn v2_leaves(blocks: &[Vec<u8>], data: u64) -> Vec<[u8; 32]> {
    let leaf = v2::LEAF as usize;
    let mut left = usize::try_from(data).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(left.div_ceil(leaf));
    let mut h = Sha256::new();
    let mut in_leaf = 0;
    for block in blocks {
        let mut b = &block[..block.len().min(left)];
        left -= b.len();
        while !b.is_empty() {
            let take = b.len().min(leaf - in_leaf);
            h.update(&b[..take]);
            in_leaf += take;
            b = &b[take..];
            if in_leaf == leaf {
                out.push(h.finalize_reset().into());
                in_leaf = 0;
            }
        }
    }
    if in_leaf > 0 {
        out.push(h.finalize().into());
    }
    out
}

impl Storage {
    /// The storage of `meta` whose files are under `torrent_root`: the torrent's own folder
    /// for a multi-file torrent (any name), the folder holding the file for a single file.
    /// Paths come validated from `spheres-metainfo` (no `..`, no absolute paths).
    pub fn new(meta: &Metainfo, torrent_root: &Path) -> Storage {
        let files = meta
            .files
            .iter()
            .map(|f| StoredFile {
                path: f
                    .path
                    .iter()
                    .fold(torrent_root.to_owned(), |p, c| p.join(c)),
                offset: f.offset,
                length: f.length,
                padding: f.padding,
                handle: Mutex::new(None),
            })
            .collect();
        Storage {
            files,
            piece_length: meta.piece_length,
            total_length: meta.total_length,
            hashes: Hashes::of(meta),
            seal: None,
        }
    }

    /// The same storage for a sealed share: ciphertext on the wire, plaintext on disk.
    pub fn sealed(self, seal: Seal) -> Storage {
        Storage {
            seal: Some(seal),
            ..self
        }
    }

    fn piece_range(&self, piece: u32) -> Option<(u64, u64)> {
        let start = u64::from(piece) * self.piece_length;
        (start < self.total_length)
            .then(|| (start, self.piece_length.min(self.total_length - start)))
    }

    /// Calls `f(file, offset in file, range in the buffer)` for every file that bytes
    /// `start .. start + len` of the torrent fall in.
    fn spans(
        &self,
        start: u64,
        len: u64,
        mut f: impl FnMut(&StoredFile, u64, std::ops::Range<usize>) -> io::Result<()>,
    ) -> io::Result<()> {
        let end = start + len;
        let first = self.files.partition_point(|x| x.offset + x.length <= start);
        for file in &self.files[first..] {
            if file.offset >= end {
                break;
            }
            let from = start.max(file.offset);
            let to = end.min(file.offset + file.length);
            if from < to {
                f(
                    file,
                    from - file.offset,
                    (from - start) as usize..(to - start) as usize,
                )?;
            }
        }
        Ok(())
    }

    fn with_file<T>(
        file: &StoredFile,
        write: bool,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut handle = file
            .handle
            .lock()
            .map_err(|_| io::Error::other("a storage lock was poisoned"))?;
        if !matches!(&*handle, Some((_, w)) if *w || !write) {
            let opened = if write {
                if let Some(parent) = file.path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&file.path)?
            } else {
                File::open(&file.path)?
            };
            *handle = Some((opened, write));
        }
        match &*handle {
            Some((f_, _)) => f(f_),
            None => Err(io::Error::other("no file handle")),
        }
    }

    /// Reads `len` bytes at `begin` in `piece` as they travel (for a peer's request: the
    /// caller checked we have the piece and that the block is within it): encrypted for a
    /// sealed share.
    pub fn read(&self, piece: u32, begin: u32, len: u32) -> io::Result<Vec<u8>> {
        let mut buf = self.read_plain(piece, begin, len)?;
        if let Some(seal) = &self.seal {
            seal.apply(
                u64::from(piece) * self.piece_length + u64::from(begin),
                &mut buf,
            );
        }
        Ok(buf)
    }

    /// Reads `len` bytes at `begin` in `piece` as they are on disk (for the player).
    pub fn read_plain(&self, piece: u32, begin: u32, len: u32) -> io::Result<Vec<u8>> {
        let (start, plen) = self
            .piece_range(piece)
            .ok_or_else(|| io::Error::other("no such piece"))?;
        if u64::from(begin) + u64::from(len) > plen {
            return Err(io::Error::other("past the end of the piece"));
        }
        let mut buf = vec![0u8; len as usize];
        self.spans(start + u64::from(begin), len.into(), |file, at, range| {
            if file.padding {
                return Ok(());
            }
            Self::with_file(file, false, |f| f.read_exact_at(&mut buf[range], at))
        })?;
        Ok(buf)
    }

    /// Whether `blocks` (in order) are piece `piece`: their SHA-1 is the torrent's (v1 and
    /// hybrid), or their merkle hash is the node of the file's tree (v2-only; padding bytes
    /// are not hashed, and never written).
    pub fn matches(&self, piece: u32, blocks: &[Vec<u8>]) -> bool {
        self.hashes.matches(piece, blocks, self.piece_length)
    }

    /// Writes verified piece `piece`, given as its blocks in order (every one
    /// [`spheres_wire::BLOCK`] long but the last).
    pub fn write_piece(&self, piece: u32, mut blocks: Vec<Vec<u8>>) -> io::Result<()> {
        let (start, plen) = self
            .piece_range(piece)
            .ok_or_else(|| io::Error::other("no such piece"))?;
        if blocks.iter().map(|b| b.len() as u64).sum::<u64>() != plen {
            return Err(io::Error::other("a piece of the wrong length"));
        }
        let mut at = start;
        for block in &mut blocks {
            // A sealed share's verified ciphertext goes to disk decrypted.
            if let Some(seal) = &self.seal {
                seal.apply(at, block);
            }
            let block = &*block;
            self.spans(at, block.len() as u64, |file, offset, range| {
                if file.padding {
                    return Ok(());
                }
                Self::with_file(file, true, |f| f.write_all_at(&block[range], offset))
            })?;
            at += block.len() as u64;
        }
        Ok(())
    }

    /// Syncs every file written so far to disk (before progress is saved).
    pub fn sync(&self) -> io::Result<()> {
        for file in &self.files {
            let handle = file
                .handle
                .lock()
                .map_err(|_| io::Error::other("a storage lock was poisoned"))?;
            if let Some((f, true)) = &*handle {
                f.sync_data()?;
            }
        }
        Ok(())
    }

    /// Piece `piece` is on disk and right (a seed's data, or a download resumed).
    pub fn check(&self, piece: u32) -> bool {
        let Some((_, plen)) = self.piece_range(piece) else {
            return false;
        };
        let Ok(plen) = u32::try_from(plen) else {
            return false;
        };
        self.read(piece, 0, plen)
            .is_ok_and(|data| self.matches(piece, &[data]))
    }

    /// Checks every piece, on all cores; returns those that are right. Counts the pieces
    /// checked in `progress`; stops early (the rest counted wrong) once `cancel` is set.
    pub fn check_all(&self, progress: &AtomicU32, cancel: &AtomicBool) -> Vec<bool> {
        let n = self.hashes.len();
        let threads = std::thread::available_parallelism()
            .map_or(2, |t| t.get())
            .min(n.max(1));
        let mut ok = vec![false; n];
        let chunk = n.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (i, part) in ok.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (j, slot) in part.iter_mut().enumerate() {
                        if cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        *slot = self.check((i * chunk + j) as u32);
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        ok
    }

    /// Creates the torrent's empty files that are not there (a completed download has them
    /// all; they have no piece to bring them).
    pub fn create_empty_files(&self) -> io::Result<()> {
        for f in self.files.iter().filter(|f| f.length == 0 && !f.padding) {
            if let Some(parent) = f.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&f.path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2-only torrent of two files that end inside pieces, made by our maker.
    fn v2_torrent(dir: &Path) -> Metainfo {
        let data = dir.join("d");
        std::fs::create_dir(&data).unwrap();
        let bytes = |n: usize, k: u8| (0..n).map(|i| (i % 251) as u8 ^ k).collect::<Vec<u8>>();
        std::fs::write(data.join("a.bin"), bytes(100_000, 1)).unwrap();
        std::fs::write(data.join("b.bin"), bytes(20_000, 2)).unwrap();
        let opts = spheres_metainfo::CreateOptions {
            piece_length: Some(32 * 1024),
            v2_only: true,
            ..Default::default()
        };
        spheres_metainfo::create_torrent(&data, &opts, &mut |_| {})
            .unwrap()
            .1
    }

    #[test]
    fn v2_pieces_are_checked_against_the_merkle_trees_and_padding_is_not_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let meta = v2_torrent(dir.path());
        assert!(meta.is_v2_only());
        // a.bin: 4 pieces (the last 1,696 bytes then padding); b.bin: one piece.
        assert_eq!(meta.piece_count(), 5);
        let storage = Storage::new(&meta, &dir.path().join("d"));
        for piece in 0..5 {
            assert!(storage.check(piece), "piece {piece} is right on disk");
        }
        // As blocks, as a peer sends them.
        let piece = |p: u32| {
            let len = meta.piece_len(p as usize) as u32;
            let data = storage.read(p, 0, len).unwrap();
            data.chunks(16384).map(<[u8]>::to_vec).collect::<Vec<_>>()
        };
        for p in 0..5 {
            assert!(storage.matches(p, &piece(p)), "piece {p} in blocks");
        }
        // One byte of the file's own changed: refused, in the last piece of a.bin as in
        // b.bin's only piece (whose hash is its file's root).
        for (p, at) in [(3u32, 1000usize), (4, 19_999), (0, 0)] {
            let mut blocks = piece(p);
            blocks[at / 16384][at % 16384] ^= 1;
            assert!(!storage.matches(p, &blocks), "piece {p} byte {at}");
        }
        // Bytes past a file's end are padding: not hashed (and never written).
        let mut blocks = piece(3);
        blocks[1][100] = 0xff;
        assert!(storage.matches(3, &blocks));
        let other = tempfile::tempdir().unwrap();
        let fresh = Storage::new(&meta, other.path());
        fresh.write_piece(3, blocks).unwrap();
        assert!(fresh.check(3));
        assert_eq!(
            std::fs::metadata(other.path().join("a.bin")).unwrap().len(),
            100_000,
            "nothing past the file's end"
        );
    }
}
