//! Our torrent maker: a file or a folder to a v1 `.torrent` (BEP 3).
//!
//! Why our own: librqbit 9.1.0's creator writes one hash too many when the size is an exact
//! multiple of the piece length, drops the last hash when the last file is empty, and cannot set
//! `private` (see docs/decisions/0002-own-torrent-maker.md).
//!
//! - Files of a folder are listed recursively and sorted by their path components (byte order),
//!   so the same folder always gives the same info hash. Symbolic links and special files are
//!   skipped (they would let a share reach outside the folder), empty files are kept.
//! - Pieces are hashed by one worker per core. Each worker claims a run of consecutive pieces and
//!   reads it with positional reads, so reading and hashing overlap without a reader bottleneck.
//! - A file that changes size while it is hashed is an error, not a silently wrong torrent.
//! - `hybrid`: a BitTorrent v1 and v2 torrent in one (BEP 52): files aligned to pieces by BEP 47
//!   padding files in the v1 list, and the v2 file tree with each file's SHA-256 merkle root
//!   and piece layer, computed in the same pass as the SHA-1 pieces.
//! - `v2_only`: the v2 half alone (the SHA-1 pieces are still computed in that pass, and
//!   left out).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::bencode::OwnedValue;
use crate::{MAX_AUTO_PIECE_LENGTH, MIN_PIECE_LENGTH, Metainfo};

/// What goes into a new torrent besides the data.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Piece length in bytes; chosen from the total size when `None`. Must be a power of two
    /// between 16 KiB and 64 MiB.
    pub piece_length: Option<u64>,
    pub private: bool,
    /// Announce URLs by tier. The first URL of the first tier also becomes `announce`.
    pub trackers: Vec<Vec<String>>,
    pub web_seeds: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch; left out of the file when `None`.
    pub creation_date: Option<i64>,
    /// Hashing threads; all cores when `None`.
    pub threads: Option<usize>,
    /// A hybrid torrent: BitTorrent v1 and v2 in one (BEP 52).
    pub hybrid: bool,
    /// A BitTorrent v2-only torrent (BEP 52): no v1 half (`hybrid` is then ignored). Only
    /// v2 clients (libtorrent 2, qBittorrent 4.4 and later) read it.
    pub v2_only: bool,
    /// A sealed torrent (an encrypted sphere's share, see [`crate::seal`]): one file named
    /// `sealed`, hashed over the bytes encrypted with this key; v1 only (`hybrid` and
    /// `v2_only` are then ignored). [`create_sealed`] also gives its real files.
    pub seal: Option<crate::seal::Seal>,
}

/// A sealed torrent as [`create_sealed`] makes it.
#[derive(Debug)]
pub struct Sealed {
    /// The `.torrent` peers and trackers see: names nothing, hashes the encrypted bytes.
    pub torrent: Vec<u8>,
    pub meta: Metainfo,
    /// The share's real files, in the stream's order (for its encrypted announcement).
    pub files: Vec<crate::seal::SealedFile>,
    /// Its real name (the file's, or the folder's).
    pub name: String,
    pub folder: bool,
}

