#![no_main]
//! Any bytes as a .torrent: parsing never panics, and an accepted torrent is self-consistent
//! and has only safe relative paths.
use libfuzzer_sys::fuzz_target;
use spheres_metainfo::Metainfo;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Metainfo::from_bytes(data) {
        assert!(m.total_length > 0);
        assert_eq!(m.total_length.div_ceil(m.piece_length), m.piece_count() as u64);
        for i in 0..m.files.len() {
            let p = m.relative_path(i).unwrap();
            assert!(p.is_relative());
            assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        }
        let _ = m.magnet().to_string();
    }
});
