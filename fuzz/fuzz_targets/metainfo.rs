#![no_main]
//! Any bytes as a .torrent: parsing never panics, and an accepted torrent is self-consistent
//! and has only safe relative paths (a v2-only one laid out on whole pieces); its v2 half (BEP 52) too: a piece layer for every file
//! larger than a piece, of the right length.
use libfuzzer_sys::fuzz_target;
use spheres_metainfo::{Metainfo, V2Info};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Metainfo::from_bytes(data) {
        assert!(m.total_length > 0);
        assert_eq!(m.total_length.div_ceil(m.piece_length), m.piece_count() as u64);
        if m.is_v2_only() {
            // Every file starts a piece; padding fills each one's last piece.
            assert_eq!(m.total_length % m.piece_length, 0);
            assert!(m.files.iter().all(|f| f.padding || f.offset % m.piece_length == 0));
        } else {
            assert_eq!(m.piece_hashes.len(), m.piece_count());
        }
        for i in 0..m.files.len() {
            let p = m.relative_path(i).unwrap();
            assert!(p.is_relative());
            assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        }
        let _ = m.magnet().to_string();
    }
    if let Ok(Some(v2)) = V2Info::from_torrent(data) {
        for f in &v2.files {
            assert!(f.path.iter().all(|c| !c.is_empty() && c != ".." && !c.contains('/')));
            if let Some(root) = f.pieces_root
                && f.length > v2.piece_length
            {
                let layer = &v2.piece_layers[&root];
                assert_eq!(layer.len() as u64, f.length.div_ceil(v2.piece_length));
            }
        }
    }
});
