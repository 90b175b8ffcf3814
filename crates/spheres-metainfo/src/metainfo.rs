//! A validated view of a `.torrent` file: v1 (BEP 3), hybrid, or v2-only (BEP 52, laid out
//! as libtorrent lays it out), with the extensions people meet in
//! practice: announce-list tiers (BEP 12), web seeds (BEP 19), the private flag (BEP 27),
//! padding files (BEP 47) and UTF-8 name variants.
//!
//! Everything a download would write to disk is checked here, before any engine sees it:
//! a torrent whose file paths could escape the download folder (`..`, absolute paths, path
//! separators or NUL inside a component, symbolic-link entries), whose lengths disagree with its
//! piece count, or whose sizes overflow is refused with an error that names the problem.
//! Names that are not valid UTF-8 are converted lossily, as other clients do.

use std::fmt;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use crate::bencode::{self, DecodeError, Dict, Value};

/// A v1 info hash: the SHA-1 of the bencoded `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    pub fn of_info_bytes(info: &[u8]) -> Self {
        InfoHash(Sha1::digest(info).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

/// Parses 40 hexadecimal digits.
impl FromStr for InfoHash {
    type Err = MetainfoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).map_err(|_| MetainfoError::BadInfoHash)?;
        Ok(InfoHash(out))
    }
}

/// One file of a torrent, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components relative to the torrent's root folder (for a multi-file torrent the
    /// root folder is [`Metainfo::name`]; for a single-file torrent this is just the name).
    /// Each component is non-empty, not `.` or `..`, and has no `/`, `\` or NUL.
    pub path: Vec<String>,
    pub length: u64,
    /// Offset of the first byte of this file in the torrent's byte stream.
    pub offset: u64,
    /// A BEP 47 padding file: never written to disk by well-behaved clients.
    pub padding: bool,
}

impl FileEntry {
    /// The path joined with `/`, for display.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// A parsed and validated torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    pub info_hash: InfoHash,
    /// The torrent's name: the file name (single file) or the root folder name (multi-file).
    pub name: String,
    pub piece_length: u64,
    pub piece_hashes: Vec<[u8; 20]>,
    pub files: Vec<FileEntry>,
    /// True when the info dictionary has a `files` list (the data lives in a folder named
    /// [`Metainfo::name`]), false for a single-file torrent.
    pub multi_file: bool,
    pub private: bool,
    /// Announce URLs by tier (BEP 12), falling back to `announce` as one tier.
    pub trackers: Vec<Vec<String>>,
    /// BEP 19 web seed URLs (`url-list`).
    pub web_seeds: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    pub total_length: u64,
    /// The exact bytes of the info dictionary as found in the file.
    pub info_bytes: Vec<u8>,
    /// Its v2 half (BEP 52), for a hybrid torrent; checked when read.
    pub v2: Option<crate::v2::V2Info>,
}

