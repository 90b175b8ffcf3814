#![no_main]
//! Any query string as an HTTP announce or scrape: never panics.
use libfuzzer_sys::fuzz_target;
use spheres_tracker::wire;

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let _ = wire::parse_http_announce(&q);
    let _ = wire::parse_http_scrape(&q);
});
