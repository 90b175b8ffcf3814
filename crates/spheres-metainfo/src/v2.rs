//! BitTorrent v2 (BEP 52): the `file tree` of a v2 or hybrid info dictionary, each file's
//! SHA-256 merkle root (`pieces root`) and its piece layer (`piece layers`, outside the info
//! dictionary), checked against each other when read: a torrent whose layers do not hash to
//! its roots is refused.
//!
//! The merkle tree of a file: leaves are the SHA-256 of its 16 KiB blocks (the last one as
//! long as it is), as many leaves as the next power of two, those past the file's end 32 zero
//! bytes; each node the SHA-256 of its two children. A piece's hash is the node that covers
//! its blocks; the piece layer lists those of a file larger than one piece. A file of one
//! piece or less has no layer: its root covers it.
//!
//! Pure: bytes in, checked structures out.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::bencode::{Dict, Value};
use crate::metainfo::{MAX_FILES, MAX_PATH_DEPTH, MetainfoError, check_component};

/// The merkle tree's leaves cover 16 KiB each.
pub const LEAF: u64 = 16 * 1024;

/// A file of a v2 torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2File {
    /// Path components under the torrent's name (for a single file: its name alone).
    pub path: Vec<String>,
    pub length: u64,
    /// The root of its merkle tree; `None` for an empty file.
    pub pieces_root: Option<[u8; 32]>,
}

/// What a v2 or hybrid torrent says in v2 terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Info {
    /// SHA-256 of the info dictionary (its first 20 bytes stand for it where 20 fit: the
    /// handshake, trackers, the DHT).
    pub info_hash: [u8; 32],
    pub piece_length: u64,
    /// In the file tree's order (names sorted, byte by byte, at each level).
    pub files: Vec<V2File>,
    /// Each file's piece hashes, by its root (files larger than one piece only).
    pub piece_layers: BTreeMap<[u8; 32], Vec<[u8; 32]>>,
}

impl V2Info {
    /// The info hash cut to 20 bytes, as the handshake, trackers and the DHT carry it.
    pub fn short_hash(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.info_hash[..20]);
        out
    }

    /// The hash piece `piece` of file `file` must have: the node of its tree that covers it
    /// (for a file of one piece or less, its root).
    pub fn piece_hash(&self, file: usize, piece: u64) -> Option<[u8; 32]> {
        let f = self.files.get(file)?;
        let root = f.pieces_root?;
        if f.length <= self.piece_length {
            return (piece == 0).then_some(root);
        }
        self.piece_layers
            .get(&root)?
            .get(usize::try_from(piece).ok()?)
            .copied()
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The root of a subtree of `2^height` leaves that are all past a file's end.
pub fn pad_hash(height: u32) -> [u8; 32] {
    let mut node = [0u8; 32];
    for _ in 0..height {
        node = sha256(&[&node, &node]);
    }
    node
}

/// The root over `nodes` padded to `width` (a power of two) with `pad`.
pub fn merkle_root(nodes: &[[u8; 32]], width: usize, pad: [u8; 32]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = nodes.to_vec();
    level.resize(width.max(1), pad);
    let mut pad = pad;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| sha256(&[&pair[0], pair.get(1).unwrap_or(&pad)]))
            .collect();
        pad = sha256(&[&pad, &pad]);
    }
    level[0]
}

/// The leaf hashes of `data` (16 KiB blocks, the last as long as it is).
pub fn leaves(data: &[u8]) -> Vec<[u8; 32]> {
    data.chunks(LEAF as usize).map(|b| sha256(&[b])).collect()
}

/// A piece's hash from its leaves (`piece_length / 16 KiB` of them, fewer for a file's last
/// piece: the rest are past the end).
pub fn piece_hash(leaves: &[[u8; 32]], piece_length: u64) -> [u8; 32] {
    merkle_root(leaves, (piece_length / LEAF) as usize, [0u8; 32])
}

/// A file's root from its piece layer (files larger than one piece).
pub fn root_of_layer(layer: &[[u8; 32]], piece_length: u64) -> [u8; 32] {
    let height = (piece_length / LEAF).trailing_zeros();
    merkle_root(layer, layer.len().next_power_of_two(), pad_hash(height))
}

/// A file's root from its leaves (any size; a file of one piece or less is padded to the
/// next power of two of its leaves, not to a whole piece).
pub fn root_of_leaves(leaves: &[[u8; 32]]) -> [u8; 32] {
    merkle_root(leaves, leaves.len().next_power_of_two(), [0u8; 32])
}

impl V2Info {
    /// The v2 half of a `.torrent` file (v2-only or hybrid); `None` for a v1 torrent.
    pub fn from_torrent(bytes: &[u8]) -> Result<Option<V2Info>, MetainfoError> {
        let top = crate::bencode::decode(bytes)?;
        let top = top.as_dict().ok_or(MetainfoError::NotADict)?;
        let info = top
            .get(b"info")
            .ok_or(MetainfoError::NoInfo)?
            .as_dict()
            .ok_or(MetainfoError::Field("info"))?;
        parse(info, info.raw(), top)
    }
}