/// Limits that keep a hostile torrent from costing us memory or arithmetic overflow.
/// Piece length: the largest any mainstream client creates is 64 MiB (libtorrent allows 128).
pub const MAX_PIECE_LENGTH: u64 = 256 * 1024 * 1024;
/// At most this many files (libtorrent's default limit is about 100k entries per folder).
pub const MAX_FILES: usize = 1_000_000;
/// Deepest path we accept inside a torrent.
pub const MAX_PATH_DEPTH: usize = 64;
/// Longest single path component, in bytes (the common file-system limit).
pub const MAX_COMPONENT_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error("not a torrent file: {0}")]
    Bencode(#[from] DecodeError),
    #[error("not a torrent file: the top level is not a dictionary")]
    NotADict,
    #[error("the torrent has no `info` dictionary")]
    NoInfo,
    #[error("field `{0}` is missing or has the wrong type")]
    Field(&'static str),
    /// No v1 `pieces`, and a `file tree` without `meta version` 2.
    #[error("the torrent has neither v1 piece hashes nor a `meta version` 2 file tree")]
    V2Only,
    #[error("piece length {0} is out of range (must be between 1 byte and 256 MiB)")]
    PieceLength(i64),
    #[error("the `pieces` field is {0} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    #[error(
        "the files add up to {total} bytes, which needs {expected} pieces, but the torrent lists {actual}"
    )]
    PieceCount {
        total: u64,
        expected: u64,
        actual: usize,
    },
    #[error("the torrent contains no data (0 bytes)")]
    Empty,
    #[error("a file length is negative or the total size overflows")]
    BadLength,
    #[error("too many files ({0}; the limit is {MAX_FILES})")]
    TooManyFiles(usize),
    #[error("unsafe file path {path:?} in the torrent: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("the torrent lists the path {0:?} twice, or as both a file and a folder")]
    DuplicatePath(String),
    #[error("not a valid info hash (expected 40 hexadecimal digits)")]
    BadInfoHash,
    #[error("the piece hashes of {0:?} do not add up to its root: the torrent is corrupt")]
    V2LayerMismatch(String),
    /// The files an encrypted announcement lists for a sealed torrent do not fit it.
    #[error("the file list of a sealed share is wrong: {0}")]
    SealedLayout(String),
}

impl Metainfo {
    /// Parses and validates a `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let root = bencode::decode(bytes)?;
        let root = root.as_dict().ok_or(MetainfoError::NotADict)?;
        let info = root
            .get(b"info")
            .ok_or(MetainfoError::NoInfo)?
            .as_dict()
            .ok_or(MetainfoError::Field("info"))?;
        let mut m = match parse_info(info) {
            Err(MetainfoError::V2Only) => parse_v2_only(info, root)?,
            Err(e) => return Err(e),
            Ok(mut m) => {
                m.v2 = crate::v2::parse(info, &m.info_bytes, root)?;
                m
            }
        };

        let announce = root.get(b"announce").and_then(|v| text(v));
        let mut tiers: Vec<Vec<String>> = Vec::new();
        if let Some(list) = root.get(b"announce-list").and_then(Value::as_list) {
            for tier in list {
                let urls: Vec<String> = tier
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(text)
                    .filter(|u| !u.is_empty())
                    .collect();
                if !urls.is_empty() {
                    tiers.push(urls);
                }
            }
        }
        if tiers.is_empty()
            && let Some(a) = announce.filter(|a| !a.is_empty())
        {
            tiers.push(vec![a]);
        }
        m.trackers = tiers;
        m.web_seeds = match root.get(b"url-list") {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(text)
                .filter(|u| !u.is_empty())
                .collect(),
            Some(v) => text(v).filter(|u| !u.is_empty()).into_iter().collect(),
            None => Vec::new(),
        };
        m.comment = root
            .get(b"comment.utf-8")
            .or(root.get(b"comment"))
            .and_then(text);
        m.created_by = root.get(b"created by").and_then(text);
        m.creation_date = root.get(b"creation date").and_then(Value::as_int);
        Ok(m)
    }

    /// How many pieces the torrent has (for a v2-only torrent, as its files padded to whole
    /// pieces make).
    pub fn piece_count(&self) -> usize {
        usize::try_from(self.total_length.div_ceil(self.piece_length)).unwrap_or(usize::MAX)
    }

    /// True for a v2-only torrent: its pieces are checked against the files' merkle trees
    /// (BEP 52), and its info hash is the SHA-256 one cut to 20 bytes.
    pub fn is_v2_only(&self) -> bool {
        self.piece_hashes.is_empty() && self.v2.is_some()
    }

    /// Length of piece `index` (the last one may be short).
    pub fn piece_len(&self, index: usize) -> u64 {
        let start = index as u64 * self.piece_length;
        self.piece_length
            .min(self.total_length.saturating_sub(start))
    }

    /// The files a user sees (padding files left out), with their torrent index.
    pub fn visible_files(&self) -> impl Iterator<Item = (usize, &FileEntry)> {
        self.files.iter().enumerate().filter(|(_, f)| !f.padding)
    }

    /// The relative path of file `index` on disk, including the root folder of a multi-file
    /// torrent.
    pub fn relative_path(&self, index: usize) -> Option<std::path::PathBuf> {
        let file = self.files.get(index)?;
        let mut p = std::path::PathBuf::new();
        if self.multi_file {
            p.push(&self.name);
        }
        p.extend(&file.path);
        Some(p)
    }

    /// A magnet link for this torrent, carrying its name and trackers.
    pub fn magnet(&self) -> crate::Magnet {
        crate::Magnet {
            info_hash: self.info_hash,
            info_hash_v2: self.v2.as_ref().map(|v| v.info_hash),
            display_name: Some(self.name.clone()),
            trackers: self.trackers.iter().flatten().cloned().collect(),
            peers: Vec::new(),
            web_seeds: self.web_seeds.clone(),
        }
    }
}

