#![no_main]
//! Any query string as an HTTP announce or scrape (what clients send our tracker), and any
//! body as a tracker's answer (what trackers send our engine): never panics, never more than
//! the peers allowed.
use libfuzzer_sys::fuzz_target;
use spheres_tracker::wire;

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let _ = wire::parse_http_announce(&q);
    let _ = wire::parse_http_scrape(&q);
    if let Ok(answer) = wire::parse_http_answer(data) {
        assert!(answer.peers.len() <= wire::MAX_ANSWER_PEERS);
    }
});