/// Reads the v2 half of an info dictionary, if it has one (`meta version` 2), and checks
/// `piece layers` (from the top level) against each file's root.
pub(crate) fn parse(
    info: &Dict<'_>,
    info_bytes: &[u8],
    top: &Dict<'_>,
) -> Result<Option<V2Info>, MetainfoError> {
    let Some(version) = info.get(b"meta version") else {
        return Ok(None);
    };
    if version.as_int() != Some(2) {
        return Err(MetainfoError::Field("meta version"));
    }
    let piece_length = info
        .get(b"piece length")
        .and_then(Value::as_int)
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| *l >= LEAF && l.is_power_of_two() && *l <= crate::metainfo::MAX_PIECE_LENGTH)
        .ok_or(MetainfoError::Field("piece length"))?;
    let tree = info
        .get(b"file tree")
        .and_then(Value::as_dict)
        .ok_or(MetainfoError::Field("file tree"))?;
    let mut files = Vec::new();
    walk(tree, &mut Vec::new(), &mut files)?;
    if files.iter().all(|f| f.length == 0) {
        return Err(MetainfoError::Empty);
    }
    // A single file's tree is its name alone; a folder's, paths under the name.
    let layers = top.get(b"piece layers").and_then(Value::as_dict);
    let mut piece_layers = BTreeMap::new();
    let mut seen = HashSet::new();
    for f in &files {
        let Some(root) = f.pieces_root else { continue };
        if f.length <= piece_length || !seen.insert(root) {
            continue;
        }
        let raw = layers
            .and_then(|l| l.get(&root))
            .and_then(Value::as_bytes)
            .ok_or(MetainfoError::Field("piece layers"))?;
        let count = f.length.div_ceil(piece_length);
        if raw.len() as u64 != count * 32 {
            return Err(MetainfoError::Field("piece layers"));
        }
        let layer: Vec<[u8; 32]> = raw
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect();
        if root_of_layer(&layer, piece_length) != root {
            return Err(MetainfoError::V2LayerMismatch(f.path.join("/")));
        }
        piece_layers.insert(root, layer);
    }
    Ok(Some(V2Info {
        info_hash: sha256(&[info_bytes]),
        piece_length,
        files,
        piece_layers,
    }))
}

/// Depth-first through a file tree: a key `""` holds a file's entry, any other a folder.
fn walk(
    dir: &Dict<'_>,
    path: &mut Vec<String>,
    files: &mut Vec<V2File>,
) -> Result<(), MetainfoError> {
    if path.len() > MAX_PATH_DEPTH {
        return Err(MetainfoError::UnsafePath {
            path: path.join("/"),
            reason: "too deep",
        });
    }
    for (name, node) in dir.entries() {
        let node = node.as_dict().ok_or(MetainfoError::Field("file tree"))?;
        if name.is_empty() {
            // A file: its entry is the only key of its dictionary.
            if path.is_empty() || dir.entries().len() != 1 {
                return Err(MetainfoError::Field("file tree"));
            }
            let length = node
                .get(b"length")
                .and_then(Value::as_int)
                .and_then(|l| u64::try_from(l).ok())
                .ok_or(MetainfoError::BadLength)?;
            let pieces_root = match node.get(b"pieces root").and_then(Value::as_bytes) {
                Some(r) => {
                    Some(<[u8; 32]>::try_from(r).map_err(|_| MetainfoError::Field("pieces root"))?)
                }
                None if length == 0 => None,
                None => return Err(MetainfoError::Field("pieces root")),
            };
            if files.len() >= MAX_FILES {
                return Err(MetainfoError::TooManyFiles(files.len() + 1));
            }
            files.push(V2File {
                path: path.clone(),
                length,
                pieces_root,
            });
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        check_component(&name, &name)?;
        path.push(name);
        walk(node, path, files)?;
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_s_root_pads_to_its_own_leaves() {
        let data = vec![7u8; 3 * LEAF as usize + 5];
        let l = leaves(&data);
        assert_eq!(l.len(), 4);
        let root = root_of_leaves(&l);
        let by_hand = sha256(&[&sha256(&[&l[0], &l[1]]), &sha256(&[&l[2], &l[3]])]);
        assert_eq!(root, by_hand);
    }

    #[test]
    fn a_large_file_s_layer_hashes_to_its_root() {
        // 5 pieces of 4 leaves (64 KiB pieces), the last piece one short leaf.
        let piece = 4 * LEAF;
        let data: Vec<u8> = (0..(4 * piece + 100)).map(|i| (i % 251) as u8).collect();
        let l = leaves(&data);
        let layer: Vec<[u8; 32]> = l.chunks(4).map(|c| piece_hash(c, piece)).collect();
        assert_eq!(layer.len(), 5);
        // The root over the leaves (padded with zero leaves to 32) equals the root over the
        // layer (padded with empty subtrees of 4 leaves to 8).
        let mut padded = l.clone();
        padded.resize(32, [0u8; 32]);
        assert_eq!(
            root_of_layer(&layer, piece),
            merkle_root(&padded, 32, [0u8; 32])
        );
        assert_eq!(pad_hash(2), merkle_root(&[], 4, [0u8; 32]));
    }
}