/// Reads a UTF-8 text field; invalid UTF-8 is converted lossily.
fn text(v: &Value<'_>) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn parse_info(info: &Dict<'_>) -> Result<Metainfo, MetainfoError> {
    let pieces = info.get(b"pieces").and_then(Value::as_bytes);
    let has_v2_tree = info.get(b"file tree").is_some();
    let Some(pieces) = pieces else {
        return Err(if has_v2_tree {
            MetainfoError::V2Only
        } else {
            MetainfoError::Field("pieces")
        });
    };
    if pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(pieces.len()));
    }
    let piece_length = info
        .get(b"piece length")
        .and_then(Value::as_int)
        .ok_or(MetainfoError::Field("piece length"))?;
    if piece_length <= 0 || piece_length as u64 > MAX_PIECE_LENGTH {
        return Err(MetainfoError::PieceLength(piece_length));
    }
    let piece_length = piece_length as u64;

    let name = torrent_name(info)?;

    let mut files = Vec::new();
    let multi_file;
    let mut offset: u64 = 0;
    if let Some(list) = info.get(b"files") {
        multi_file = true;
        let list = list.as_list().ok_or(MetainfoError::Field("files"))?;
        if list.len() > MAX_FILES {
            return Err(MetainfoError::TooManyFiles(list.len()));
        }
        for entry in list {
            let entry = entry.as_dict().ok_or(MetainfoError::Field("files"))?;
            let length = file_length(entry)?;
            let attr = entry.get(b"attr").and_then(Value::as_bytes).unwrap_or(b"");
            let components = entry
                .get(b"path.utf-8")
                .or(entry.get(b"path"))
                .and_then(Value::as_list)
                .ok_or(MetainfoError::Field("path"))?;
            let path: Vec<String> = components
                .iter()
                .map(|c| text(c).ok_or(MetainfoError::Field("path")))
                .collect::<Result<_, _>>()?;
            let shown = format!("{name}/{}", path.join("/"));
            if path.is_empty() {
                return Err(MetainfoError::UnsafePath {
                    path: shown,
                    reason: "empty path",
                });
            }
            if path.len() > MAX_PATH_DEPTH {
                return Err(MetainfoError::UnsafePath {
                    path: shown,
                    reason: "path too deep",
                });
            }
            for c in &path {
                check_component(c, &shown)?;
            }
            if attr.contains(&b'l') {
                return Err(MetainfoError::UnsafePath {
                    path: shown,
                    reason: "symbolic links inside torrents are not supported",
                });
            }
            files.push(FileEntry {
                path,
                length,
                offset,
                padding: attr.contains(&b'p'),
            });
            offset = offset.checked_add(length).ok_or(MetainfoError::BadLength)?;
        }
        check_unique_paths(&files)?;
    } else {
        multi_file = false;
        let length = file_length(info)?;
        files.push(FileEntry {
            path: vec![name.clone()],
            length,
            offset: 0,
            padding: false,
        });
        offset = length;
    }
    let total_length = offset;
    if total_length == 0 {
        return Err(MetainfoError::Empty);
    }
    let expected = total_length.div_ceil(piece_length);
    let actual = pieces.len() / 20;
    if expected != actual as u64 {
        return Err(MetainfoError::PieceCount {
            total: total_length,
            expected,
            actual,
        });
    }
    let piece_hashes = pieces
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    Ok(Metainfo {
        info_hash: InfoHash::of_info_bytes(info.raw()),
        piece_hashes,
        multi_file,
        ..from_info(info, name, piece_length, files, total_length)
    })
}

