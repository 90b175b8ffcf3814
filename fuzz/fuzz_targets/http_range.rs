#![no_main]
//! Any Range header on any length: never panics, and a partial answer lies inside the file.
use libfuzzer_sys::fuzz_target;
use spheres_web::range::{RangeAnswer, answer};

fuzz_target!(|input: (u64, &[u8])| {
    let (len, header) = input;
    let header = String::from_utf8_lossy(header);
    if let RangeAnswer::Partial { start, end } = answer(Some(&header), len) {
        assert!(start <= end && end < len);
    }
});