/// Progress of hashing, reported about ten times a second and once at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub hashed_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is empty: there is nothing to share (a torrent needs at least one byte)")]
    Empty(PathBuf),
    #[error("{0} is neither a regular file nor a folder")]
    NotAFileOrFolder(PathBuf),
    #[error("the name {0:?} is not valid UTF-8; rename it and try again")]
    NonUtf8Name(PathBuf),
    #[error("{0} changed while it was being hashed; try again once it is no longer being written")]
    Changed(PathBuf),
    #[error("piece size {0} is not a power of two between 16 KiB and 64 MiB")]
    PieceLength(u64),
    #[error("the torrent we made does not parse back: {0} (this is a bug in spheres)")]
    Internal(#[from] crate::MetainfoError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CreateError + '_ {
    move |source| CreateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file to hash: where it is on disk and its path inside the torrent.
#[derive(Debug)]
struct SourceFile {
    disk: PathBuf,
    components: Vec<String>,
    length: u64,
    /// A BEP 47 padding file (zeros, nowhere on disk).
    pad: bool,
}

/// The piece length we choose for `total` bytes: about 1500 pieces at most, a power of two,
/// between 16 KiB and 16 MiB (what libtorrent and transmission aim for too).
pub fn auto_piece_length(total: u64) -> u64 {
    (total / 1500)
        .max(1)
        .next_power_of_two()
        .clamp(MIN_PIECE_LENGTH, MAX_AUTO_PIECE_LENGTH)
}

/// Makes a torrent of `path` (a file or a folder). Returns the bencoded `.torrent` and its
/// parsed form. `progress` is called from the calling thread while the workers hash.
pub fn create_torrent(
    path: &Path,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<u8>, Metainfo), CreateError> {
    make(path, opts, progress).map(|m| (m.torrent, m.meta))
}

/// Makes the sealed torrent of `path` under `seal` (see [`crate::seal`]), and says what its
/// real files are.
pub fn create_sealed(
    path: &Path,
    seal: crate::seal::Seal,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Sealed, CreateError> {
    let opts = CreateOptions {
        seal: Some(seal),
        ..opts.clone()
    };
    make(path, &opts, progress)
}

fn make(
    path: &Path,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Sealed, CreateError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let name = file_name(path)?;
    let (files, multi_file) = if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut Vec::new(), &mut files)?;
        files.sort_by(|a, b| a.components.cmp(&b.components));
        (files, true)
    } else if meta.is_file() {
        let file = SourceFile {
            disk: path.to_owned(),
            components: vec![name.clone()],
            length: meta.len(),
            pad: false,
        };
        (vec![file], false)
    } else {
        return Err(CreateError::NotAFileOrFolder(path.to_owned()));
    };
    let total: u64 = files.iter().map(|f| f.length).sum();
    if total == 0 {
        return Err(CreateError::Empty(path.to_owned()));
    }
    let piece_length = match opts.piece_length {
        Some(p) if p.is_power_of_two() && (MIN_PIECE_LENGTH..=64 * 1024 * 1024).contains(&p) => p,
        Some(p) => return Err(CreateError::PieceLength(p)),
        None => auto_piece_length(total),
    };
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let seal = opts.seal.as_ref();
    let v2_only = opts.v2_only && seal.is_none();
    let v2 = (opts.hybrid || opts.v2_only) && seal.is_none();
    // Hybrid: each file starts a piece (padding after every file but the last).
    let files = if v2 {
        let last = files.len().saturating_sub(1);
        let mut aligned = Vec::with_capacity(files.len() * 2);
        for (i, f) in files.into_iter().enumerate() {
            let pad = (piece_length - f.length % piece_length) % piece_length;
            aligned.push(f);
            if i < last && pad > 0 {
                aligned.push(SourceFile {
                    disk: PathBuf::new(),
                    components: vec![".pad".into(), pad.to_string()],
                    length: pad,
                    pad: true,
                });
            }
        }
        aligned
    } else {
        files
    };
    let stream: u64 = files.iter().map(|f| f.length).sum();
    let owners = v2.then(|| piece_owners(&files, piece_length));
    let (pieces, v2_hashes) = hash_pieces(
        &files,
        stream,
        piece_length,
        threads,
        (owners.as_deref(), seal),
        progress,
    )?;

    let mut info = BTreeMap::new();
    let shown = if seal.is_some() {
        crate::seal::SEALED_NAME
    } else {
        name.as_str()
    };
    info.insert(b"name".to_vec(), OwnedValue::string(shown));
    info.insert(
        b"piece length".to_vec(),
        OwnedValue::Int(piece_length as i64),
    );
    if !v2_only {
        info.insert(b"pieces".to_vec(), OwnedValue::Bytes(pieces));
    }
    if opts.private {
        info.insert(b"private".to_vec(), OwnedValue::Int(1));
    }
    if v2_only {
        // The v2 file tree alone says what the files are.
    } else if multi_file && seal.is_none() {
        let list = files
            .iter()
            .map(|f| {
                let path = f.components.iter().map(|c| OwnedValue::string(c.as_str()));
                let mut d = vec![
                    ("length", OwnedValue::Int(f.length as i64)),
                    ("path", OwnedValue::List(path.collect())),
                ];
                if f.pad {
                    d.push(("attr", OwnedValue::string("p")));
                }
                OwnedValue::dict(d)
            })
            .collect();
        info.insert(b"files".to_vec(), OwnedValue::List(list));
    } else {
        info.insert(b"length".to_vec(), OwnedValue::Int(total as i64));
    }
    let mut layers = BTreeMap::new();
    if let Some(v2_hashes) = &v2_hashes {
        let (tree, l) = v2_tree(&files, piece_length, v2_hashes);
        layers = l;
        info.insert(b"meta version".to_vec(), OwnedValue::Int(2));
        info.insert(b"file tree".to_vec(), tree);
    }

    let mut root = BTreeMap::new();
    root.insert(b"info".to_vec(), OwnedValue::Dict(info));
    if v2 {
        root.insert(
            b"piece layers".to_vec(),
            OwnedValue::Dict(
                layers
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), OwnedValue::Bytes(v)))
                    .collect(),
            ),
        );
    }
    let tiers: Vec<&Vec<String>> = opts.trackers.iter().filter(|t| !t.is_empty()).collect();
    if let Some(first) = tiers.first().and_then(|t| t.first()) {
        root.insert(b"announce".to_vec(), OwnedValue::string(first.as_str()));
        if tiers.len() > 1 || tiers[0].len() > 1 {
            let list = tiers
                .iter()
                .map(|t| {
                    OwnedValue::List(t.iter().map(|u| OwnedValue::string(u.as_str())).collect())
                })
                .collect();
            root.insert(b"announce-list".to_vec(), OwnedValue::List(list));
        }
    }
    if !opts.web_seeds.is_empty() {
        let list = opts
            .web_seeds
            .iter()
            .map(|u| OwnedValue::string(u.as_str()))
            .collect();
        root.insert(b"url-list".to_vec(), OwnedValue::List(list));
    }
    if let Some(c) = &opts.comment {
        root.insert(b"comment".to_vec(), OwnedValue::string(c.as_str()));
    }
    if let Some(c) = &opts.created_by {
        root.insert(b"created by".to_vec(), OwnedValue::string(c.as_str()));
    }
    if let Some(d) = opts.creation_date {
        root.insert(b"creation date".to_vec(), OwnedValue::Int(d));
    }
    let bytes = OwnedValue::Dict(root).encode();
    let parsed = Metainfo::from_bytes(&bytes)?;
    Ok(Sealed {
        torrent: bytes,
        meta: parsed,
        files: files
            .into_iter()
            .filter(|f| !f.pad)
            .map(|f| crate::seal::SealedFile {
                path: if multi_file {
                    f.components
                } else {
                    vec![name.clone()]
                },
                length: f.length,
            })
            .collect(),
        name,
        folder: multi_file,
    })
}