/// What every kind of torrent takes from its info dictionary; the rest is the caller's (v1
/// by default: no piece hashes, a single file, no v2 half).
fn from_info(
    info: &Dict<'_>,
    name: String,
    piece_length: u64,
    files: Vec<FileEntry>,
    total_length: u64,
) -> Metainfo {
    Metainfo {
        info_hash: InfoHash::of_info_bytes(info.raw()),
        name,
        piece_length,
        piece_hashes: Vec::new(),
        files,
        multi_file: false,
        private: info.get(b"private").and_then(Value::as_int) == Some(1),
        trackers: Vec::new(),
        web_seeds: Vec::new(),
        comment: None,
        created_by: None,
        creation_date: None,
        total_length,
        info_bytes: info.raw().to_vec(),
        v2: None,
    }
}

/// The torrent's name, checked as a path component.
fn torrent_name(info: &Dict<'_>) -> Result<String, MetainfoError> {
    let raw_name = info
        .get(b"name.utf-8")
        .or(info.get(b"name"))
        .and_then(Value::as_bytes)
        .ok_or(MetainfoError::Field("name"))?;
    let name = String::from_utf8_lossy(raw_name).into_owned();
    check_component(&name, &name)?;
    Ok(name)
}

/// A v2-only torrent (BEP 52) in the terms of the rest of spheres: its files in the file
/// tree's order, each one that does not end on a piece boundary followed by a padding file up
/// to the next (the last one too), as libtorrent lays them out, so that piece indexes and
/// lengths on the wire are libtorrent's; no SHA-1 piece hashes (the merkle trees check the
/// pieces); the info hash the SHA-256 one cut to 20 bytes, as peers and trackers carry it.
fn parse_v2_only(info: &Dict<'_>, top: &Dict<'_>) -> Result<Metainfo, MetainfoError> {
    let v2 = crate::v2::parse(info, info.raw(), top)?.ok_or(MetainfoError::V2Only)?;
    let name = torrent_name(info)?;
    let single = matches!(v2.files.as_slice(), [f] if f.path == [name.clone()]);
    let piece_length = v2.piece_length;
    let mut files = Vec::with_capacity(v2.files.len() * 2);
    let mut offset: u64 = 0;
    for f in &v2.files {
        files.push(FileEntry {
            path: f.path.clone(),
            length: f.length,
            offset,
            padding: false,
        });
        offset = offset
            .checked_add(f.length)
            .ok_or(MetainfoError::BadLength)?;
        let tail = f.length % piece_length;
        if tail != 0 {
            let pad = piece_length - tail;
            files.push(FileEntry {
                path: vec![".pad".to_owned(), pad.to_string()],
                length: pad,
                offset,
                padding: true,
            });
            offset = offset.checked_add(pad).ok_or(MetainfoError::BadLength)?;
        }
    }
    if !single {
        check_unique_paths(&files)?;
    }
    Ok(Metainfo {
        info_hash: InfoHash(v2.short_hash()),
        multi_file: !single,
        v2: Some(v2),
        ..from_info(info, name, piece_length, files, offset)
    })
}

fn file_length(d: &Dict<'_>) -> Result<u64, MetainfoError> {
    let l = d
        .get(b"length")
        .and_then(Value::as_int)
        .ok_or(MetainfoError::Field("length"))?;
    u64::try_from(l).map_err(|_| MetainfoError::BadLength)
}

