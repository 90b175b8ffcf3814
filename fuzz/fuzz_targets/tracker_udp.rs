#![no_main]
//! Any datagram as a UDP tracker request (to our tracker) and as a tracker's answer (to our
//! engine): never panics; announces re-encode to the same request.
use libfuzzer_sys::fuzz_target;
use spheres_tracker::wire::{self, UdpRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(UdpRequest::Announce { connection_id, transaction_id, request, url_data }) = wire::parse_udp_request(data) {
        let again = wire::udp_announce_request(connection_id, transaction_id, &request, url_data.as_deref());
        match wire::parse_udp_request(&again) {
            Ok(UdpRequest::Announce { request: r2, .. }) => assert_eq!(r2.info_hash, request.info_hash),
            other => panic!("re-encoded announce did not parse: {other:?}"),
        }
    }
    let _ = wire::parse_udp_connect_answer(data, 7);
    for ipv6 in [false, true] {
        if let Ok(a) = wire::parse_udp_announce_answer(data, 7, ipv6) {
            assert!(a.peers.len() <= wire::MAX_ANSWER_PEERS);
        }
    }
    let _ = wire::parse_compact_peers(data, false);
    let _ = wire::parse_compact_peers(data, true);
});
