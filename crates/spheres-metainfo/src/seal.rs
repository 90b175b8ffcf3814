//! Shares of encrypted spheres (issue 15; docs/decisions/0015-sealed-shares.md): between
//! nodes their bytes travel encrypted, under a key of their own that only the sphere's
//! members get (inside the sphere's MLS group), and their torrent is over those encrypted
//! bytes and names nothing.
//!
//! - [`Seal`]: a share's key. Its keystream is AES-256 in counter mode (NIST SP 800-38A; the
//!   128-bit counter is the number of the 16-byte block in the share's byte stream, from 0)
//!   taken at the byte's position in the stream. One key per share, never reused. So any
//!   piece, any block, is encrypted or decrypted on its own: a seeder encrypts what it reads,
//!   a downloader decrypts what it verified before writing it, and the files on disk stay as
//!   they are. (AES rather than ChaCha20: with the AES instructions every x86 and ARM CPU of
//!   the last decade has, it costs a fraction; measured in docs/benchmarks.md.)
//! - A sealed torrent is a single file named [`SEALED_NAME`] as long as the whole share;
//!   its pieces are hashed over the encrypted bytes. A peer that knows the info hash and
//!   gets admitted learns the total size and nothing else.
//! - [`Metainfo::with_layout`]: the sealed torrent seen with the real files the encrypted
//!   announcement lists (checked as a torrent's own paths are), which is what a node stores,
//!   shows and streams; the wire keeps the sealed info hash, pieces and info dictionary.

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

/// AES-256 in counter mode, the 128-bit counter big-endian from zero: block `n` of the
/// keystream is AES(key, n).
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

use crate::metainfo::{
    FileEntry, MAX_FILES, MAX_PATH_DEPTH, Metainfo, MetainfoError, check_component,
    check_unique_paths,
};

/// The name in every sealed torrent's info dictionary.
pub const SEALED_NAME: &str = "sealed";

/// A share's content key.
#[derive(Clone, PartialEq, Eq)]
pub struct Seal {
    key: [u8; 32],
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(…)")
    }
}

impl Seal {
    pub fn new(key: [u8; 32]) -> Seal {
        Seal { key }
    }

    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// XORs the keystream at `offset` of the share's byte stream into `buf`: encrypts
    /// plaintext, decrypts ciphertext.
    pub fn apply(&self, offset: u64, buf: &mut [u8]) {
        let mut c = Aes256Ctr::new(&self.key.into(), &[0u8; 16].into());
        c.seek(offset);
        c.apply_keystream(buf);
    }
}

/// One file of a sealed share, as its encrypted announcement lists it (in the share's
/// order: their bytes follow each other in the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    /// Path components under the share's folder; for a single file, its name alone.
    pub path: Vec<String>,
    pub length: u64,
}

impl Metainfo {
    /// This sealed torrent seen with its real files: `name` (the file's, or the folder's
    /// when `folder`), `files` in the order of the stream. Refused unless every path is one
    /// a torrent may hold (no `..`, no separators, not too deep, no duplicate), a single file
    /// is named `name`, and the lengths add up to the torrent's.
    pub fn with_layout(
        &self,
        name: &str,
        files: &[SealedFile],
        folder: bool,
    ) -> Result<Metainfo, MetainfoError> {
        check_component(name, name)?;
        if files.is_empty() || files.len() > MAX_FILES {
            return Err(MetainfoError::SealedLayout(format!(
                "a sealed share lists {} files",
                files.len()
            )));
        }
        if !folder && (files.len() != 1 || files[0].path != [name]) {
            return Err(MetainfoError::SealedLayout(
                "a sealed single file must be listed under its own name".into(),
            ));
        }
        let mut entries = Vec::with_capacity(files.len());
        let mut offset: u64 = 0;
        for f in files {
            if f.path.is_empty() || f.path.len() > MAX_PATH_DEPTH {
                return Err(MetainfoError::SealedLayout(format!(
                    "a sealed share's path has {} parts",
                    f.path.len()
                )));
            }
            let shown = f.path.join("/");
            for c in &f.path {
                check_component(c, &shown)?;
            }
            entries.push(FileEntry {
                path: f.path.clone(),
                length: f.length,
                offset,
                padding: false,
            });
            offset = offset.checked_add(f.length).ok_or_else(|| {
                MetainfoError::SealedLayout("a sealed share's lengths overflow".into())
            })?;
        }
        if offset != self.total_length {
            return Err(MetainfoError::SealedLayout(format!(
                "a sealed share's files make {offset} bytes, its torrent {}",
                self.total_length
            )));
        }
        check_unique_paths(&entries)?;
        Ok(Metainfo {
            name: name.to_owned(),
            files: entries,
            multi_file: folder,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    use crate::{CreateOptions, create_sealed, create_torrent};
    use sha1::{Digest, Sha1};

    fn write(path: &std::path::Path, len: usize, seed: u8) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &data).unwrap();
        data
    }

    #[test]
    fn a_sealed_torrent_names_nothing_and_hashes_the_encrypted_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("Lyon holidays");
        let a = write(&folder.join("day one/beach.jpg"), 70_000, 3);
        let b = write(&folder.join("notes.txt"), 1_000, 5);
        let seal = Seal::new([9; 32]);
        let opts = CreateOptions {
            piece_length: Some(16 * 1024),
            private: true,
            ..Default::default()
        };
        let made = create_sealed(&folder, seal.clone(), &opts, &mut |_| {}).unwrap();
        for name in ["Lyon", "beach", "notes", "day one"] {
            assert!(
                !made
                    .torrent
                    .windows(name.len())
                    .any(|w| w == name.as_bytes()),
                "the torrent shows {name:?}"
            );
        }
        assert_eq!(made.meta.name, SEALED_NAME);
        assert!(!made.meta.multi_file && made.meta.private);
        assert_eq!(made.meta.total_length, 71_000);
        // Its pieces are the encrypted stream's.
        let mut stream = [a, b].concat();
        seal.apply(0, &mut stream);
        for (i, piece) in stream.chunks(16 * 1024).enumerate() {
            assert_eq!(
                made.meta.piece_hashes[i],
                <[u8; 20]>::from(Sha1::digest(piece))
            );
        }
        // Not the clear torrent's.
        let (_, clear) = create_torrent(&folder, &opts, &mut |_| {}).unwrap();
        assert_ne!(clear.info_hash, made.meta.info_hash);
        // Seen with its files: the same wire identity, the real names.
        assert_eq!(made.name, "Lyon holidays");
        let view = made
            .meta
            .with_layout(&made.name, &made.files, made.folder)
            .unwrap();
        assert_eq!(view.info_hash, made.meta.info_hash);
        assert_eq!(view.info_bytes, made.meta.info_bytes);
        let paths: Vec<String> = view.files.iter().map(|f| f.path.join("/")).collect();
        assert_eq!(paths, ["day one/beach.jpg", "notes.txt"]);
        assert_eq!(view.files[1].offset, 70_000);
        assert!(view.multi_file);
    }

