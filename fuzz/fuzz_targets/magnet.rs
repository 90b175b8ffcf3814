#![no_main]
//! Any string as a magnet link: never panics; what parses round-trips through Display.
use libfuzzer_sys::fuzz_target;
use spheres_metainfo::Magnet;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(m) = s.parse::<Magnet>()
    {
        let again: Magnet = m.to_string().parse().expect("our magnet must parse");
        assert_eq!(again.info_hash, m.info_hash);
    }
});
