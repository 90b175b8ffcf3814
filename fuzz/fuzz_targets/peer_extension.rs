//! What a peer sends inside the extension protocol's envelope (BEP 10 handshake, BEP 9
//! metadata messages, BEP 11 peer exchange): never a panic, and what reads writes back as
//! something that reads the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spheres_wire::{ExtHandshake, MAX_PEX_PEERS, MetadataMessage, PexMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ExtHandshake::parse(data) {
        assert_eq!(ExtHandshake::parse(&h.encode()).ok(), Some(h));
    }
    if let Ok(m) = MetadataMessage::parse(data) {
        assert_eq!(MetadataMessage::parse(&m.encode()).ok(), Some(m));
    }
    if let Ok(m) = PexMessage::parse(data) {
        assert!(m.added.len() <= 2 * MAX_PEX_PEERS && m.dropped.len() <= 2 * MAX_PEX_PEERS);
        assert_eq!(PexMessage::parse(&m.encode()).ok(), Some(m));
    }
});