    #[test]
    fn a_layout_that_does_not_fit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("film.mp4"), 40_000, 7);
        let made = create_sealed(
            &dir.path().join("film.mp4"),
            Seal::new([1; 32]),
            &CreateOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        assert!(!made.folder);
        assert!(
            made.meta
                .with_layout("film.mp4", &made.files, false)
                .is_ok()
        );
        let f = |path: &[&str], length| SealedFile {
            path: path.iter().map(|s| s.to_string()).collect(),
            length,
        };
        for (name, files, folder) in [
            ("film.mp4", vec![f(&["film.mp4"], 39_999)], false),
            ("film.mp4", vec![f(&["other.mp4"], 40_000)], false),
            ("..", vec![f(&[".."], 40_000)], false),
            ("x", vec![f(&["..", "etc", "passwd"], 40_000)], true),
            ("x", vec![f(&["/etc"], 40_000)], true),
            ("x", vec![f(&["a"], 20_000), f(&["a"], 20_000)], true),
            ("x", vec![f(&["a"], 20_000), f(&["a", "b"], 20_000)], true),
            ("x", vec![f(&["a"], u64::MAX), f(&["b"], 40_001)], true),
            ("x", vec![], true),
        ] {
            assert!(
                made.meta.with_layout(name, &files, folder).is_err(),
                "{name} {files:?}"
            );
        }
    }

    #[test]
    fn any_range_opens_on_its_own() {
        let seal = Seal::new([7; 32]);
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut whole = plain.clone();
        seal.apply(0, &mut whole);
        assert_ne!(whole, plain);
        // Any cut, decrypted at its own offset, is the plaintext's.
        for (start, end) in [(0, 1), (63, 65), (64, 128), (1000, 9999), (9_999, 10_000)] {
            let mut part = whole[start..end].to_vec();
            seal.apply(start as u64, &mut part);
            assert_eq!(part, plain[start..end], "{start}..{end}");
        }
        // Another key, another stream.
        let mut other = plain.clone();
        Seal::new([8; 32]).apply(0, &mut other);
        assert_ne!(other, whole);
        // Far in a large share (past what a 32-bit counter reaches): the same stream
        // whatever the cut, up to the last byte a share can have.
        let edge = (1u64 << 36) - 50;
        let mut across = vec![0u8; 100];
        seal.apply(edge, &mut across);
        let (mut a, mut b) = (vec![0u8; 50], vec![0u8; 50]);
        seal.apply(edge, &mut a);
        seal.apply(edge + 50, &mut b);
        assert_eq!(across, [a, b].concat());
        let mut last = vec![0u8; 64];
        seal.apply(u64::MAX - 63, &mut last);
        // The keystream is AES-256 of the block number (NIST SP 800-38A, F.5.5's key, our
        // counter): block 0 of an all-zero plaintext.
        let mut zero = [0u8; 16];
        Seal::new([0u8; 32]).apply(0, &mut zero);
        assert_eq!(hex_of(&zero), "dc95c078a2408989ad48a21492842087");
        assert_eq!(format!("{seal:?}"), "Seal(…)");
    }
}