fn file_name(path: &Path) -> Result<String, CreateError> {
    // `canonicalize` gives a name to `.` and to paths ending in `..`.
    let canonical;
    let named = if path.file_name().is_some() {
        path
    } else {
        canonical = path.canonicalize().map_err(io_err(path))?;
        &canonical
    };
    named
        .file_name()
        .ok_or_else(|| CreateError::NotAFileOrFolder(path.to_owned()))?
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| CreateError::NonUtf8Name(path.to_owned()))
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<SourceFile>,
) -> Result<(), CreateError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let disk = entry.path();
        let kind = entry.file_type().map_err(io_err(&disk))?;
        if !(kind.is_dir() || kind.is_file()) {
            tracing::info!(path = %disk.display(), "skipping a symbolic link or special file");
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::NonUtf8Name(disk.clone()))?;
        prefix.push(name);
        if kind.is_dir() {
            walk(&disk, prefix, out)?;
        } else {
            let length = entry.metadata().map_err(io_err(&disk))?.len();
            out.push(SourceFile {
                disk,
                components: prefix.clone(),
                length,
                pad: false,
            });
        }
        prefix.pop();
    }
    Ok(())
}

/// Pieces claimed by a worker at a time: enough to read at least 4 MiB in a row.
fn batch_pieces(piece_length: u64) -> usize {
    (4 * 1024 * 1024 / piece_length).max(1) as usize
}