/// Refuses a path component that could escape the download folder or is not portable.
pub(crate) fn check_component(c: &str, shown: &str) -> Result<(), MetainfoError> {
    let reason = if c.is_empty() {
        Some("empty path component")
    } else if c == "." || c == ".." {
        Some("`.` or `..` would escape the download folder")
    } else if c.contains(['/', '\\']) {
        Some("a path separator inside a name (absolute or escaping path)")
    } else if c.contains('\0') {
        Some("a NUL byte inside a name")
    } else if c.len() > MAX_COMPONENT_LEN {
        Some("a name longer than 255 bytes")
    } else if c.len() >= 2 && c.as_bytes()[1] == b':' && c.as_bytes()[0].is_ascii_alphabetic() {
        Some("a drive letter (absolute Windows path)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(MetainfoError::UnsafePath {
            path: shown.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Two entries with the same path, or a file that is also a folder of another entry, would
/// make a download overwrite its own data.
pub(crate) fn check_unique_paths(files: &[FileEntry]) -> Result<(), MetainfoError> {
    // Padding files are never on disk: two of one size share a name (`.pad/16384`, as
    // libtorrent names them), and that is fine.
    let mut paths: Vec<&[String]> = files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| f.path.as_slice())
        .collect();
    paths.sort();
    for pair in paths.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // Sorted order puts a path directly before any path it is a prefix of.
        if b.starts_with(a) {
            return Err(MetainfoError::DuplicatePath(a.join("/")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::OwnedValue;

    fn file(path: &[&str], len: i64) -> OwnedValue {
        OwnedValue::dict([
            ("length", OwnedValue::Int(len)),
            (
                "path",
                OwnedValue::List(path.iter().map(|p| OwnedValue::string(*p)).collect()),
            ),
        ])
    }

    fn torrent(files: Vec<OwnedValue>, piece_length: i64, pieces: usize) -> Vec<u8> {
        OwnedValue::dict([
            ("announce", OwnedValue::string("http://t.example/announce")),
            (
                "info",
                OwnedValue::dict([
                    ("name", OwnedValue::string("root")),
                    ("piece length", OwnedValue::Int(piece_length)),
                    ("pieces", OwnedValue::Bytes(vec![7; pieces * 20])),
                    ("files", OwnedValue::List(files)),
                ]),
            ),
        ])
        .encode()
    }

    #[test]
    fn parses_a_multi_file_torrent() {
        let bytes = torrent(
            vec![file(&["a", "b.txt"], 10), file(&["c"], 0), file(&["d"], 7)],
            16,
            2,
        );
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.name, "root");
        assert!(m.multi_file);
        assert_eq!(m.total_length, 17);
        assert_eq!(m.files[2].offset, 10);
        assert_eq!(m.piece_len(1), 1);
        assert_eq!(
            m.trackers,
            vec![vec!["http://t.example/announce".to_string()]]
        );
        assert_eq!(
            m.relative_path(0).unwrap(),
            std::path::PathBuf::from("root/a/b.txt")
        );
        let info = bencode::decode(&bytes).unwrap();
        let raw = info
            .as_dict()
            .unwrap()
            .get(b"info")
            .unwrap()
            .as_dict()
            .unwrap()
            .raw();
        assert_eq!(m.info_hash, InfoHash::of_info_bytes(raw));
    }

    #[test]
    fn refuses_escaping_paths() {
        for path in [
            &["..", "etc", "passwd"][..],
            &["a", "..", "..", "b"],
            &["/etc/passwd"],
            &["a/../../b"],
            &["C:", "x"],
            &["a\\..\\b"],
            &[""],
            &["."],
            &["nul\0byte"],
        ] {
            let bytes = torrent(vec![file(path, 5)], 16, 1);
            let err = Metainfo::from_bytes(&bytes).unwrap_err();
            assert!(
                matches!(err, MetainfoError::UnsafePath { .. }),
                "{path:?}: {err}"
            );
        }
    }

    #[test]
    fn refuses_inconsistent_piece_counts_and_lengths() {
        let too_many = torrent(vec![file(&["a"], 32)], 16, 3);
        assert!(matches!(
            Metainfo::from_bytes(&too_many),
            Err(MetainfoError::PieceCount {
                expected: 2,
                actual: 3,
                ..
            })
        ));
        let negative = torrent(vec![file(&["a"], -1)], 16, 1);
        assert_eq!(
            Metainfo::from_bytes(&negative),
            Err(MetainfoError::BadLength)
        );
        let overflow = torrent(
            vec![
                file(&["a"], i64::MAX),
                file(&["b"], i64::MAX),
                file(&["c"], i64::MAX),
            ],
            16,
            1,
        );
        assert_eq!(
            Metainfo::from_bytes(&overflow),
            Err(MetainfoError::BadLength)
        );
        let empty = torrent(vec![file(&["a"], 0)], 16, 0);
        assert_eq!(Metainfo::from_bytes(&empty), Err(MetainfoError::Empty));
        let zero_piece = torrent(vec![file(&["a"], 1)], 0, 1);
        assert_eq!(
            Metainfo::from_bytes(&zero_piece),
            Err(MetainfoError::PieceLength(0))
        );
    }

    #[test]
    fn refuses_duplicate_and_overlapping_paths() {
        let dup = torrent(vec![file(&["a"], 1), file(&["a"], 1)], 16, 1);
        assert!(matches!(
            Metainfo::from_bytes(&dup),
            Err(MetainfoError::DuplicatePath(_))
        ));
        let nested = torrent(vec![file(&["a"], 1), file(&["a", "b"], 1)], 16, 1);
        assert!(matches!(
            Metainfo::from_bytes(&nested),
            Err(MetainfoError::DuplicatePath(_))
        ));
    }

    #[test]
    fn non_utf8_names_are_converted_lossily() {
        let bytes = OwnedValue::dict([(
            "info",
            OwnedValue::dict([
                ("name", OwnedValue::Bytes(b"caf\xe9.txt".to_vec())),
                ("piece length", OwnedValue::Int(16)),
                ("pieces", OwnedValue::Bytes(vec![0; 20])),
                ("length", OwnedValue::Int(3)),
            ]),
        )])
        .encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.name, "caf\u{fffd}.txt");
        assert!(!m.multi_file);
    }
}

fn owned(v: &Value<'_>) -> bencode::OwnedValue {
    use bencode::OwnedValue;
    match v {
        Value::Int(i) => OwnedValue::Int(*i),
        Value::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
        Value::List(items) => OwnedValue::List(items.iter().map(owned).collect()),
        Value::Dict(d) => OwnedValue::Dict(
            d.entries()
                .iter()
                .map(|(k, v)| (k.to_vec(), owned(v)))
                .collect(),
        ),
    }
}

/// The same torrent with other trackers: `announce` becomes the first URL, `announce-list`
/// one tier per URL (or both go when `trackers` is empty). The info dictionary is copied byte
/// for byte, so the info hash does not change. `bytes` must be a valid torrent.
pub fn with_trackers(bytes: &[u8], trackers: &[String]) -> Result<Vec<u8>, MetainfoError> {
    use bencode::OwnedValue;
    let meta = Metainfo::from_bytes(bytes)?;
    let top = bencode::decode(bytes)?;
    let dict = top.as_dict().ok_or(MetainfoError::NotADict)?;
    let mut out: std::collections::BTreeMap<Vec<u8>, Option<OwnedValue>> = dict
        .entries()
        .iter()
        .filter(|(k, _)| !matches!(*k, b"announce" | b"announce-list"))
        .map(|(k, v)| {
            // The info dictionary is kept as raw bytes (None here), everything else re-encoded.
            let value = (*k != b"info").then(|| owned(v));
            (k.to_vec(), value)
        })
        .collect();
    if let Some(first) = trackers.first() {
        out.insert(
            b"announce".to_vec(),
            Some(OwnedValue::string(first.clone())),
        );
        let tiers = trackers
            .iter()
            .map(|t| OwnedValue::List(vec![OwnedValue::string(t.clone())]))
            .collect();
        out.insert(b"announce-list".to_vec(), Some(OwnedValue::List(tiers)));
    }
    let mut encoded = vec![b'd'];
    for (k, v) in out {
        OwnedValue::Bytes(k).encode_into(&mut encoded);
        match v {
            Some(v) => v.encode_into(&mut encoded),
            None => encoded.extend_from_slice(&meta.info_bytes),
        }
    }
    encoded.push(b'e');
    Ok(encoded)
}

/// A torrent file of the info dictionary `info_bytes` (copied byte for byte: the info hash
/// is the same), announcing to `trackers` (one tier each) and naming `web_seeds` (BEP 19).
pub fn torrent_with(info_bytes: &[u8], trackers: &[String], web_seeds: &[String]) -> Vec<u8> {
    use bencode::OwnedValue;
    let list =
        |urls: &[String]| OwnedValue::List(urls.iter().cloned().map(OwnedValue::string).collect());
    let mut out = vec![b'd'];
    // Keys in order: announce, announce-list, info, url-list.
    if let Some(first) = trackers.first() {
        OwnedValue::string("announce").encode_into(&mut out);
        OwnedValue::string(first.clone()).encode_into(&mut out);
        OwnedValue::string("announce-list").encode_into(&mut out);
        OwnedValue::List(
            trackers
                .iter()
                .map(|t| list(std::slice::from_ref(t)))
                .collect(),
        )
        .encode_into(&mut out);
    }
    OwnedValue::string("info").encode_into(&mut out);
    out.extend_from_slice(info_bytes);
    if !web_seeds.is_empty() {
        OwnedValue::string("url-list").encode_into(&mut out);
        list(web_seeds).encode_into(&mut out);
    }
    out.push(b'e');
    out
}

#[cfg(test)]
mod with_trackers_tests {
    use super::*;
    use crate::create::{CreateOptions, create_torrent};

    #[test]
    fn changing_trackers_keeps_the_info_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, vec![7u8; 100_000]).unwrap();
        let opts = CreateOptions {
            private: true,
            trackers: vec![vec!["http://old.test/k1/announce".into()]],
            comment: Some("keep me".into()),
            ..Default::default()
        };
        let (bytes, meta) = create_torrent(&file, &opts, &mut |_| {}).unwrap();
        let new = vec![
            "http://new.test/k2/announce".to_owned(),
            "udp://new.test:6969/k2/announce".to_owned(),
        ];
        let rewritten = with_trackers(&bytes, &new).unwrap();
        let again = Metainfo::from_bytes(&rewritten).unwrap();
        assert_eq!(again.info_hash, meta.info_hash);
        assert_eq!(again.info_bytes, meta.info_bytes);
        assert_eq!(
            again.trackers,
            vec![vec![new[0].clone()], vec![new[1].clone()]]
        );
        assert_eq!(again.comment.as_deref(), Some("keep me"));
        let none = Metainfo::from_bytes(&with_trackers(&bytes, &[]).unwrap()).unwrap();
        assert!(none.trackers.is_empty());
        assert!(with_trackers(b"not a torrent", &new).is_err());
        // A torrent for a link: the same info, a WebSocket tracker and a web seed.
        let ws = vec!["ws://127.0.0.1:1/l/t/tracker".to_owned()];
        let seed = vec!["http://127.0.0.1:1/l/t/seed".to_owned()];
        let link = Metainfo::from_bytes(&torrent_with(&meta.info_bytes, &ws, &seed)).unwrap();
        assert_eq!(link.info_hash, meta.info_hash);
        assert_eq!((link.trackers, link.web_seeds), (vec![ws], seed));
    }
}
