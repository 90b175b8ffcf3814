#![no_main]
//! Any file list an encrypted announcement may give for a sealed torrent (a member writes
//! it): taken only when every path is one a torrent may hold and the lengths add up to the
//! torrent's; never a panic.
//!
//! Input: text lines; the first is the share's name, then `LENGTH<TAB>PATH` lines (PATH's
//! components joined by `/`, as the announcement carries them). A leading `/` on the name
//! line makes it a folder.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use spheres_metainfo::Metainfo;
use spheres_metainfo::seal::SealedFile;

/// A sealed torrent of 40,000 bytes (3 pieces of 16 KiB).
static SEALED: LazyLock<Metainfo> = LazyLock::new(|| {
    let mut t = b"d4:infod6:lengthi40000e4:name6:sealed12:piece lengthi16384e6:pieces60:".to_vec();
    t.extend([7u8; 60]);
    t.extend(b"7:privatei1eee");
    Metainfo::from_bytes(&t).expect("the fixed sealed torrent parses")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let Some(first) = lines.next() else { return };
    let (name, folder) = match first.strip_prefix('/') {
        Some(n) => (n, true),
        None => (first, false),
    };
    let files: Vec<SealedFile> = lines
        .filter_map(|l| {
            let (len, path) = l.split_once('\t')?;
            Some(SealedFile {
                path: path.split('/').map(str::to_owned).collect(),
                length: len.parse().ok()?,
            })
        })
        .collect();
    if let Ok(view) = SEALED.with_layout(name, &files, folder) {
        assert_eq!(view.info_hash, SEALED.info_hash);
        assert_eq!(view.files.iter().map(|f| f.length).sum::<u64>(), 40_000);
        for f in &view.files {
            for c in &f.path {
                assert!(!c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\', '\0']));
            }
        }
    }
});