/// What a piece of a hybrid torrent is in v2 terms: how many of its bytes are its file's
/// (the rest is padding), and whether that file is one piece or less (its hash is then the
/// file's root, over its own leaves).
#[derive(Debug, Clone, Copy)]
struct Owner {
    real: usize,
    single: bool,
}

fn piece_owners(files: &[SourceFile], piece_length: u64) -> Vec<Owner> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.pad && f.length > 0) {
        let pieces = f.length.div_ceil(piece_length);
        for i in 0..pieces {
            out.push(Owner {
                real: (f.length - i * piece_length).min(piece_length) as usize,
                single: f.length <= piece_length,
            });
        }
    }
    out
}

/// The v2 file tree of `files` (padding left out) and its piece layers, from each piece's
/// v2 hash in order.
fn v2_tree(
    files: &[SourceFile],
    piece_length: u64,
    hashes: &[[u8; 32]],
) -> (OwnedValue, BTreeMap<[u8; 32], Vec<u8>>) {
    #[derive(Default)]
    struct Dir(BTreeMap<String, Node>);
    enum Node {
        Dir(Dir),
        File(OwnedValue),
    }
    fn insert(dir: &mut Dir, path: &[String], entry: OwnedValue) {
        match path {
            [] => {}
            [name] => {
                dir.0.insert(name.clone(), Node::File(entry));
            }
            [name, rest @ ..] => {
                let node = dir
                    .0
                    .entry(name.clone())
                    .or_insert_with(|| Node::Dir(Dir::default()));
                if let Node::Dir(d) = node {
                    insert(d, rest, entry);
                }
            }
        }
    }
    fn value(dir: Dir) -> OwnedValue {
        OwnedValue::Dict(
            dir.0
                .into_iter()
                .map(|(k, n)| {
                    let v = match n {
                        Node::Dir(d) => value(d),
                        Node::File(e) => OwnedValue::dict([("", e)]),
                    };
                    (k.into_bytes(), v)
                })
                .collect(),
        )
    }
    let mut top = Dir::default();
    let mut layers = BTreeMap::new();
    let mut next = 0usize;
    for f in files.iter().filter(|f| !f.pad) {
        let mut entry = vec![("length", OwnedValue::Int(f.length as i64))];
        if f.length > 0 {
            let n = f.length.div_ceil(piece_length) as usize;
            let mine = &hashes[next..next + n];
            next += n;
            let root = if n == 1 && f.length <= piece_length {
                mine[0]
            } else {
                let root = crate::v2::root_of_layer(mine, piece_length);
                layers.insert(root, mine.iter().flatten().copied().collect());
                root
            };
            entry.push(("pieces root", OwnedValue::Bytes(root.to_vec())));
        }
        insert(&mut top, &f.components, OwnedValue::dict(entry));
    }
    (value(top), layers)
}

/// Every piece's SHA-1 (20 bytes each, in a row), and for a hybrid each piece's v2 hash.
type Hashed = (Vec<u8>, Option<Vec<[u8; 32]>>);

