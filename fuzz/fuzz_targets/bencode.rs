#![no_main]
//! Any bytes: decoding never panics, and what decodes re-encodes canonically to something that
//! decodes to the same value.
use libfuzzer_sys::fuzz_target;
use spheres_metainfo::bencode::{OwnedValue, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        let owned = OwnedValue::from(&v);
        let again = owned.encode();
        let v2 = decode(&again).expect("our own encoding must decode");
        assert_eq!(OwnedValue::from(&v2), owned);
    }
});
