//! BEP 14 announcements from the LAN: any datagram, never a panic; what parses re-encodes to
//! something that parses the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_net::lsd::{GROUP_V4, PORT, encode, parse};

fuzz_target!(|data: &[u8]| {
    if let Some(a) = parse(data) {
        let again = encode(&a, std::net::SocketAddr::from((GROUP_V4, PORT)));
        assert_eq!(parse(&again), Some(a));
    }
});