/// The SHA-1 of every piece, and with `owners` (a hybrid torrent) each piece's v2 hash.
fn hash_pieces(
    files: &[SourceFile],
    total: u64,
    piece_length: u64,
    threads: usize,
    (owners, seal): (Option<&[Owner]>, Option<&crate::seal::Seal>),
    progress: &mut dyn FnMut(Progress),
) -> Result<Hashed, CreateError> {
    let piece_count = total.div_ceil(piece_length) as usize;
    let batch = batch_pieces(piece_length);
    let next_batch = AtomicUsize::new(0);
    let hashed = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<CreateError>> = Mutex::new(None);
    // 20 bytes of SHA-1 a piece, and 32 of v2 hash for a hybrid.
    let stride = if owners.is_some() { 52 } else { 20 };
    let mut digests = vec![0u8; piece_count * stride];
    // Each worker writes the digests of the batches it claims into disjoint chunks.
    let slots: Vec<Mutex<&mut [u8]>> = digests.chunks_mut(batch * stride).map(Mutex::new).collect();
    let reader = Reader::new(files);

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(slots.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; piece_length as usize];
                    let mut handles = Handles::default();
                    loop {
                        let b = next_batch.fetch_add(1, Ordering::Relaxed);
                        if b >= slots.len() || failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let mut slot = slots[b].lock().unwrap_or_else(|e| e.into_inner());
                        for (i, out) in slot.chunks_mut(stride).enumerate() {
                            let piece = b * batch + i;
                            let start = piece as u64 * piece_length;
                            let len = piece_length.min(total - start) as usize;
                            if let Err(e) = reader.read(start, &mut buf[..len], &mut handles) {
                                failed.store(true, Ordering::Relaxed);
                                first_error
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get_or_insert(e);
                                return;
                            }
                            if let Some(seal) = seal {
                                seal.apply(start, &mut buf[..len]);
                            }
                            out[..20].copy_from_slice(&Sha1::digest(&buf[..len]));
                            if let Some(o) = owners.and_then(|o| o.get(piece)) {
                                let leaves = crate::v2::leaves(&buf[..o.real.min(len)]);
                                let h = if o.single {
                                    crate::v2::root_of_leaves(&leaves)
                                } else {
                                    crate::v2::piece_hash(&leaves, piece_length)
                                };
                                out[20..].copy_from_slice(&h);
                            }
                            hashed.fetch_add(len as u64, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            progress(Progress {
                hashed_bytes: hashed.load(Ordering::Relaxed),
                total_bytes: total,
            });
            std::thread::park_timeout(Duration::from_millis(100));
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    drop(slots);
    for f in files.iter().filter(|f| !f.pad) {
        let now = std::fs::metadata(&f.disk).map_err(io_err(&f.disk))?.len();
        if now != f.length {
            return Err(CreateError::Changed(f.disk.clone()));
        }
    }
    progress(Progress {
        hashed_bytes: total,
        total_bytes: total,
    });
    if owners.is_none() {
        return Ok((digests, None));
    }
    let sha1 = digests.chunks(52).flat_map(|c| c[..20].to_vec()).collect();
    let v2 = digests
        .chunks(52)
        .filter_map(|c| <[u8; 32]>::try_from(&c[20..]).ok())
        .collect();
    Ok((sha1, Some(v2)))
}

/// Reads the concatenated bytes of the files at any offset.
struct Reader<'a> {
    files: &'a [SourceFile],
    /// Start offset of each file in the torrent's byte stream.
    starts: Vec<u64>,
}

/// A worker's open files, so that a run of pieces in one file opens it once.
#[derive(Default)]
struct Handles {
    open: Option<(usize, File)>,
}

impl<'a> Reader<'a> {
    fn new(files: &'a [SourceFile]) -> Self {
        let mut starts = Vec::with_capacity(files.len());
        let mut offset = 0;
        for f in files {
            starts.push(offset);
            offset += f.length;
        }
        Reader { files, starts }
    }

    fn read(
        &self,
        mut offset: u64,
        mut buf: &mut [u8],
        handles: &mut Handles,
    ) -> Result<(), CreateError> {
        // The last file that starts at or before `offset`: empty files share their start with
        // the next one and are skipped by the length check below.
        let mut index = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        while !buf.is_empty() {
            let file = self
                .files
                .get(index)
                .ok_or_else(|| CreateError::Changed(self.files[0].disk.clone()))?;
            let within = offset - self.starts[index];
            if within >= file.length {
                index += 1;
                continue;
            }
            let n = (file.length - within).min(buf.len() as u64) as usize;
            if file.pad {
                let (now, rest) = buf.split_at_mut(n);
                now.fill(0);
                buf = rest;
                offset += n as u64;
                index += 1;
                continue;
            }
            let handle = match &handles.open {
                Some((i, f)) if *i == index => f,
                _ => {
                    let f = File::open(&file.disk).map_err(io_err(&file.disk))?;
                    &handles.open.insert((index, f)).1
                }
            };
            let (now, rest) = buf.split_at_mut(n);
            handle.read_exact_at(now, within).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    CreateError::Changed(file.disk.clone())
                } else {
                    CreateError::Io {
                        path: file.disk.clone(),
                        source: e,
                    }
                }
            })?;
            buf = rest;
            offset += n as u64;
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_progress(_: Progress) {}

    fn sha1_pieces(data: &[u8], piece: usize) -> Vec<u8> {
        data.chunks(piece)
            .flat_map(|c| Sha1::digest(c).to_vec())
            .collect()
    }

    #[test]
    fn a_v2_only_torrent_has_no_v1_half_and_pads_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.bin");
        std::fs::write(&file, vec![1u8; 50_000]).unwrap();
        let opts = CreateOptions {
            piece_length: Some(32 * 1024),
            v2_only: true,
            ..Default::default()
        };
        let (bytes, m) = create_torrent(&file, &opts, &mut no_progress).unwrap();
        let top = crate::bencode::decode(&bytes).unwrap();
        let info = top.as_dict().unwrap().get(b"info").unwrap();
        let info = info.as_dict().unwrap();
        for v1 in [&b"pieces"[..], b"length", b"files"] {
            assert!(info.get(v1).is_none(), "{}", String::from_utf8_lossy(v1));
        }
        assert!(m.is_v2_only() && !m.multi_file);
        // A single file too ends on a piece boundary (as libtorrent lays it out).
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].path, ["one.bin"]);
        assert!(m.files[1].padding);
        assert_eq!(m.total_length, 64 * 1024);
        assert_eq!(m.piece_count(), 2);
        assert_eq!(
            m.info_hash.0[..],
            m.v2.as_ref().unwrap().info_hash[..20],
            "known by its SHA-256 info hash, cut"
        );
        assert_eq!(m.relative_path(0).unwrap(), std::path::Path::new("one.bin"));
    }

    #[test]
    fn a_hybrid_aligns_files_and_its_halves_agree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("album");
        std::fs::create_dir(&root).unwrap();
        // Two files of one odd size: two padding files of one name (`.pad/N`).
        std::fs::write(root.join("a.bin"), vec![1u8; 20_000]).unwrap();
        std::fs::write(root.join("b.bin"), vec![2u8; 20_000]).unwrap();
        std::fs::write(root.join("c.bin"), vec![3u8; 70_000]).unwrap();
        let opts = CreateOptions {
            piece_length: Some(32 * 1024),
            hybrid: true,
            ..Default::default()
        };
        let (bytes, m) = create_torrent(&root, &opts, &mut no_progress).unwrap();
        let pads: Vec<_> = m.files.iter().filter(|f| f.padding).collect();
        assert_eq!(pads.len(), 2);
        assert_eq!(pads[0].path, pads[1].path);
        assert!(
            m.files
                .iter()
                .filter(|f| !f.padding)
                .all(|f| f.offset % (32 * 1024) == 0)
        );
        let v2 = m.v2.as_ref().unwrap();
        assert_eq!(v2.files.len(), 3);
        // c.bin spans 3 pieces: a layer of 3, hashing to its root (checked when read).
        assert_eq!(v2.piece_layers.len(), 1);
        assert_eq!(
            crate::V2Info::from_torrent(&bytes).unwrap().as_ref(),
            Some(v2)
        );
        for f in &v2.files {
            let data = std::fs::read(root.join(&f.path[0])).unwrap();
            assert_eq!(
                f.pieces_root,
                Some(crate::v2::root_of_leaves(&crate::v2::leaves(&data)))
            );
        }
    }

    #[test]
    fn chooses_piece_lengths_within_bounds() {
        assert_eq!(auto_piece_length(1), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        assert_eq!(auto_piece_length(4 << 30), 4 << 20);
        assert_eq!(auto_piece_length(1 << 50), 16 << 20);
    }

    #[test]
    fn exact_multiple_and_trailing_empty_file_give_the_right_piece_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("share");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let a: Vec<u8> = (0..32768u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("a.bin"), &a).unwrap();
        std::fs::write(root.join("sub/zz-empty"), b"").unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            threads: Some(3),
            ..Default::default()
        };
        let (bytes, m) = create_torrent(&root, &opts, &mut no_progress).unwrap();
        assert_eq!(m.piece_count(), 2);
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[1].path, vec!["sub", "zz-empty"]);
        let expected = sha1_pieces(&a, 16384);
        assert_eq!(m.piece_hashes.concat(), expected);
        assert_eq!(Metainfo::from_bytes(&bytes).unwrap().info_hash, m.info_hash);
    }

    #[test]
    fn pieces_span_files_in_sorted_order_and_hashing_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("été");
        std::fs::create_dir_all(root.join("b")).unwrap();
        let files: [(&str, usize); 4] = [("b/x", 20000), ("a", 5), ("c d", 40000), ("b/0", 0)];
        for (name, len) in files {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + name.len()) as u8).collect();
            std::fs::write(root.join(name), data).unwrap();
        }
        let mut stream = Vec::new();
        for name in ["a", "b/0", "b/x", "c d"] {
            stream.extend(std::fs::read(root.join(name)).unwrap());
        }
        let mut last = None;
        for threads in [1, 2, 5] {
            let opts = CreateOptions {
                piece_length: Some(16384),
                threads: Some(threads),
                private: true,
                trackers: vec![
                    vec!["http://a/announce".into()],
                    vec!["http://b/announce".into()],
                ],
                ..Default::default()
            };
            let (_, m) = create_torrent(&root, &opts, &mut no_progress).unwrap();
            assert_eq!(m.name, "été");
            assert!(m.private);
            assert_eq!(m.trackers.len(), 2);
            assert_eq!(
                m.files.iter().map(|f| f.display_path()).collect::<Vec<_>>(),
                ["a", "b/0", "b/x", "c d"]
            );
            assert_eq!(m.piece_hashes.concat(), sha1_pieces(&stream, 16384));
            if let Some(prev) = last.replace(m.info_hash) {
                assert_eq!(prev, m.info_hash);
            }
        }
    }

    #[test]
    fn refuses_empty_input_and_bad_piece_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let err = create_torrent(&empty, &CreateOptions::default(), &mut no_progress).unwrap_err();
        assert!(matches!(err, CreateError::Empty(_)), "{err}");
        std::fs::create_dir(dir.path().join("emptydir")).unwrap();
        let err = create_torrent(
            &dir.path().join("emptydir"),
            &CreateOptions::default(),
            &mut no_progress,
        )
        .unwrap_err();
        assert!(matches!(err, CreateError::Empty(_)), "{err}");

        let one = dir.path().join("one");
        std::fs::write(&one, b"x").unwrap();
        for bad in [1000, 8192, 128 << 20] {
            let opts = CreateOptions {
                piece_length: Some(bad),
                ..Default::default()
            };
            assert!(matches!(
                create_torrent(&one, &opts, &mut no_progress),
                Err(CreateError::PieceLength(_))
            ));
        }
    }

    #[test]
    fn reports_progress_up_to_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![1u8; 100_000]).unwrap();
        let mut seen = Vec::new();
        create_torrent(&f, &CreateOptions::default(), &mut |p| seen.push(p)).unwrap();
        let last = seen.last().unwrap();
        assert_eq!((last.hashed_bytes, last.total_bytes), (100_000, 100_000));
        assert!(
            seen.windows(2)
                .all(|w| w[0].hashed_bytes <= w[1].hashed_bytes)
        );
    }

    #[test]
    #[cfg(unix)]
    fn skips_symlinks_that_would_reach_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("share");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("real"), b"data").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let (_, m) = create_torrent(&root, &CreateOptions::default(), &mut no_progress).unwrap();
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].path, vec!["real"]);
    }
}
