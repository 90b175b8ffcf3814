#![no_main]
//! Any text as a browser's WebSocket tracker message, fed to a swarm of a few connections:
//! never panics, every message out is JSON, and the swarm never holds more than it allows.
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use spheres_tracker::rtc;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = rtc::parse(&text);
    let mut s = rtc::Signal::new();
    let now = Instant::now();
    // The same text from three connections, split where a newline falls: joins, offers,
    // answers and leaves in whatever order the input makes.
    for (i, part) in text.split('\n').enumerate() {
        let conn = (i % 3) as u64;
        for (_, out) in s.message(conn, part, now, &|h| h[0] != 0) {
            assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{out}");
        }
        if part.is_empty() {
            s.closed(conn);
        }
    }
    let (_, peers) = s.size();
    assert!(peers <= 3 * rtc::MAX_SWARMS_PER_CONN);
});
