#![no_main]
//! Any text read for its little markup (posts and comments): never a panic, every piece of
//! it comes from the text, and a link is always an http or https address.
use libfuzzer_sys::fuzz_target;
use spheres_web::markup::{Mark, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let spans = parse(text);
    let total: usize = spans.iter().map(|s| s.text.len()).sum();
    assert!(total <= text.len());
    for s in &spans {
        assert!(text.contains(&s.text));
        if s.mark == Mark::Link {
            assert!(s.text.starts_with("http://") || s.text.starts_with("https://"));
        }
    }
});
